"""What one trial does: propose an arch, pre-filter it, measure latency, score the proxy.

Every trial records (user attributes): ``arch`` (YAML-able dict), ``arch_name``, ``arch_key``,
``cost`` (analytic numbers), ``latency`` (the result with its environment), ``latency_value``
(in the budget's unit), ``proxy`` (value, time, settings), ``feasible`` and ``reason``, or
``failure`` for a candidate that could not be evaluated (compile error, out of memory, NaN).
"""

from __future__ import annotations

import math
import time
from typing import Any, Dict, List, Optional

import optuna

from space import Arch, SearchSpace, cost

from ._config import SearchConfig
from ._latency_source import Latency, LatencySource

CONSTRAINT = "latency"


class CandidateFailed(Exception):
    """The candidate could not be evaluated; the trial fails with the reason, the search goes on."""


def _clean(value: Any) -> Any:
    """JSON-safe copy (Optuna stores user attributes as JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class Objective:
    """Callable objective for `optuna.Study.optimize` in either mode."""

    def __init__(self, cfg: SearchConfig, space: SearchSpace, latency: LatencySource) -> None:
        self.cfg = cfg
        self.space = space
        self.latency = latency
        self.on_start = None  # called first thing in each trial (the driver releases its lock there)

    # ----- helpers --------------------------------------------------------------------------
    def _previous(self, study: optuna.Study, arch: Arch) -> Optional[optuna.trial.FrozenTrial]:
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            if t.user_attrs.get("arch_key") == arch.key:
                return t
        return None

    def _infeasible(self, trial: optuna.Trial, value: float, reason: str) -> None:
        trial.set_constraint(CONSTRAINT, value - self.latency.budget)
        trial.set_user_attr("feasible", False)
        trial.set_user_attr("reason", reason)
        raise optuna.TrialPruned(reason)

    def _proxy(self, trial: optuna.Trial, arch: Arch) -> Dict[str, Any]:
        cfg = self.cfg
        if cfg.proxy == "train":
            from evaluator.proxy import train_score

            prune = cfg.mode == "constrained" and cfg.pruner != "none"

            def on_epoch(epoch: int, top1: float) -> bool:
                if not prune:
                    return False
                trial.report(top1, epoch)
                return trial.should_prune()

            result = train_score(arch, cfg.proxy_data, epochs=cfg.proxy_epochs, resolution=cfg.proxy_resolution,
                                 batch_size=cfg.proxy_batch_size, subset=cfg.proxy_subset, seed=cfg.proxy_seed,
                                 lr=cfg.proxy_lr, on_epoch=on_epoch)
            if result.settings.get("stopped_by_callback"):
                trial.set_user_attr("proxy", _clean(result.to_dict()))
                raise optuna.TrialPruned(f"pruned after epoch {len(result.settings.get('curve', []))}")
        else:
            from evaluator.proxy import score

            result = score(arch, cfg.proxy, cfg.proxy_data, seed=cfg.proxy_seed, resolution=cfg.proxy_resolution,
                           batch_size=cfg.proxy_batch_size)
        return result.to_dict()

    # ----- the trial ------------------------------------------------------------------------
    def __call__(self, trial: optuna.Trial) -> Any:
        if self.on_start is not None:
            self.on_start()
        cfg = self.cfg
        start = time.perf_counter()
        arch = self.space.suggest(trial)
        c = cost(arch, cfg.resolution)
        trial.set_user_attr("arch", arch.to_dict())
        trial.set_user_attr("arch_name", arch.name)
        trial.set_user_attr("arch_key", arch.key)
        trial.set_user_attr("cost", c.summary())

        earlier = self._previous(trial.study, arch)
        if earlier is not None:  # the same arch again: reuse, never evaluate twice
            for key in ("latency", "latency_value", "proxy", "feasible", "reason"):
                if key in earlier.user_attrs:
                    trial.set_user_attr(key, earlier.user_attrs[key])
            for key, value in earlier.constraints.items() if hasattr(earlier, "constraints") else ():
                trial.set_constraint(key, value)
            trial.set_user_attr("duplicate_of", earlier.number)
            return earlier.values if len(earlier.values) > 1 else earlier.value

        budget = self.latency.budget
        if budget is not None:
            estimate = self.latency.estimate(c)
            if estimate is not None and estimate > cfg.prefilter_margin * budget:
                trial.set_user_attr("latency_estimate", estimate)
                self._infeasible(trial, estimate, f"pre-filter: estimated latency {estimate:.4g} is over "
                                                  f"{cfg.prefilter_margin:g} x the budget {budget:g}")

        latency = self.latency.get(arch)
        trial.set_user_attr("latency", _clean(latency.record))
        if latency.error is not None:
            trial.set_user_attr("failure", f"latency: {latency.error}")
            raise CandidateFailed(f"latency measurement failed: {latency.error}")
        self.latency.learn(c, latency)
        value = self.latency.value(latency)
        trial.set_user_attr("latency_ms", latency.ms)
        trial.set_user_attr("latency_ratio", latency.ratio)
        trial.set_user_attr("latency_value", value)
        if budget is not None:
            if value > budget:
                self._infeasible(trial, value, f"latency {value:.4g} is over the budget {budget:g}")
            trial.set_constraint(CONSTRAINT, value - budget)
        trial.set_user_attr("feasible", True)

        try:
            proxy = self._proxy(trial, arch)
        except optuna.TrialPruned:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of one candidate must not stop the search
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            trial.set_user_attr("failure", f"proxy: {type(exc).__name__}: {first}")
            raise CandidateFailed(first) from exc
        trial.set_user_attr("proxy", _clean(proxy))
        trial.set_user_attr("seconds", time.perf_counter() - start)
        if not math.isfinite(proxy["value"]):
            trial.set_user_attr("failure", f"proxy {cfg.proxy} returned {proxy['value']}")
            raise CandidateFailed(f"proxy {cfg.proxy} returned {proxy['value']}")
        if cfg.mode == "pareto":
            return proxy["value"], latency.ms
        return proxy["value"]


def directions(cfg: SearchConfig) -> List[str]:
    return ["maximize", "minimize"] if cfg.mode == "pareto" else ["maximize"]
