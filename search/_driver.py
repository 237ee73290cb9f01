"""Running a study: create or join it, hand out trials, run local workers, resume.

Trials are handed out as *tickets*: the study holds exactly ``n_trials`` trials that count
(waiting, running, or finished as complete, pruned or failed-with-a-reason). The first
worker creates the study and enqueues the references inside the space, then empty tickets
up to ``n_trials``; a later run with a larger ``n_trials`` tops the queue up (resume). A
worker takes a ticket under the study lock (see `_storage`), so workers on one host or many
finish exactly ``n_trials``. A worker that dies mid-trial stops its heartbeat; its trial is
failed as stale and re-enqueued (Optuna's `RetryHeartbeatStaleTrialCallback`) by whichever
worker looks next, so nothing is lost and nothing completed is evaluated again.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import optuna

from common import UserError
from common.settings import format_value
from space import REFERENCES, SearchSpace

from ._config import SearchConfig, stored_config
from ._final import FinalSettings, run_final_round
from ._latency_source import LatencySource, load_model
from ._objective import CandidateFailed, Objective, directions
from ._record import TrialRecord, Verification
from ._progress import Progress
from ._storage import StudyStorage, fail_stale, open_storage, redact

TrialState = optuna.trial.TrialState
POLL_S = 2.0


def sampler_seed(cfg: SearchConfig, worker_index: int = 0, trials_in_study: int = 0) -> Optional[int]:
    """The sampler's seed: the config's, made distinct per worker and per study state.

    Workers of one study must not share a seed, or they would propose the same archs; nor may
    a resumed run (or a worker joining later) restart the sequence the first run already
    proposed. A fresh study's first worker keeps ``cfg.seed`` itself.
    """
    if cfg.seed is None:
        return None
    return (cfg.seed + 7919 * worker_index + 104729 * trials_in_study) % 2**32


def make_sampler(cfg: SearchConfig, worker_index: int = 0, trials_in_study: int = 0) -> optuna.samplers.BaseSampler:
    seed = sampler_seed(cfg, worker_index, trials_in_study)  # trials_in_study: started or finished ones
    if cfg.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
    if cfg.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    try:
        return optuna.samplers.GPSampler(seed=seed)
    except ImportError as exc:
        raise UserError(f"sampler gp needs PyTorch ({exc}); pip install torch, or use tpe") from None


def make_pruner(cfg: SearchConfig) -> optuna.pruners.BasePruner:
    from evaluator.proxy import TRAINING_PROXIES

    if cfg.pruner == "none" or cfg.mode == "pareto" or cfg.proxy not in TRAINING_PROXIES:
        return optuna.pruners.NopPruner()
    if cfg.pruner == "sha":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)


def fingerprint(cfg: SearchConfig) -> Dict[str, Any]:
    """What must match for a worker to join a study: the kind of device latency comes from."""
    if cfg.latency_source != "measure":
        table, kind, _ = load_model(cfg)
        return {"latency_source": kind, "backend": table.backend, "device": table.device,
                "batch_size": table.batch_size, "resolution": table.resolution, "dtype": table.dtype,
                "clock": table.clock}
    from common.env import cpu_model

    device = {"latency_source": "measure", "backend": cfg.backend, "device": cfg.device,
              "batch_size": cfg.batch_size, "resolution": cfg.resolution, "dtype": cfg.dtype, "clock": cfg.clock}
    if cfg.device == "CPU":
        device["cpu_model"] = cpu_model()
    return device


def _counted(trial: optuna.trial.FrozenTrial) -> bool:
    """Does this trial use up a ticket? Stale-worker failures do not (they are retried), nor do
    re-proposals of an arch already evaluated (the sampler gets another try)."""
    record = TrialRecord.of(trial)
    if record.reproposal:
        return False
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING):
        return True
    return trial.state == TrialState.FAIL and record.failure is not None


def _public_config(cfg: SearchConfig) -> Dict[str, Any]:
    data = asdict(cfg)
    data["storage"] = redact(cfg.storage) if cfg.storage else None
    return data


def open_study(cfg: SearchConfig, store: StudyStorage, space: SearchSpace, worker_index: int = 0) -> optuna.Study:
    """Create the study or join it (checking the device), and top up its ticket queue.

    The sampler is seeded from the seed, the worker and the number of trials the study holds,
    so a resumed or joining worker proposes new archs rather than replaying the first run's.
    """
    sampler, pruner = make_sampler(cfg, worker_index), make_pruner(cfg)
    mine = fingerprint(cfg)
    with store.lock(cfg.study_name):
        try:
            study = optuna.create_study(study_name=cfg.study_name, storage=store.storage, sampler=sampler,
                                        pruner=pruner, directions=directions(cfg))
            study.set_user_attr("fingerprint", mine)
            study.set_user_attr("config", _public_config(cfg))
            study.set_user_attr("space", space.to_dict())
            study.set_user_attr("mode", cfg.mode)
            if cfg.enqueue_references:
                for name in space.references():
                    study.enqueue_trial(space.params_of(REFERENCES[name].arch), user_attrs={"reference": name})
        except optuna.exceptions.DuplicatedStudyError:
            study = optuna.load_study(study_name=cfg.study_name, storage=store.storage, sampler=sampler,
                                      pruner=pruner)
            theirs = study.user_attrs.get("fingerprint", {})
            if theirs != mine:
                diff = ", ".join(f"{k}: study {theirs.get(k)!r} vs this worker {mine.get(k)!r}"
                                 for k in sorted(set(theirs) | set(mine)) if theirs.get(k) != mine.get(k))
                raise UserError(f"study {cfg.study_name!r} measures latency on another kind of device ({diff}); "
                                "run this worker where the study's device is, or start a new study")
            if study.user_attrs.get("mode") != cfg.mode:
                raise UserError(f"study {cfg.study_name!r} is a {study.user_attrs.get('mode')} study; "
                                f"this config asks for {cfg.mode}: use another --study-name")
            _need_the_same_evaluation(study, cfg)
            started = sum(t.state != TrialState.WAITING for t in study.get_trials(deepcopy=False))
            study.sampler = make_sampler(cfg, worker_index, started)
        used = sum(_counted(t) for t in study.get_trials(deepcopy=False))
        for _ in range(cfg.n_trials - used):
            study.enqueue_trial({})
    return study


# Keys whose change would make a study's values incomparable: its proxy values, or the final
# round's budget (items already trained would be mixed with items trained at another budget).
_EVALUATION_KEYS = ("proxy", "final_", "halving_")


def _need_the_same_evaluation(study: optuna.Study, cfg: SearchConfig) -> None:
    def plain(value: Any) -> Any:  # a config made in code may hold a list where YAML gives a tuple
        return list(value) if isinstance(value, (list, tuple)) else value

    theirs, mine = asdict(stored_config(study)), asdict(cfg)
    changed = [k for k in mine if k.startswith(_EVALUATION_KEYS) and plain(theirs.get(k)) != plain(mine[k])]
    if changed:
        diff = ", ".join(f"{k}: study {theirs.get(k)!r} vs this run {mine[k]!r}" for k in changed)
        flags = " ".join(f"--{k.replace('_', '-')} {format_value(theirs.get(k))}" for k in changed)
        raise UserError(f"study {cfg.study_name!r} was evaluated with other settings ({diff}); its results would "
                        f"not compare: resume it with the study's ({flags}) or use another --study-name")


def _take_ticket(study: optuna.Study, store: StudyStorage, cfg: SearchConfig, deadline: float) -> Optional[Any]:
    """Hold the study lock while a waiting trial exists (returns the lock to release); None when done."""
    while time.time() < deadline:
        lock = store.lock(cfg.study_name)
        lock.__enter__()
        trials = study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING))
        if any(t.state == TrialState.WAITING for t in trials):
            return lock
        lock.__exit__(None, None, None)
        if not trials:
            return None
        # Others are still running: if one of them died, its heartbeat goes stale and it is
        # re-enqueued here; otherwise wait for them to finish.
        fail_stale(study)
        time.sleep(POLL_S)
    return None


def work(cfg: SearchConfig, worker_index: int = 0, report: Optional[Callable] = None) -> int:
    """One worker: take tickets and evaluate them until none is left or the timeout passes."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run_dir = Path(cfg.run_dir)
    store = open_storage(cfg.storage, run_dir, cfg.heartbeat_interval, cfg.grace_period)
    space = SearchSpace.from_yaml(cfg.space)
    study = open_study(cfg, store, space, worker_index)
    objective = Objective(cfg, space, LatencySource(cfg))
    progress = report or Progress(cfg, run_dir, quiet=cfg.quiet)
    deadline = time.time() + (cfg.timeout if cfg.timeout else float("inf"))
    done = 0
    while True:
        lock = _take_ticket(study, store, cfg, deadline)
        if lock is None:
            break
        held = [lock]

        def release() -> None:
            if held:
                held.pop().__exit__(None, None, None)

        objective.on_start = release
        try:
            study.optimize(objective, n_trials=1, catch=(CandidateFailed,),
                           callbacks=[lambda s, t: progress(s, t)])
        finally:
            release()
        done += 1
        if objective.reproposed:  # it used no ticket: put one back so the sampler tries again
            with store.lock(cfg.study_name):
                study.enqueue_trial({})
    if cfg.final_k > 0:
        say = None if cfg.quiet else (lambda line: print(line, flush=True))
        done += run_final_round(study, store, cfg.study_name, FinalSettings.from_config(cfg), run_dir, report=say)
    return done


