"""The search driver on real latency (ONNX Runtime on this CPU) and a real proxy (NASWOT on
Fashion-MNIST), on a micro space of eight tiny archs whose latencies are cached across tests."""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
import sqlalchemy
import yaml

from search import SearchConfig, chosen_trials, export_configs, load_config, run_search, write_outputs
from search._storage import redact
from search._driver import open_study
from search._storage import open_storage
from common import UserError
from space import SearchSpace

ROOT = Path(__file__).resolve().parent.parent
MICRO = str(ROOT / "tests" / "data" / "micro_space.yaml")
PG_URL = os.environ.get("SHUFFLENAS_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
TrialState = optuna.trial.TrialState


def micro_config(run_dir: Path, table: str, **changes) -> dict:
    """Search the micro space on its latency table; a budget every micro arch meets; no final round
    (tests/test_final_round.py covers it)."""
    base = dict(study_name=f"t-{uuid.uuid4().hex[:8]}", run_dir=str(run_dir), space=MICRO, n_trials=3,
                enqueue_references=False, latency_source="lut", latency_table=table, backend="onnxruntime",
                resolution=32, budget_ms=100.0, proxy="naswot", proxy_batch_size=16, quiet=True,
                heartbeat_interval=1, grace_period=4, final_k=0)
    base.update(changes)
    return base


def counted(study: optuna.Study):
    """Trials that used a ticket: finished ones, minus re-proposals of an evaluated arch."""
    return [t for t in study.get_trials() if (t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            or (t.state == TrialState.FAIL and "failure" in t.user_attrs)) and not t.user_attrs.get("reproposal")]


def evaluated_keys(study: optuna.Study):
    """Arch keys that were really evaluated (not served from an earlier trial)."""
    return [t.user_attrs["arch_key"] for t in study.get_trials()
            if "arch_key" in t.user_attrs and "duplicate_of" not in t.user_attrs and t.state.is_finished()
            and t.state != TrialState.FAIL]


def pg_available() -> bool:
    try:
        with sqlalchemy.create_engine(PG_URL).connect():
            return True
    except Exception:  # noqa: BLE001
        return False


def require_pg():
    if not pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {redact(PG_URL)} does not answer, and CI is set")
        pytest.skip(f"no PostgreSQL answers at {redact(PG_URL)} (set SHUFFLENAS_PG_URL)")


# ----- selection logic on real Optuna studies --------------------------------------------

def _add(study, values, feasible, constraint, number_attr=None):
    trial = optuna.trial.create_trial(
        values=values, state=TrialState.COMPLETE,
        user_attrs={"feasible": feasible, "arch_name": f"a{len(study.trials)}", "latency_ms": values[-1]},
        system_attrs={"constraints": [constraint]})
    study.add_trial(trial)


def test_constrained_never_reports_an_infeasible_best():
    study = optuna.create_study(direction="maximize")
    _add(study, [0.9], False, 0.5)
    _add(study, [0.7], True, -0.1)
    _add(study, [0.8], True, -0.2)
    best = chosen_trials(study)
    assert [t.value for t in best] == [0.8]
    empty = optuna.create_study(direction="maximize")
    _add(empty, [0.9], False, 0.5)
    assert chosen_trials(empty) == []


def test_pareto_front_is_non_dominated():
    study = optuna.create_study(directions=["maximize", "minimize"])
    points = [(0.5, 1.0), (0.6, 2.0), (0.55, 2.5), (0.7, 3.0), (0.4, 0.5), (0.65, 1.5), (0.9, 9.0)]
    for i, p in enumerate(points):
        _add(study, list(p), i != 6, 0.3 if i == 6 else -0.1)
    front = chosen_trials(study)
    values = [tuple(t.values) for t in front]
    assert (0.9, 9.0) not in values  # infeasible
    for a in values:
        for b in [tuple(t.values) for t in study.trials if t.user_attrs["feasible"]]:
            assert not (b[0] >= a[0] and b[1] <= a[1] and b != a), f"{b} dominates {a}"


_OPEN_AT = """
import sys, time
from pathlib import Path
from search._storage import open_storage
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # every process opens at the same moment
open_storage(None, Path(sys.argv[1]))
"""


def test_processes_opening_a_new_sqlite_study_at_once_all_succeed(tmp_path):
    for round_ in range(4):  # a fresh database each round: its tables are created by whoever comes first
        at = str(time.time() + 2.0)
        procs = [subprocess.Popen([sys.executable, "-c", _OPEN_AT, str(tmp_path / f"r{round_}"), at], cwd=ROOT,
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
        failed = [err for p in procs for err in [p.communicate(timeout=120)[1]] if p.returncode != 0]
        assert not failed, failed[0][-500:]


def test_redact_hides_passwords():
    assert redact("postgresql://alice:s3cr3t@db:5432/x") == "postgresql://alice:***@db:5432/x"
    assert redact("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"


# ----- real searches -----------------------------------------------------------------------

def test_constrained_search_outputs_and_resume_sqlite(tmp_path, micro_table):
    cfg = SearchConfig(**micro_config(tmp_path, micro_table, n_trials=2))
    study = run_search(cfg)
    assert len(counted(study)) == 2
    first = {t.number: t.user_attrs.get("arch_key") for t in study.trials}
    study = run_search(SearchConfig(**{**micro_config(tmp_path, micro_table, n_trials=4),
                                       "study_name": cfg.study_name}))
    assert len(counted(study)) == 4
    assert {n: study.trials[n].user_attrs.get("arch_key") for n in first} == first
    keys = evaluated_keys(study)
    assert len(keys) == len(set(keys))
    paths = write_outputs(study, tmp_path)
    rows = list(csv.DictReader(open(paths["trials"])))
    assert len(rows) == 4 and {"latency_ms", "proxy", "feasible"} <= set(rows[0])
    best = yaml.safe_load(paths["selection"].read_text())["archs"]
    assert len(best) == 1 and best[0]["arch"]["stem"] == 8
    assert "Chosen archs (by proxy) and the references" in paths["report"].read_text()
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == 4
    # Resuming with another proxy would mix incomparable values: refused before any trial
    other = SearchConfig(**{**micro_config(tmp_path, micro_table, n_trials=6, proxy="synflow"),
                            "study_name": cfg.study_name})
    with pytest.raises(UserError, match=r"evaluated with other settings \(proxy: study 'naswot' vs this run "
                                        r"'synflow'\).* resume it with the study's \(--proxy naswot\)"):
        run_search(other)
    assert len(counted(open_study(cfg, open_storage(None, tmp_path), SearchSpace.from_yaml(MICRO)))) == 4


@pytest.mark.slow
def test_train_proxy_reports_each_epoch_and_keeps_finished_runs(tmp_path, micro_table):
    cfg = SearchConfig(**micro_config(tmp_path, micro_table, n_trials=5, proxy="train", proxy_epochs=2,
                                      proxy_subset=160, proxy_val_subset=100, proxy_batch_size=32,
                                      pruner="median"))
    study = run_search(cfg)
    assert len(counted(study)) == 5
    evaluated = [t for t in study.trials if "duplicate_of" not in t.user_attrs]
    assert evaluated
    for t in evaluated:
        if t.state == TrialState.COMPLETE:
            assert sorted(t.intermediate_values) == [1, 2] and t.values[0] == t.intermediate_values[2]
        else:  # the median pruner may stop a trial after epoch 1, never after the last (paid-for) epoch
            assert t.state == TrialState.PRUNED and sorted(t.intermediate_values) == [1]
        assert t.user_attrs["proxy"]["settings"]["val_subset"] == 100


@pytest.mark.slow
def test_the_default_proxy_is_the_tse_of_one_short_training(tmp_path, micro_table):
    default = SearchConfig().proxy
    assert default == "tse"
    cfg = SearchConfig(**micro_config(tmp_path, micro_table, n_trials=2, proxy=default, proxy_subset=64,
                                      proxy_val_subset=60, proxy_batch_size=32))
    study = run_search(cfg)
    done = [t for t in study.trials if t.state == TrialState.COMPLETE and "duplicate_of" not in t.user_attrs]
    assert done
    for t in done:
        settings = t.user_attrs["proxy"]["settings"]
        assert settings["steps"] == 2 and math.isfinite(settings["tse_per_step"]) and settings["tse_per_step"] > 0
        assert t.values[0] == pytest.approx(-settings["tse_per_step"])  # minus the mean step loss: higher is better
        assert 0.0 <= settings["top1"] <= 100.0  # the same run's val top-1 is kept beside it


def test_pareto_on_journal_storage_with_resume(tmp_path, micro_table):
    journal = str(tmp_path / "study.journal")
    base = micro_config(tmp_path, micro_table, mode="pareto", sampler="nsga2", storage=journal,
                        budget_ratio=None, n_trials=2)
    study = run_search(SearchConfig(**base))
    assert len(counted(study)) == 2
    study = run_search(SearchConfig(**{**base, "n_trials": 3}))
    assert len(counted(study)) == 3 and len(study.directions) == 2
    front = chosen_trials(study)
    assert front and all(len(t.values) == 2 for t in front)


def test_references_are_enqueued_first(tmp_path, micro_table):
    space_file = tmp_path / "space.yaml"
    space = yaml.safe_load(Path(MICRO).read_text())
    space.update(stem=[8, 24], widths=[[16, 48], [32, 96], [64, 192]], depths=[[1, 4], [1, 8], [1, 4]],
                 last=[64, 1024])
    space_file.write_text(yaml.safe_dump(space))
    cfg = SearchConfig(**micro_config(tmp_path, micro_table, space=str(space_file), enqueue_references=True,
                                      n_trials=3))
    store = open_storage(None, tmp_path)
    study = open_study(cfg, store, SearchSpace.from_yaml(space_file))
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 3 and waiting[0].user_attrs["reference"] == "x0_5"
    assert "reference" not in waiting[1].user_attrs


def test_worker_on_another_device_refuses_to_join(tmp_path, micro_table):
    cfg = SearchConfig(**micro_config(tmp_path, micro_table))
    store = open_storage(None, tmp_path)
    open_study(cfg, store, SearchSpace.from_yaml(MICRO))
    other = SearchConfig(**{**micro_config(tmp_path, micro_table), "study_name": cfg.study_name,
                            "latency_source": "measure", "backend": "onnxruntime"})
    with pytest.raises(UserError, match="another kind of device.*latency_source"):
        open_study(other, store, SearchSpace.from_yaml(MICRO))


def _search_cmd(config_path: Path, *extra: str):
    return [sys.executable, str(ROOT / "search.py"), "search", "--config", str(config_path), *extra]


@pytest.mark.slow
def test_two_workers_on_postgresql_finish_exactly_n_trials(tmp_path, micro_table):
    require_pg()
    cfg = micro_config(tmp_path, micro_table, storage=PG_URL, n_trials=6, workers=2)
    study = run_search(SearchConfig(**cfg))
    trials = counted(study)
    assert len(trials) == 6
    assert len({t.number for t in study.trials}) == len(study.trials)
    assert all(t.state != TrialState.WAITING for t in study.trials)
    keys = evaluated_keys(study)
    assert len(keys) == len(set(keys)), "an arch was evaluated twice"


@pytest.mark.slow
def test_worker_killed_mid_trial_is_retried(tmp_path, micro_table):
    require_pg()
    cfg = micro_config(tmp_path, micro_table, storage=PG_URL, n_trials=3, proxy_batch_size=64)
    config_path = tmp_path / "search.yaml"
    config_path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen(_search_cmd(config_path), cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = open_storage(PG_URL, tmp_path)
    deadline = time.time() + 120
    running = []
    while time.time() < deadline and not running:
        time.sleep(0.1)
        try:
            study = optuna.load_study(study_name=cfg["study_name"], storage=store.storage)
            running = study.get_trials(states=(TrialState.RUNNING,))
        except KeyError:
            continue
    assert running, "the search never started a trial"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = subprocess.run(_search_cmd(config_path), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    study = optuna.load_study(study_name=cfg["study_name"], storage=store.storage)
    assert len(counted(study)) == 3
    dead = study.trials[running[0].number]
    assert dead.state == TrialState.FAIL
    assert any(t.system_attrs.get("failed_trial") == dead.number for t in study.trials)


def test_a_storage_password_appears_nowhere(tmp_path, micro_table):
    """The server trusts any password here, so a URL with one connects: it must not reach the
    output, the run directory's files or the study's stored config."""
    require_pg()
    secret = "s3cr3t-pw"
    scheme, rest = PG_URL.split("://", 1)
    user, host = rest.split("@", 1)
    url = f"{scheme}://{user.split(':')[0]}:{secret}@{host}"
    cfg = micro_config(tmp_path / "run", micro_table, storage=url, n_trials=1, quiet=False)
    config_path = tmp_path / "search.yaml"
    config_path.write_text(yaml.safe_dump(cfg))
    done = subprocess.run(_search_cmd(config_path), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "***" in done.stdout and secret not in done.stdout + done.stderr
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file() and path.suffix in (".md", ".csv", ".yaml", ".jsonl", ".json"):
            assert secret not in path.read_text(errors="replace"), path
    study = optuna.load_study(study_name=cfg["study_name"], storage=PG_URL)
    assert secret not in str(study.user_attrs) and "***" in study.user_attrs["config"]["storage"]


@pytest.mark.parametrize(
    "yaml_text, flags, needle",
    [
        ("colour: red\n", [], "unknown config key(s) colour"),
        ("budget_ms: 0\n", [], "budget_ms must be positive"),
        ("budget_ms: 5\nspace: nowhere.yaml\n", [], "space file nowhere.yaml does not exist"),
        ("budget_ms: 5\n", ["--storage", "postgresql+psycopg2://nobody:pw@127.0.0.1:1/none"], "cannot open storage"),
        ("budget_ms: 5\n", ["--mode", "sideways"], "mode: choose one of"),
        ("mode: constrained\n", [], "needs a latency budget"),
        ("budget_ms: 5\nn_trials: many\n", [], "n_trials: expected an integer"),
        ("budget_ms: 5\nproxy_data: /nowhere\n", [], "proxy_data /nowhere: use fashion_mnist"),
        ("budget_ms: 5\nproxy_recipe: none.yaml\n", [], "proxy_recipe none.yaml does not exist"),
        ("budget_ms: 5\nbackend: tensorrt\n", [], "unknown latency backend 'tensorrt'"),
        ("budget_ms: 5\nproxy: tse\nfinal_subset: 1000\n", [], "final round (1 x 1,000 images) is not longer"),
    ],
)
def test_bad_config_is_one_line_exit_2(tmp_path, yaml_text, flags, needle):
    config_path = tmp_path / "bad.yaml"
    config_path.write_text(yaml_text + f"run_dir: {tmp_path / 'run'}\n")
    done = subprocess.run(_search_cmd(config_path, *flags), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and needle in err[0], done.stderr
    assert "pw@" not in done.stderr


def test_config_flags_override_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("budget_ms: 5\nn_trials: 7\n")
    cfg = load_config(str(path), {"n_trials": 9, "seed": 3})
    assert cfg.n_trials == 9 and cfg.seed == 3 and cfg.budget_ms == 5.0


def test_measured_latency_search(tmp_path, latency_cache):
    """The real thing end to end: each candidate measured in an isolated worker, ratio to x0_5."""
    cfg = micro_config(tmp_path, None, latency_source="measure", latency_table=None, budget_ms=None,
                       budget_ratio=1.0, reference="x0_5", latency_warmup=5, latency_repeats=10,
                       latency_cache=latency_cache, n_trials=2)
    study = run_search(SearchConfig(**cfg))
    trials = counted(study)
    assert len(trials) == 2
    for t in trials:
        assert t.user_attrs["latency"]["backend"] == "onnxruntime"
        assert 0 < t.user_attrs["latency_ratio"] < 1.0  # micro archs are far faster than x0_5
        assert t.user_attrs["feasible"] is True


def test_shipped_search_configs_load(tmp_path):
    demo = load_config(str(ROOT / "configs" / "search" / "demo_cpu.yaml"))
    assert demo.mode == "constrained" and demo.budget_ratio == 1.05 and demo.reference == "x0_5"
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "train" / "a" / "1.png").touch()  # counted, not opened: the final round is checked against it
    ascend = load_config(str(ROOT / "configs" / "search" / "ascend_x0_5_budget.yaml"), {"proxy_data": str(tmp_path)})
    assert ascend.device == "Ascend" and ascend.backend == "mindspore"


@pytest.mark.slow
def test_export_then_train_py_runs_the_exported_config(tmp_path, micro_table):
    study = run_search(SearchConfig(**micro_config(tmp_path, micro_table, n_trials=1)))
    write_outputs(study, tmp_path)
    recipe = ROOT / "configs" / "shufflenetv2" / "shufflenet_v2_0.5_fashion_mnist_cpu.yaml"
    exported = export_configs(tmp_path, top=1, recipe=str(recipe))
    assert len(exported) == 1
    config = yaml.safe_load(exported[0].config.read_text())
    assert Path(config["arch"]).is_file() and "model" not in config
    done = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "-c", str(exported[0].config), "--epoch_size", "1", "--subset", "200",
         "--image_resize", "32", "--ckpt_save_dir", str(tmp_path / "ckpt"), "--warmup_epochs", "0",
         "--decay_epochs", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list((tmp_path / "ckpt").glob("*.ckpt"))
    with pytest.raises(UserError, match="--top must be at least 1"):
        export_configs(tmp_path, top=0, recipe=str(recipe))


def test_lut_verify_measures_the_chosen_arch(tmp_path, micro_table, latency_cache):
    cfg = micro_config(tmp_path, micro_table, latency_source="lut+verify", n_trials=2, clock="wall",
                       latency_warmup=5, latency_repeats=10, latency_cache=latency_cache, budget_ms=0.001)
    study = run_search(SearchConfig(**cfg))  # a budget nothing meets: nothing chosen, nothing to verify
    assert study.user_attrs.get("verified") == {}
    cfg.update(study_name=f"t-{uuid.uuid4().hex[:8]}", budget_ms=100.0)
    study = run_search(SearchConfig(**cfg))
    verified = study.user_attrs["verified"]
    assert len(verified) == 1
    record = next(iter(verified.values()))
    assert record["ms"] > 0 and record["within_budget"] is True
    write_outputs(study, tmp_path)
    assert "Verified on the device" in (tmp_path / "report.md").read_text()


# ----- PostgreSQL: the plain URL (psycopg 3 under SQLAlchemy 2.1) and +psycopg2 ----------------

def _plain(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return scheme.split("+", 1)[0] + "://" + rest


def test_postgresql_plain_and_psycopg2_urls_share_one_study(tmp_path, micro_table):
    require_pg()
    plain, psycopg2 = _plain(PG_URL), _plain(PG_URL).replace("postgresql://", "postgresql+psycopg2://", 1)
    assert open_storage(psycopg2, tmp_path).storage.engine.dialect.driver == "psycopg2"
    assert open_storage(plain, tmp_path).storage.engine.dialect.driver in ("psycopg", "psycopg2")
    cfg = micro_config(tmp_path, micro_table, storage=plain, n_trials=1)
    assert len(counted(run_search(SearchConfig(**cfg)))) == 1
    study = run_search(SearchConfig(**{**cfg, "storage": psycopg2, "n_trials": 2}))  # resume through the other driver
    assert len(counted(study)) == 2 and all(t.state == TrialState.COMPLETE for t in counted(study))


# ----- the verdict says which condition failed -----------------------------------------------

def _verdict_study(candidate_proxy, candidate_ratio, budget_ratio=2.0, verified=None):
    from search import verdict

    study = optuna.create_study(direction="maximize")
    study.set_user_attr("config", {"budget_ratio": budget_ratio, "reference": "x0_5"})
    ref = {"reference": "x0_5", "arch_name": "s24-w48.96.192-d4.8.4-l1024", "latency_ms": 2.70, "latency_ratio": 1.0,
           "latency_value": 1.0, "feasible": 1.0 <= budget_ratio}
    if ref["feasible"]:
        study.add_trial(optuna.trial.create_trial(values=[48.3], user_attrs=ref,
                                                  system_attrs={"constraints": [1.0 - budget_ratio]}))
    else:  # as the objective records it: pruned with the reason, no proxy
        ref["reason"] = f"latency 1 is over the budget {budget_ratio:g}"
        study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED, user_attrs=ref,
                                                  system_attrs={"constraints": [1.0 - budget_ratio]}))
    cand = {"arch_name": "s24-w80.152.280-d3.6.3-l1024", "latency_ms": 2.70 * candidate_ratio,
            "latency_ratio": candidate_ratio, "latency_value": candidate_ratio, "feasible": True}
    study.add_trial(optuna.trial.create_trial(values=[candidate_proxy], user_attrs=cand,
                                              system_attrs={"constraints": [candidate_ratio - budget_ratio]}))
    if verified is not None:
        study.set_user_attr("verified", {"1": verified})
    return verdict(study)


def test_verdict_names_the_condition_that_failed():
    slower = _verdict_study(60.7, 1.19)
    assert "is within the budget (1.19x x0_5 <= 2x x0_5) but does not beat x0_5: it is slower (1.19x x0_5's" \
           in slower and "though more accurate (proxy 60.7 vs 48.3, +12.4)" in slower
    tight = _verdict_study(40.0, 0.8, budget_ratio=0.9)  # x0_5 itself is over this budget
    assert "within the budget (0.80x x0_5 <= 0.9x x0_5) (proxy 40, 2.16 ms); the reference x0_5 is itself over " \
           "the budget (latency 1 is over the budget 0.9), so there is no comparison" in tight
    best = _verdict_study(50.0, 0.9)
    assert "within the budget (0.90x x0_5 <= 2x x0_5) and beats x0_5: more accurate" in best
    over = _verdict_study(60.7, 1.19, verified={"ms": 9.9, "within_budget": False})
    assert "OVER it as measured on the device (9.9 ms)" in over
    assert _verdict_study(60.7, 2.5).startswith("Best arch s24-w48.96.192")  # the candidate is over: x0_5 wins


# ----- a resumed search proposes new archs ---------------------------------------------------

def test_resumed_search_proposes_new_archs(tmp_path, micro_table):
    cfg = micro_config(tmp_path, micro_table, n_trials=3, sampler="tpe", seed=0)
    run_search(SearchConfig(**cfg))
    study = run_search(SearchConfig(**{**cfg, "n_trials": 5}))
    trials = counted(study)
    keys = [t.user_attrs["arch_key"] for t in trials]
    assert len(trials) == 5 and len(set(keys)) == 5, [t.user_attrs.get("arch_name") for t in study.trials]
    for t in study.trials:  # a re-proposal (if any) reuses the earlier result and used no ticket
        if t.user_attrs.get("reproposal"):
            assert "duplicate_of" in t.user_attrs and t not in trials


def test_sampler_seed_differs_by_worker_and_study_state():
    from search._driver import sampler_seed

    cfg = SearchConfig(budget_ms=1.0, seed=0)
    assert sampler_seed(cfg, 0, 0) == 0  # a fresh study's first worker keeps the seed
    seeds = {sampler_seed(cfg, w, n) for w in range(3) for n in (0, 3, 5)}
    assert len(seeds) == 9
    assert sampler_seed(SearchConfig(budget_ms=1.0, seed=None), 1, 3) is None


# ----- the own-data path: search on a folder, export, train as printed -----------------------

@pytest.fixture(scope="module")
def two_class_folder(fashion_mnist_folder, tmp_path_factory) -> Path:
    """A folder of real images with 2 classes (train/ and val/)."""
    import shutil

    root = tmp_path_factory.mktemp("two_classes")
    for split in ("train", "val"):
        for cls in ("class_00", "class_07"):
            shutil.copytree(fashion_mnist_folder / split / cls, root / split / cls)
    return root


@pytest.mark.slow
def test_own_folder_search_export_and_train_as_printed(tmp_path, micro_table, two_class_folder):
    import shlex

    study = run_search(SearchConfig(**micro_config(tmp_path, micro_table, n_trials=1, proxy_data=str(two_class_folder),
                                                   proxy_resolution=32)))
    write_outputs(study, tmp_path)
    recipe = tmp_path / "recipe.yaml"  # a short recipe that still says 10 classes (Fashion-MNIST's)
    recipe.write_text((ROOT / "configs/shufflenetv2/shufflenet_v2_0.5_fashion_mnist_cpu.yaml").read_text()
                      + "epoch_size: 1\nwarmup_epochs: 0\ndecay_epochs: 1\nbatch_size: 8\nsubset: null\n")
    (exported,) = export_configs(tmp_path, top=1, recipe=str(recipe))
    text = exported.config.read_text()
    config = yaml.safe_load(text)
    assert (config["dataset"], config["data_dir"], config["num_classes"], config["image_resize"]) == \
           ("imagenet", str(two_class_folder), 2, 32)
    assert "num_classes: 2  # classifier outputs" in text  # each key carries its help as a comment
    argv = shlex.split(exported.command)
    assert argv[0] == "python" and "/path/to" not in exported.command
    done = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 classes" in done.stdout and "warning" not in done.stderr
    ckpt = Path(config["ckpt_save_dir"]) / "best.ckpt"
    assert ckpt.is_file()

    def run(script, *extra):
        return subprocess.run([sys.executable, str(ROOT / script), "-c", str(exported.config), *extra], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)

    fewer = run("validate.py", "--ckpt_path", str(ckpt), "--num_classes", "1")
    assert fewer.returncode == 2 and "num_classes 1 is smaller than the 2 classes" in fewer.stderr
    more = run("train.py", "--num_classes", "3", "--max_steps", "1", "--ckpt_save_dir", str(tmp_path / "more"))
    warnings = [line for line in more.stderr.splitlines() if line.startswith("warning:")]
    assert more.returncode == 0, more.stderr[-3000:]
    assert len(warnings) == 1 and "num_classes 3 is larger than the 2 classes" in warnings[0]


# ----- optuna-dashboard shows our trials whole -----------------------------------------------

def _wsgi_get(app, path: str):
    import json
    from wsgiref.util import setup_testing_defaults

    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "QUERY_STRING": ""}
    setup_testing_defaults(environ)
    status = []
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    return status[0], json.loads(body)


@pytest.mark.slow
def test_optuna_dashboard_loads_our_study_with_whole_attributes(tmp_path, latency_cache):
    import json

    if os.environ.get("CI"):
        import optuna_dashboard
    else:
        optuna_dashboard = pytest.importorskip("optuna_dashboard", reason="pip install 'shufflenas[dashboard]'")
    cfg = micro_config(tmp_path, None, latency_source="measure", latency_table=None, budget_ms=None,
                       budget_ratio=1.0, latency_warmup=5, latency_repeats=10, latency_cache=latency_cache,
                       n_trials=1, proxy="train", proxy_epochs=2, proxy_subset=64, proxy_val_subset=64,
                       proxy_batch_size=32, proxy_resolution=32, pruner="none")
    run_search(SearchConfig(**cfg))
    app = optuna_dashboard.wsgi(f"sqlite:///{tmp_path / 'study.db'}")
    status, studies = _wsgi_get(app, "/api/studies")
    assert status.startswith("200")
    study_id = next(s["study_id"] for s in studies["study_summaries"] if s["study_name"] == cfg["study_name"])
    status, detail = _wsgi_get(app, f"/api/studies/{study_id}")
    assert status.startswith("200") and len(detail["trials"]) == 1
    attrs = {a["key"]: a["value"] for a in detail["trials"][0]["user_attrs"]}
    assert {"arch", "cost", "latency", "latency_env", "proxy", "proxy_curve", "latency_ratio"} <= set(attrs)
    for key, value in attrs.items():  # the dashboard cuts values at 1 KiB: each must arrive whole, as JSON
        assert len(value) < 1024, (key, len(value))
        json.loads(value) if value[:1] in "[{" else None
    assert len(json.loads(attrs["proxy_curve"])) == 2


def test_a_trial_that_never_sent_a_heartbeat_is_failed_and_retried(tmp_path):
    """A worker killed between taking a trial and its first heartbeat must not hold it forever."""
    from search._storage import fail_stale

    store = open_storage(None, tmp_path, heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(storage=store.storage, study_name="silent")
    study.enqueue_trial({}, user_attrs={"ticket": 1})
    taken = study.ask()  # RUNNING, and no heartbeat thread ever starts for it
    fail_stale(study)
    assert study.trials[taken.number].state == TrialState.RUNNING  # within the grace period: left alone
    time.sleep(2.5)
    fail_stale(study)
    trials = study.get_trials()
    assert trials[taken.number].state == TrialState.FAIL
    retry = [t for t in trials if t.state == TrialState.WAITING]
    assert len(retry) == 1 and retry[0].user_attrs["ticket"] == 1
