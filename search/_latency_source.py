"""Latency of a candidate for the search: measured on this host's device, or predicted by a
latency table or a kernel-level predictor built on the target.

The value compared with the budget is in the budget's unit: milliseconds (``budget_ms``) or
the ratio to the reference arch (``budget_ratio``). A measured candidate's ratio comes from
the same worker and minutes as the reference; a predicted one is divided by the reference's
latency *measured* on the target when the table or predictor was built, never by a
prediction of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from space import Arch, Cost

from ._config import SearchConfig

MIN_FIT_POINTS = 6


@dataclass
class Latency:
    ms: Optional[float]
    ratio: Optional[float]  # to the reference
    source: str  # measure | lut | predictor
    record: Dict[str, Any] = field(default_factory=dict)
    error: Optional[str] = None


class CostLatencyModel:
    """latency ~ a * FLOPs + b * MAC + c * operators + d, fitted on what was measured so far.

    The analytic cost model knows no device; this fit ties it to the one being measured, so
    a candidate it puts far above the budget is skipped before a real measurement.
    """

    def __init__(self) -> None:
        self._x: List[Tuple[float, float, float]] = []
        self._y: List[float] = []
        self._coef: Optional[np.ndarray] = None

    @staticmethod
    def features(c: Cost) -> Tuple[float, float, float]:
        return (c.flops / 1e6, c.mac / 1e6, float(c.num_ops))

    def add(self, c: Cost, value: float) -> None:
        self._x.append(self.features(c))
        self._y.append(value)
        self._coef = None

    def predict(self, c: Cost) -> Optional[float]:
        if len(self._y) < MIN_FIT_POINTS:
            return None
        if self._coef is None:
            x = np.column_stack([np.asarray(self._x), np.ones(len(self._x))])
            self._coef, *_ = np.linalg.lstsq(x, np.asarray(self._y), rcond=None)
        return float(np.dot(self._coef, list(self.features(c)) + [1.0]))


def load_model(cfg: SearchConfig) -> Tuple[Any, str, str]:
    """The table or predictor of the config's latency source, with its kind and file; (None, "measure", "")."""
    if cfg.latency_source.startswith("lut"):
        from evaluator.lut import LatencyTable

        return LatencyTable.load(cfg.latency_table), "lut", cfg.latency_table
    if cfg.latency_source.startswith("predictor"):
        from evaluator.predictor import LatencyPredictor

        return LatencyPredictor.load(cfg.latency_predictor), "predictor", cfg.latency_predictor
    return None, "measure", ""


class LatencySource:
    """Measure (`evaluator.latency.measure`) or predict (`evaluator.lut.LatencyTable`,
    `evaluator.predictor.LatencyPredictor`)."""

    def __init__(self, cfg: SearchConfig) -> None:
        self.cfg = cfg
        self.table, self.kind, self.file = load_model(cfg)
        if self.table is not None:
            from space import SearchSpace

            self.table.check(batch_size=cfg.batch_size, resolution=cfg.resolution, dtype=cfg.dtype,
                             backend=cfg.backend, device=cfg.device, clock=cfg.clock,
                             space=SearchSpace.from_yaml(cfg.space))
            # Measured on the target at build time; needed only when the budget is relative to it.
            self._reference_ms = self.table.reference_ms(cfg.reference) if self.uses_ratio else None
        self.estimator = CostLatencyModel()

    @property
    def uses_ratio(self) -> bool:
        return self.cfg.budget_ratio is not None

    @property
    def budget(self) -> Optional[float]:
        return self.cfg.budget_ratio if self.uses_ratio else self.cfg.budget_ms

    def value(self, latency: Latency) -> Optional[float]:
        """The latency in the budget's unit."""
        return latency.ratio if self.uses_ratio else latency.ms

    def estimate(self, c: Cost) -> Optional[float]:
        """A cheap estimate in the budget's unit, for the pre-filter (None until enough data)."""
        if self.table is not None:
            ms = self.table.predict(c.arch)
            return ms / self._reference_ms if self._reference_ms else ms
        return self.estimator.predict(c)

    def get(self, arch: Arch) -> Latency:
        """The search's latency of ``arch``: the table's or predictor's prediction, or a real measurement."""
        if self.table is not None:
            ms = self.table.predict(arch)
            ratio = ms / self._reference_ms if self._reference_ms else None
            return Latency(ms, ratio, self.kind,
                           {"predicted_ms": ms, "reference_measured_ms": self._reference_ms,
                            self.kind: self.file, "environment": self.table.environment})
        return self.measure(arch)

    def measure(self, arch: Arch) -> Latency:
        from evaluator.latency import measure

        cfg = self.cfg
        result = measure(arch, backend=cfg.backend, device=cfg.device, device_id=cfg.device_id,
                         batch_size=cfg.batch_size, resolution=cfg.resolution, dtype=cfg.dtype,
                         warmup=cfg.latency_warmup, repeats=cfg.latency_repeats, threads=cfg.threads,
                         reference=cfg.reference, clock=cfg.clock, timeout=cfg.latency_timeout,
                         cache=cfg.latency_cache)
        record = result.to_dict()
        if not result.ok:
            return Latency(None, None, "measure", record, error=result.error)
        return Latency(result.median_ms, result.ratio_to_reference, "measure", record)

    def learn(self, c: Cost, latency: Latency) -> None:
        value = self.value(latency)
        if latency.source == "measure" and value is not None:
            self.estimator.add(c, value)
