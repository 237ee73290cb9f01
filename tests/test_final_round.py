"""The final round: the proxy's best few and the references trained longer on several seeds, shared
by workers, resumable, and the only source of the verdict. Real searches (ONNX Runtime latency,
NASWOT proxy) on a small space that holds x0_5, with tiny training budgets at 32 px."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from common import UserError
from search import SearchConfig, load_config, run_search, verdict, write_outputs
from search._final import (ArchResult, FinalSettings, FinalSummary, final_study_name, load_final,
                           proxy_candidates, summary_of)
from search._storage import open_storage
from test_search import MICRO, PG_URL, micro_config, require_pg

ROOT = Path(__file__).resolve().parent.parent
TrialState = optuna.trial.TrialState
TINY_FINAL = dict(final_resolution=32, final_subset=64, final_val_subset=60, final_batch_size=32, final_epochs=1,
                  final_seeds=[0, 1], proxy_resolution=32)


@pytest.fixture(scope="module")
def space_with_x0_5(tmp_path_factory) -> str:
    """The micro space widened so that it holds x0_5 (the largest arch in it)."""
    path = tmp_path_factory.mktemp("space") / "space.yaml"
    space = yaml.safe_load(Path(MICRO).read_text())
    space.update(stem=[8, 24], widths=[[16, 48], [32, 96], [64, 192]], depths=[[1, 4], [1, 8], [1, 4]],
                 last=[64, 1024])
    path.write_text(yaml.safe_dump(space))
    return str(path)


def _config(tmp_path, space, latency_cache, **changes) -> dict:
    settings = dict(space=space, enqueue_references=True, latency_source="measure", latency_table=None,
                    budget_ms=None, budget_ratio=1.0, latency_warmup=3, latency_repeats=8,
                    latency_cache=latency_cache, **TINY_FINAL)
    return micro_config(tmp_path, None, **{**settings, **changes})


def _items(study_name: str, storage) -> list:
    final = optuna.load_study(study_name=final_study_name(study_name), storage=storage)
    return final.get_trials()


def _key(t) -> tuple:
    return t.user_attrs["stage"], t.user_attrs["arch_key"], t.user_attrs["seed"]


@pytest.mark.slow
def test_two_workers_on_postgresql_train_each_item_once_with_halving(tmp_path, space_with_x0_5, latency_cache):
    require_pg()
    cfg = SearchConfig(**_config(tmp_path, space_with_x0_5, latency_cache, storage=PG_URL, workers=2, n_trials=6,
                                 final_k=2, halving_rungs=1, halving_eta=2))
    study = run_search(cfg)
    store = open_storage(PG_URL, tmp_path)
    items = _items(cfg.study_name, store.storage)
    assert all(t.state == TrialState.COMPLETE for t in items), [t.state for t in items]
    keys = [_key(t) for t in items]
    assert len(keys) == len(set(keys)), "an item was trained twice"

    # Rung 1: the top 2 x 2 feasible archs by proxy, one seed, 1/2 of the final images.
    rung = [t for t in items if t.user_attrs["stage"] == 0]
    expected = {t.user_attrs["arch_key"] for t in proxy_candidates(study, 4)}
    assert {t.user_attrs["arch_key"] for t in rung} == expected and {t.user_attrs["seed"] for t in rung} == {0}
    assert all(t.user_attrs["result"]["subset"] == 32 for t in rung)
    # Final: the rung's best 2 by its recorded top-1, plus x0_5, on both seeds, with the full images.
    final = [t for t in items if t.user_attrs["stage"] == 1]
    promoted = {t.user_attrs["arch_key"] for t in final if t.user_attrs["role"] == "candidate"}
    assert len(promoted) == 2 and promoted <= expected
    assert min(t.value for t in rung if t.user_attrs["arch_key"] in promoted) >= \
        max((t.value for t in rung if t.user_attrs["arch_key"] not in promoted), default=0.0)
    x0_5 = [t for t in final if t.user_attrs.get("reference") == "x0_5"]
    assert sorted(t.user_attrs["seed"] for t in x0_5) == [0, 1]
    assert all(t.user_attrs["result"]["subset"] == 64 for t in final)
    trained = promoted | {x0_5[0].user_attrs["arch_key"]}
    assert sorted(t.user_attrs["seed"] for t in final) == sorted([0, 1] * len(trained))

    # The verdict and the selection come from the final round only.
    summary = summary_of(study)
    assert summary.complete and summary.winner() is not None
    write_outputs(study, tmp_path)
    best = yaml.safe_load((tmp_path / "best.yaml").read_text())["archs"]
    assert best[0]["final"]["top1_mean"] == pytest.approx(summary.winner().mean, abs=1e-3)
    assert best[0]["proxy"] is not None  # both numbers
    report = (tmp_path / "report.md").read_text()
    assert "## Final round" in report and "Successive-halving rung 1" in report
    # The report's first table is the final round's order, winner first, not the proxy's pick.
    table = report.split("## Finalists (best final top-1 first) and the references")[1].split("\n")
    assert f"trial {best[0]['trial']}: {best[0]['name']} |" in table[4]
    assert verdict(study).startswith("Final round (1 epoch x 64 images at 32 px, 2 seeds)")


@pytest.mark.slow
def test_a_killed_final_round_resumes_without_retraining_what_finished(tmp_path, space_with_x0_5, latency_cache):
    # budget 0.9 x x0_5: x0_5 itself is over budget, so the finalist is a searched arch and x0_5 trains as
    # the reference: 2 archs x 2 seeds.
    cfg = _config(tmp_path, space_with_x0_5, latency_cache, n_trials=3, final_k=1, budget_ratio=0.9,
                  final_subset=320, final_epochs=2)
    config_path = tmp_path / "search.yaml"
    config_path.write_text(yaml.safe_dump(cfg))
    command = [sys.executable, str(ROOT / "search.py"), "search", "--config", str(config_path)]
    proc = subprocess.Popen(command, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    store = open_storage(None, tmp_path)
    finished_before, running = [], []
    deadline = time.time() + 300
    try:
        while time.time() < deadline and not (finished_before and running) and proc.poll() is None:
            time.sleep(0.2)
            final = load_final(store.storage, cfg["study_name"])
            if final is not None:
                trials = final.get_trials()
                finished_before = [t for t in trials if t.state == TrialState.COMPLETE]
                running = [t for t in trials if t.state == TrialState.RUNNING]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert finished_before and running, "never saw a final item finish while another ran"

    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    items = _items(cfg["study_name"], store.storage)
    complete = [t for t in items if t.state == TrialState.COMPLETE]
    assert len(complete) == 4 and len({_key(t) for t in complete}) == 4
    for t in finished_before:  # kept, not trained again
        assert items[t.number].state == TrialState.COMPLETE and items[t.number].value == t.value
    assert items[running[0].number].state == TrialState.FAIL  # the killed item: failed as stale, then retried
    assert "Final round (2 epochs x 320 images at 32 px, 2 seeds)" in done.stdout
    # `report` finds the search in a storage that also holds its final round's items
    (Path(cfg["run_dir"]) / "report.md").unlink()
    again = subprocess.run([sys.executable, str(ROOT / "search.py"), "report", "--run-dir", cfg["run_dir"]],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "## Final round" in (Path(cfg["run_dir"]) / "report.md").read_text()


def test_final_k_0_says_the_verdict_rests_on_the_proxy(tmp_path, micro_table):
    study = run_search(SearchConfig(**micro_config(tmp_path, micro_table, n_trials=2)))
    assert verdict(study).endswith("This rests on the proxy alone (final_k 0): train the pick longer before "
                                   "trusting it.")


def _row(name: str, role: str, top1: dict, ratio: float, reference=None, feasible=True) -> ArchResult:
    return ArchResult(arch_key=name, arch_name=name, arch={}, role=role, reference=reference, source_trial=0,
                      proxy=50.0, latency_ms=1.0, latency_ratio=ratio, feasible=feasible, top1=top1)


@pytest.mark.parametrize("top1, ratio, needle", [
    ({0: 80.0, 1: 81.0}, 0.9, "cand beats x0_5"),
    ({0: 80.0, 1: 81.0}, 1.1, "does not beat x0_5: slower (1.10x)"),
    ({0: 70.0, 1: 71.0}, 0.9, "does not beat x0_5: less accurate at the final budget (-5.00 points)"),
    ({0: 70.0, 1: 71.0}, 1.1, "less accurate at the final budget (-5.00 points) and slower (1.10x)"),
])
def test_verdict_names_the_failing_condition(top1, ratio, needle):
    from search._outputs import _final_verdict

    study = optuna.create_study(direction="maximize")
    study.set_user_attr("config", {"reference": "x0_5", "budget_ratio": 1.2})
    settings = FinalSettings(k=1, epochs=2, subset=4000, val_subset=2000, resolution=64, batch_size=32,
                             warmup_epochs=0, seeds=(0, 1), rungs=0, eta=3, data="fashion_mnist", recipe=None)
    rows = [_row("cand", "candidate", top1, ratio), _row("ref", "reference", {0: 75.0, 1: 76.0}, 1.0, "x0_5")]
    text = _final_verdict(study, FinalSummary(settings, "x0_5", rows, {}, complete=True))
    assert needle in text, text
    assert f"It is within the budget ({ratio:.2f}x x0_5 <= 1.2x x0_5)." in text


def test_a_final_round_no_longer_than_the_proxy_is_refused_on_the_images_a_folder_has(fashion_mnist_folder,
                                                                                        tmp_path):
    # 200 train images: the default final round (1 epoch of 16,000) can only see 200, as the proxy does.
    base = dict(run_dir=str(tmp_path), budget_ms=5.0, proxy="tse", proxy_data=str(fashion_mnist_folder),
                proxy_subset=200)
    with pytest.raises(UserError, match=r"the final round \(1 x 200 images \(all the train split has\)\) is not "
                                        r"longer than the proxy \(1 x 200 images"):
        load_config(None, base)
    assert load_config(None, {**base, "final_epochs": 2}).final_epochs == 2
    assert load_config(None, {**base, "final_k": 0}).final_k == 0
