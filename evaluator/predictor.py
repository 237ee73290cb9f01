"""Kernel-level latency predictor: any arch of a space, predicted from regressions fitted on
parts measured on the target device (built by `_predictor_build.build_predictor`, or
`search.py predictor build`).

    >>> from evaluator.predictor import LatencyPredictor
    >>> p = LatencyPredictor.load("predictor.json")
    >>> p.predict(arch)                      # ms per batch, about 0.1 ms of Python

Per group (a part kind at one input size, see `_features`) a non-negative regression over
the part's cost-model features predicts ``part - empty`` (the part without the fixed cost of
one call). An arch's latency::

    empty + sum over its parts of group_fit(part) + graph term

The graph term (intercept, per-operator overhead x operator count, and what else its
leave-one-out fit on whole archs chose) carries what parts measured alone miss: the call
structure and the caches of a whole network. A predictor is tied to its settings (batch,
resolution, dtype, backend, device, clock) and spaces; anything else is a UserError.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from common import UserError
from space import Arch, Cost, SearchSpace, cost

from ._check import check_predictions
from ._features import part_features, part_group
from ._header import BuiltFile
from ._parts import arch_parts, part_key

FORMAT = "shufflenas-latency-predictor"
VERSION = 1
WHAT = "latency predictor"
BUILD = "search.py predictor build"
GRAPH_TERMS = ("intercept", "operators", "weights_m", "parts_ms")


def space_within(inner: SearchSpace, outer: SearchSpace) -> bool:
    """Every choice of ``inner`` is a choice of ``outer`` (so every arch of it lies in ``outer``)."""
    pairs = [(inner.stem, outer.stem), (inner.last, outer.last)]
    pairs += list(zip(inner.widths, outer.widths)) + list(zip(inner.depths, outer.depths))
    pairs += list(zip(inner.kernels, outer.kernels))
    return all(set(a.values) <= set(b.values) for a, b in pairs)


def graph_terms(costed: Cost, parts_ms: float) -> Dict[str, float]:
    """The whole-graph features of an arch (its cost): constant, operator count, weights
    (millions) and the parts' predicted sum."""
    return {"intercept": 1.0, "operators": float(costed.num_ops), "weights_m": costed.params / 1e6,
            "parts_ms": parts_ms}


class PartFits:
    """The per-group fits: ``part - empty`` in ms for any part of a fitted group (memoised)."""

    def __init__(self, groups: Dict[str, Dict[str, Any]]) -> None:
        self._fits = {name: (g["features"], g["align"], np.asarray(g["coef"], float)) for name, g in groups.items()}
        self._part_ms: Dict[str, float] = {}

    def names(self) -> List[str]:
        return sorted(self._fits)

    def part_ms(self, part: Dict[str, Any]) -> float:
        key = part_key(part)
        if key not in self._part_ms:
            group = part_group(part)
            if group not in self._fits:
                raise UserError(f"this latency predictor has no fit for {group} parts ({key}); its groups are "
                                f"{', '.join(self.names())}: build one for this space and resolution")
            names, align, coef = self._fits[group]
            features = part_features(part, align)
            self._part_ms[key] = float(sum(c * features.get(n, 0.0) for n, c in zip(names, coef)))
        return self._part_ms[key]


class LatencyPredictor(BuiltFile):
    """A loaded (or freshly built) predictor: `load`, `save`, `check`, `predict`, `reference_ms`."""

    WHAT, BUILD, FORMAT, VERSION = WHAT, BUILD, FORMAT, VERSION

    def __init__(self, data: Dict[str, Any]) -> None:
        super().__init__(data)
        self.spaces = [SearchSpace.from_dict(s) for s in data["spaces"]]
        self.fits = PartFits(data["groups"])

    @property
    def space(self) -> SearchSpace:
        """The first space the predictor was built for (the one `check` samples by default)."""
        return self.spaces[0]

    def covers(self, space: SearchSpace) -> bool:
        return any(space_within(space, mine) for mine in self.spaces)

    def check(self, *, batch_size: Optional[int] = None, resolution: Optional[int] = None,
              space: Optional[SearchSpace] = None, dtype: Optional[str] = None, backend: Optional[str] = None,
              device: Optional[str] = None, clock: Optional[str] = None) -> None:
        """UserError if a given setting differs from what the predictor was built for, or the
        space holds archs outside the predictor's spaces."""
        self.check_settings(batch_size=batch_size, resolution=resolution, dtype=dtype, backend=backend,
                            device=device, clock=clock)
        if space is not None and not self.covers(space):
            names = ", ".join(repr(s.name) for s in self.spaces)
            raise UserError(f"this latency predictor was built for space(s) {names}, which do not hold every arch "
                            f"of space {space.name!r} ({space.to_dict()}); build one with `{BUILD} --space` "
                            f"that space")

    # ----- prediction ---------------------------------------------------------------------
    def parts_ms(self, arch: Arch, costed: Optional[Cost] = None) -> float:
        """empty + the predicted parts of ``arch`` (before the graph term)."""
        total = self.data["empty_ms"]
        for part in arch_parts(arch, self.resolution, self.num_classes, costed):
            total += self.fits.part_ms(part)
        return total

    def predict(self, arch: Arch, *, batch_size: Optional[int] = None, resolution: Optional[int] = None) -> float:
        """Predicted median latency of ``arch`` in ms per batch."""
        if batch_size is not None or resolution is not None:
            self.check(batch_size=batch_size, resolution=resolution)
        if not any(s.contains(arch) for s in self.spaces):
            names = ", ".join(repr(s.name) for s in self.spaces)
            raise UserError(f"arch {arch.name} lies outside the latency predictor's space(s) {names}; the fits hold "
                            f"only inside them: build a predictor whose --space holds it")
        costed = cost(arch, self.resolution, self.num_classes)
        parts = self.parts_ms(arch, costed)
        graph = self.data["graph"]
        terms = graph_terms(costed, parts)
        return parts + float(sum(c * terms[t] for t, c in zip(graph["terms"], graph["coef"])))

    def groups(self) -> List[str]:
        return self.fits.names()


def check_predictor(predictor: LatencyPredictor, n: int = 30, *, space: Optional[SearchSpace] = None,
                    **kwargs: Any) -> Dict[str, Any]:
    """Predicted vs measured latency of ``n`` archs sampled from ``space`` (default: its first space)."""
    return check_predictions(predictor, space or predictor.space, n, **kwargs)


__all__ = ["FORMAT", "VERSION", "LatencyPredictor", "PartFits", "check_predictor", "graph_terms", "space_within"]