def _worker_entry(cfg_dict: Dict[str, Any], index: int) -> None:
    try:
        work(SearchConfig(**cfg_dict), index)
    except UserError as exc:
        print(f"error: worker {index}: {exc}", flush=True)
        raise SystemExit(2) from None


def run_search(cfg: SearchConfig) -> optuna.Study:
    """Run the study with ``cfg.workers`` local worker processes (1: in this process)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if cfg.latency_source == "measure":  # unknown or missing backend, device, dtype: fail before any trial
        from evaluator.latency import base_request

        base_request(cfg.backend, cfg.device, cfg.device_id, cfg.batch_size, cfg.resolution, cfg.dtype,
                     cfg.latency_warmup, cfg.latency_repeats, cfg.threads, 1000, cfg.clock)
    run_dir = Path(cfg.run_dir)
    store = open_storage(cfg.storage, run_dir, cfg.heartbeat_interval, cfg.grace_period)
    space = SearchSpace.from_yaml(cfg.space)
    study = open_study(cfg, store, space)  # create first, so workers only join
    if cfg.workers == 1:
        work(cfg)
    else:
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_worker_entry, args=(asdict(cfg), i), daemon=False) for i in range(cfg.workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        bad = [p.exitcode for p in procs if p.exitcode not in (0, None)]
        if bad and all(code == 2 for code in bad):
            raise UserError("the workers refused to run (see their messages above)")
    study = optuna.load_study(study_name=cfg.study_name, storage=store.storage)
    if cfg.latency_source.endswith("+verify"):
        verify(study, cfg)
    return study


def verify(study: optuna.Study, cfg: SearchConfig) -> None:
    """Measure the chosen archs for real (lut+verify, predictor+verify); flag any whose real latency
    breaks the budget.

    Results go to the study's user attribute ``verified`` ({trial number: record}): a finished
    trial cannot be changed in Optuna.
    """
    from ._trials import chosen_trials

    source = LatencySource(cfg)
    verified = Verification.all_of(study)
    for t in chosen_trials(study):
        if t.number in verified:
            continue
        record = TrialRecord.of(t)
        latency = source.measure(record.arch_obj())
        value = source.value(latency)
        check = verified[t.number] = Verification(
            ms=latency.ms, ratio=latency.ratio, error=latency.error,
            within_budget=None if value is None or source.budget is None else value <= source.budget)
        if not cfg.quiet:
            print(f"verified trial {t.number} {record.arch_name}: predicted {record.latency_ms:.3f} ms, measured "
                  f"{latency.ms} ms{'  OVER BUDGET on the real device' if check.within_budget is False else ''}",
                  flush=True)
    Verification.save_all(study, verified)


__all__ = ["open_study", "run_search", "work", "make_sampler", "make_pruner", "fingerprint", "sampler_seed"]
