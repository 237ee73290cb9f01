"""What one trial does: propose an arch, pre-filter it, measure latency, score the proxy.

What a trial records is `search._record.TrialRecord` (its fields are the user attributes).
"""

from __future__ import annotations

import math
import time
from typing import Any, Dict, List, Optional

import optuna

from space import Arch, SearchSpace, cost

from ._config import SearchConfig
from ._latency_source import LatencySource
from ._record import TrialRecord, clean
from ._storage import fail_stale

CONSTRAINT = "latency"
WAIT_S = 1.0
# A trial whose arch an earlier trial evaluated reuses that result and uses no ticket
# (`TrialRecord.reproposal`), so the search still evaluates n_trials archs. After this many
# re-proposals in a row (a small or exhausted space) repeats count again, so the search ends.
MAX_REPROPOSALS_IN_A_ROW = 20
TrialState = optuna.trial.TrialState


class CandidateFailed(Exception):
    """The candidate could not be evaluated; the trial fails with the reason, the search goes on."""


def _write_latency(trial: optuna.Trial, record: Dict[str, Any]) -> None:
    """The latency result as attributes small enough to show whole (optuna-dashboard cuts at 1 KiB):
    the numbers in ``latency``, the machine in ``latency_env`` (the arch is in ``arch``)."""
    record = clean(record)
    TrialRecord.write(trial, latency={k: v for k, v in record.items() if k not in ("arch", "environment")})
    if record.get("environment"):
        TrialRecord.write(trial, latency_env=record["environment"])


def _write_proxy(trial: optuna.Trial, proxy: Dict[str, Any]) -> None:
    """The proxy result in ``proxy`` and its per-epoch curve in ``proxy_curve`` (each shown whole)."""
    proxy = clean(proxy)
    settings = dict(proxy.get("settings") or {})
    curve = settings.pop("curve", None)
    TrialRecord.write(trial, proxy={**proxy, "settings": settings})
    if curve:
        TrialRecord.write(trial, proxy_curve=curve)


