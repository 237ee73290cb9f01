"""What the latency predictor knows about a part: its group and its features, both taken from
the cost model's per-layer rows (`space.cost`'s builders: one source for FLOPs and memory access).

A *group* is a part kind at one input size (``s2@28``: the stride-2 units taking 28x28
inputs; ``stem@224``, ``s1@7``, ``head@7``); each group gets its own regression. Features
of a part, summed over its layers:

* ``calls``: 1 (the part's fixed cost inside a graph);
* ``<op>_flops`` for op in conv (dense convolutions), dwconv, dense: multiply-adds. With an
  ``align`` A the FLOPs of layers whose channel counts are all multiples of A and of the
  others go to two features (``..._aligned`` / ``..._unaligned``): ONNX Runtime's blocked
  convolutions need channels in multiples of 4, and a stride-1 unit whose half-width is not
  one ran 1.6-2x slower here at equal FLOPs;
* ``elementwise``: elements through BN, ReLU, shuffle, concat, mean;
* ``mac``: memory access (elements read and written, weights included).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from space import LayerCost
from space import head_layers, stem_layers, unit_layers

from ._parts import Part, part_key

ALIGNMENTS: Tuple[Optional[int], ...] = (None, 4, 8, 16)  # the choices a group's fit selects from
_WEIGHTED_OPS = ("conv", "dwconv", "dense")


def part_group(part: Part) -> str:
    """``stem@224``, ``s2@28``, ``s1@14``, ``head@7``: kind and input size."""
    kind = part["kind"]
    if kind == "block":
        kind = f"s{part['stride']}"
    elif kind not in ("stem", "head"):
        raise ValueError(f"part kind {kind!r} has no group")
    return f"{kind}@{part['size']}"


def part_layers(part: Part) -> Tuple[LayerCost, ...]:
    """The cost model's rows of one part."""
    kind = part["kind"]
    if kind == "stem":
        return stem_layers(part["out"], part["size"], part["in"])
    if kind == "head":
        return head_layers(part["in"], part["out"], part["size"], part["classes"])
    if kind == "block":
        tensor_in = part["out"] if part["stride"] == 1 else part["in"]
        return unit_layers(tensor_in, part["out"], part["kernel"], part["stride"], part["size"])
    raise ValueError(f"part kind {kind!r} has no layers")


def _aligned(row: LayerCost, align: int) -> bool:
    return row.in_channels % align == 0 and row.out_channels % align == 0


def layer_features(rows: Sequence[LayerCost], align: Optional[int]) -> Dict[str, float]:
    """The features of a set of layers (see the module docstring)."""
    features: Dict[str, float] = {"calls": 1.0, "elementwise": 0.0, "mac": 0.0}
    for row in rows:
        if row.op in _WEIGHTED_OPS:
            name = f"{row.op}_flops"
            if align is not None:
                name += "_aligned" if _aligned(row, align) else "_unaligned"
            features[name] = features.get(name, 0.0) + row.flops
        features["elementwise"] += row.elementwise
        features["mac"] += row.mac
    return features


@lru_cache(maxsize=65536)
def _cached(key: str, part_items: Tuple, align: Optional[int]) -> Tuple[Tuple[str, float], ...]:
    return tuple(layer_features(part_layers(dict(part_items)), align).items())


def part_features(part: Part, align: Optional[int]) -> Dict[str, float]:
    """Features of ``part`` with FLOPs split by channel alignment ``align`` (None: not split)."""
    return dict(_cached(part_key(part), tuple(sorted(part.items())), align))


def design_matrix(parts: Sequence[Part], names: Sequence[str], align: Optional[int]) -> np.ndarray:
    """Rows: parts; columns: the features ``names`` (absent features are 0)."""
    rows = [part_features(p, align) for p in parts]
    return np.array([[r.get(n, 0.0) for n in names] for r in rows], dtype=float)


def feature_names(parts: Sequence[Part], align: Optional[int]) -> List[str]:
    """The features that are non-zero for some of ``parts``, in a stable order."""
    seen: Dict[str, None] = {}
    for p in parts:
        for name, value in part_features(p, align).items():
            if value:
                seen.setdefault(name, None)
    order = ["calls"] + sorted(n for n in seen if n.endswith(("flops", "aligned"))) + ["elementwise", "mac"]
    return [n for n in order if n in seen]


def part_coords(part: Part) -> Tuple[float, float, float]:
    """Where a part sits in its group, for spreading samples: (input channels, output channels, kernel)."""
    if part["kind"] == "block":
        tensor_in = part["out"] if part["stride"] == 1 else part["in"]
        return float(tensor_in), float(part["out"]), float(part["kernel"])
    return float(part["in"]), float(part["out"]), 0.0