class Objective:
    """Callable objective for `optuna.Study.optimize` in either mode."""

    def __init__(self, cfg: SearchConfig, space: SearchSpace, latency: LatencySource) -> None:
        self.cfg = cfg
        self.space = space
        self.latency = latency
        self._eval_s = 0.0
        self.on_start = None  # called once the trial's arch is recorded (the driver releases its lock)
        self.reproposed = False  # the last trial re-proposed an evaluated arch and used no ticket
        self._in_a_row = 0

    # ----- helpers --------------------------------------------------------------------------
    def _previous(self, trial: optuna.Trial, arch: Arch) -> Optional[optuna.trial.FrozenTrial]:
        """An earlier trial of the same arch, waited for if another worker is still evaluating it."""
        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        for t in trial.study.get_trials(deepcopy=False, states=states):
            if t.number != trial.number and TrialRecord.of(t).arch_key == arch.key:
                number = t.number
                while t.state == TrialState.RUNNING:
                    time.sleep(WAIT_S)
                    fail_stale(trial.study)  # a dead worker's trial must not hold us forever
                    t = trial.study.get_trials(deepcopy=False)[number]
                if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
                    return t
        return None

    def _reuse(self, trial: optuna.Trial, earlier: optuna.trial.FrozenTrial) -> Any:
        record = TrialRecord.of(earlier)
        record.copy_reused(trial)
        for key, value in earlier.constraints.items():
            trial.set_constraint(key, value)
        TrialRecord.write(trial, duplicate_of=earlier.number)
        if earlier.state == TrialState.PRUNED:
            raise optuna.TrialPruned(record.reason or "pruned")
        return earlier.values if len(earlier.values) > 1 else earlier.value

    def _infeasible(self, trial: optuna.Trial, value: float, reason: str) -> None:
        trial.set_constraint(CONSTRAINT, value - self.latency.budget)
        TrialRecord.write(trial, feasible=False, reason=reason)
        raise optuna.TrialPruned(reason)

    def _proxy(self, trial: optuna.Trial, arch: Arch) -> Dict[str, Any]:
        cfg = self.cfg
        from evaluator.proxy import TRAINING_PROXIES

        if cfg.proxy in TRAINING_PROXIES:
            from evaluator.proxy import train_score

            prune = cfg.mode == "constrained" and cfg.pruner != "none"

            def on_epoch(epoch: int, value: float) -> bool:
                if not prune:
                    return False
                trial.report(value, epoch)
                # After the last epoch the evaluation is paid for: keep it rather than prune it.
                return epoch < cfg.proxy_epochs and trial.should_prune()

            result = train_score(arch, cfg.proxy_data, epochs=cfg.proxy_epochs, resolution=cfg.proxy_resolution,
                                 batch_size=cfg.proxy_batch_size, subset=cfg.proxy_subset,
                                 val_subset=cfg.proxy_val_subset, seed=cfg.proxy_seed, lr=cfg.proxy_lr,
                                 warmup_epochs=cfg.proxy_warmup_epochs, on_epoch=on_epoch, signal=cfg.proxy,
                                 **({"recipe": cfg.proxy_recipe} if cfg.proxy_recipe else {}))
            if result.settings.get("stopped_by_callback"):
                _write_proxy(trial, result.to_dict())
                raise optuna.TrialPruned(f"pruned after epoch {len(result.settings.get('curve', []))}")
        else:
            from evaluator.proxy import score

            result = score(arch, cfg.proxy, cfg.proxy_data, seed=cfg.proxy_seed, resolution=cfg.proxy_resolution,
                           batch_size=cfg.proxy_batch_size)
        return result.to_dict()

    # ----- the trial ------------------------------------------------------------------------
    def __call__(self, trial: optuna.Trial) -> Any:
        start = time.perf_counter()
        self._eval_s = 0.0
        self.reproposed = False
        try:
            return self._evaluate(trial)
        finally:
            # Wall time of the trial, and the part of it spent measuring latency and scoring the
            # proxy (the rest is Optuna's: sampling, storage, and this bookkeeping).
            TrialRecord.write(trial, seconds=time.perf_counter() - start, eval_seconds=self._eval_s)

    def _evaluate(self, trial: optuna.Trial) -> Any:
        cfg = self.cfg
        arch = self.space.suggest(trial)
        c = cost(arch, cfg.resolution)
        TrialRecord.write(trial, arch=arch.to_dict(), arch_name=arch.name, arch_key=arch.key, cost=c.summary())
        # The driver holds the study lock until here, so two workers never start the same arch.
        if self.on_start is not None:
            self.on_start()
        earlier = self._previous(trial, arch)
        self.reproposed = earlier is not None and self._in_a_row < MAX_REPROPOSALS_IN_A_ROW
        self._in_a_row = self._in_a_row + 1 if earlier is not None else 0
        if earlier is not None:  # the same arch again: reuse, never evaluate twice
            if self.reproposed:
                TrialRecord.write(trial, reproposal=True)
            return self._reuse(trial, earlier)

        budget = self.latency.budget
        if budget is not None:
            estimate = self.latency.estimate(c)
            if estimate is not None and estimate > cfg.prefilter_margin * budget:
                TrialRecord.write(trial, latency_estimate=estimate)
                self._infeasible(trial, estimate, f"pre-filter: estimated latency {estimate:.4g} is over "
                                                  f"{cfg.prefilter_margin:g} x the budget {budget:g}")

        evaluating = time.perf_counter()
        latency = self.latency.get(arch)
        self._eval_s += time.perf_counter() - evaluating
        _write_latency(trial, latency.record)
        if latency.error is not None:
            TrialRecord.write(trial, failure=f"latency: {latency.error}")
            raise CandidateFailed(f"latency measurement failed: {latency.error}")
        self.latency.learn(c, latency)
        value = self.latency.value(latency)
        TrialRecord.write(trial, latency_ms=latency.ms, latency_ratio=latency.ratio, latency_value=value)
        if budget is not None:
            if value > budget:
                self._infeasible(trial, value, f"latency {value:.4g} is over the budget {budget:g}")
            trial.set_constraint(CONSTRAINT, value - budget)
        TrialRecord.write(trial, feasible=True)

        evaluating = time.perf_counter()
        try:
            proxy = self._proxy(trial, arch)
        except optuna.TrialPruned:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of one candidate must not stop the search
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            TrialRecord.write(trial, failure=f"proxy: {type(exc).__name__}: {first}")
            raise CandidateFailed(first) from exc
        finally:
            self._eval_s += time.perf_counter() - evaluating
        _write_proxy(trial, proxy)
        if not math.isfinite(proxy["value"]):
            TrialRecord.write(trial, failure=f"proxy {cfg.proxy} returned {proxy['value']}")
            raise CandidateFailed(f"proxy {cfg.proxy} returned {proxy['value']}")
        if cfg.mode == "pareto":
            return proxy["value"], latency.ms
        return proxy["value"]


def directions(cfg: SearchConfig) -> List[str]:
    return ["maximize", "minimize"] if cfg.mode == "pareto" else ["maximize"]
