"""`SearchSpace`: the set of ShuffleNetV2 archs a search may propose, loaded from YAML.

Format (every key but ``widths`` and ``depths`` optional)::

    name: shufflenetv2
    divisor: 4                  # every width must be a multiple (16 suits Ascend's cube unit)
    stem: [24]                  # a list of choices, or a range {low, high, step}
    widths:                     # one entry per stage: range or list
      - {low: 32, high: 256, step: 4}
      - {low: 64, high: 512, step: 4}
      - {low: 128, high: 1024, step: 4}
    depths:
      - {low: 1, high: 6}
      - [4, 6, 8]
      - {low: 1, high: 6}
    last: [1024, 2048]
    kernels: [3, 5]             # choices for every stage, or one list per stage

Widths must increase stem < w0 < w1 < w2. `suggest` narrows each stage's range to the values
that keep that true *and* leave the later stages a valid choice, so every suggestion is a
valid arch; nothing is rejected after the fact.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ._arch import KERNEL_CHOICES, MAX_CHANNELS, MAX_DEPTH, NUM_STAGES, Arch
from common.cli import read_yaml
from common.errors import UserError
from ._reference import REFERENCES

_KEYS = ("name", "divisor", "stem", "widths", "depths", "last", "kernels")
DEFAULT_SPACE = Path(__file__).resolve().parent.parent / "configs" / "spaces" / "shufflenetv2.yaml"

RandomLike = Union[None, int, np.random.Generator, random.Random]


class SpaceError(UserError):
    """A search-space spec that breaks a rule; the message names the key and the rule."""


@dataclass(frozen=True)
class _Choices:
    """Sorted distinct integer choices for one parameter."""

    values: Tuple[int, ...]

    @property
    def step(self) -> Optional[int]:
        """The common difference if the values form an arithmetic progression, else None."""
        if len(self.values) < 2:
            return 1
        step = self.values[1] - self.values[0]
        if all(b - a == step for a, b in zip(self.values, self.values[1:])):
            return step
        return None

    def index_range(self, above: int, at_most: float) -> Tuple[int, int]:
        """Indices [lo, hi] of the values v with above < v <= at_most (contiguous: sorted)."""
        lo = int(np.searchsorted(self.values, above, side="right"))
        hi = int(np.searchsorted(self.values, at_most, side="right")) - 1
        return lo, hi


def _parse_choices(key: str, spec: Any, default_step: int = 1) -> _Choices:
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - {"low", "high", "step"})
        if unknown:
            raise SpaceError(f"{key}: unknown range key(s) {', '.join(map(str, unknown))}; use low, high, step")
        if "low" not in spec or "high" not in spec:
            raise SpaceError(f"{key}: a range needs both low and high, got {dict(spec)}")
        low, high, step = spec["low"], spec["high"], spec.get("step", default_step)
        for part, v in (("low", low), ("high", high), ("step", step)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise SpaceError(f"{key}.{part}: expected an integer, got {v!r}")
        if step < 1:
            raise SpaceError(f"{key}.step: must be >= 1, got {step}")
        if low > high:
            raise SpaceError(f"{key}: low ({low}) must not exceed high ({high})")
        values = list(range(low, high + 1, step))
    elif isinstance(spec, Sequence) and not isinstance(spec, (str, bytes)):
        values = list(spec)
        if not values:
            raise SpaceError(f"{key}: the list of choices is empty")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int):
                raise SpaceError(f"{key}: choices must be integers, got {v!r}")
    elif isinstance(spec, int) and not isinstance(spec, bool):
        values = [spec]
    else:
        raise SpaceError(f"{key}: expected a list of integers or a range {{low, high, step}}, got {spec!r}")
    return _Choices(tuple(sorted(set(values))))


def _per_stage(key: str, spec: Any, default_step: int = 1) -> List[_Choices]:
    if not isinstance(spec, Sequence) or isinstance(spec, (str, bytes)) or len(spec) != NUM_STAGES:
        raise SpaceError(f"{key}: expected {NUM_STAGES} entries (one per stage), got {spec!r}")
    return [_parse_choices(f"{key}[{i}]", s, default_step) for i, s in enumerate(spec)]


def _check_range(key: str, choices: _Choices, low: int, high: int, what: str) -> None:
    bad = [v for v in choices.values if not low <= v <= high]
    if bad:
        raise SpaceError(f"{key}: {what} must be between {low} and {high}, got {bad[0]}")


class SearchSpace:
    """The ShuffleNetV2 archs a search may propose. Build with `from_yaml` or `from_dict`."""

    def __init__(self, name: str, stem: _Choices, widths: Sequence[_Choices], depths: Sequence[_Choices],
                 last: _Choices, kernels: Sequence[_Choices], divisor: int = 2) -> None:
        self.name = name
        self.divisor = divisor
        self.stem = stem
        self.widths = tuple(widths)
        self.depths = tuple(depths)
        self.last = last
        self.kernels = tuple(kernels)
        self._chain = (stem,) + self.widths
        self._upper = self._upper_bounds()
        self._counts = self._chain_counts()
        if self._counts[0].sum() == 0:
            raise SpaceError(self._infeasible_reason())

    # ----- loading --------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: Union[str, Path] = DEFAULT_SPACE) -> "SearchSpace":
        path = Path(path)
        data = read_yaml(path, "search space file", SpaceError)
        try:
            return cls.from_dict(data, default_name=path.stem)
        except SpaceError as exc:
            raise SpaceError(f"{path}: {exc}") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], default_name: str = "space") -> "SearchSpace":
        if not isinstance(data, Mapping):
            raise SpaceError(f"a search space must be a mapping with keys {', '.join(_KEYS)}")
        unknown = sorted(set(map(str, data)) - set(_KEYS))
        if unknown:
            raise SpaceError(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_KEYS)}")
        for required in ("widths", "depths"):
            if required not in data:
                raise SpaceError(f"missing required key {required!r}")
        divisor = data.get("divisor", 2)
        if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 1:
            raise SpaceError(f"divisor: must be a positive integer, got {divisor!r}")

        widths = _per_stage("widths", data["widths"], default_step=max(divisor, 2))
        filtered = []
        for i, w in enumerate(widths):
            kept = tuple(v for v in w.values if v % divisor == 0)
            if not kept:
                raise SpaceError(f"widths[{i}]: no choice is a multiple of divisor {divisor}")
            odd = [v for v in kept if v % 2]
            if odd:
                raise SpaceError(f"widths[{i}]: choice {odd[0]} is odd; widths must be even "
                                 "(stride-1 blocks split channels in half)")
            filtered.append(_Choices(kept))
            _check_range(f"widths[{i}]", filtered[-1], 2, MAX_CHANNELS, "widths")
        depths = _per_stage("depths", data["depths"])
        for i, d in enumerate(depths):
            _check_range(f"depths[{i}]", d, 1, MAX_DEPTH, "depths")
        stem = _parse_choices("stem", data.get("stem", [24]))
        _check_range("stem", stem, 1, MAX_CHANNELS, "stem channels")
        last = _parse_choices("last", data.get("last", [1024]))
        _check_range("last", last, 1, MAX_CHANNELS, "last channels")

        kernels_spec = data.get("kernels", [3])
        if (isinstance(kernels_spec, Sequence) and len(kernels_spec) == NUM_STAGES
                and all(isinstance(k, (Sequence, Mapping)) and not isinstance(k, str) for k in kernels_spec)):
            kernels = _per_stage("kernels", kernels_spec)
        else:
            kernels = [_parse_choices("kernels", kernels_spec)] * NUM_STAGES
        for i, k in enumerate(kernels):
            bad = [v for v in k.values if v not in KERNEL_CHOICES]
            if bad:
                raise SpaceError(f"kernels[{i}]: must be among {KERNEL_CHOICES}, got {bad[0]}")
        name = data.get("name", default_name)
        return cls(str(name), stem, filtered, depths, last, kernels, divisor)

    @classmethod
    def default(cls) -> "SearchSpace":
        return cls.from_yaml(DEFAULT_SPACE)

    def to_dict(self) -> dict:
        def out(c: _Choices) -> Any:
            step = c.step
            if step is not None and len(c.values) > 2:
                return {"low": c.values[0], "high": c.values[-1], "step": step}
            return list(c.values)

        return {
            "name": self.name,
            "divisor": self.divisor,
            "stem": out(self.stem),
            "widths": [out(c) for c in self.widths],
            "depths": [out(c) for c in self.depths],
            "last": out(self.last),
            "kernels": [out(c) for c in self.kernels],
        }

    # ----- feasibility ----------------------------------------------------------------------
    def _upper_bounds(self) -> Tuple[float, ...]:
        """Largest value per chain level (stem, w0, w1, w2) that still leaves later levels a choice."""
        upper: List[float] = [0.0] * len(self._chain)
        limit = math.inf
        for level in range(len(self._chain) - 1, -1, -1):
            below = [v for v in self._chain[level].values if v < limit]
            upper[level] = max(below) if below else -math.inf
            limit = upper[level]
        return tuple(upper)

    def _chain_counts(self) -> List[np.ndarray]:
        """counts[level][j]: valid completions (as Python ints) after choosing chain value j."""
        counts: List[np.ndarray] = [np.zeros(0, dtype=object)] * len(self._chain)
        counts[-1] = np.ones(len(self._chain[-1].values), dtype=object)
        for level in range(len(self._chain) - 2, -1, -1):
            nxt = np.asarray(self._chain[level + 1].values)
            suffix = np.concatenate([np.cumsum(counts[level + 1][::-1])[::-1], np.zeros(1, dtype=object)])
            start = np.searchsorted(nxt, np.asarray(self._chain[level].values), side="right")
            counts[level] = suffix[start]
        return counts

    def _infeasible_reason(self) -> str:
        names = ("stem",) + tuple(f"widths[{i}]" for i in range(NUM_STAGES))
        floor = 0
        for name, level in zip(names, self._chain):
            above = [v for v in level.values if v > floor]
            if not above:
                return (f"space {self.name!r} cannot yield any valid arch: no {name} choice exceeds {floor} "
                        f"(widths must increase stem < widths[0] < widths[1] < widths[2])")
            floor = above[0]
        return f"space {self.name!r} cannot yield any valid arch"

    # ----- queries --------------------------------------------------------------------------
    def size(self) -> int:
        """Number of distinct valid archs in the space."""
        n = int(self._counts[0].sum())
        for c in self.depths + self.kernels:
            n *= len(c.values)
        return n * len(self.last.values)

    def contains(self, arch: Arch) -> bool:
        fields = [(self.stem, arch.stem), (self.last, arch.last)]
        fields += list(zip(self.widths, arch.widths)) + list(zip(self.depths, arch.depths))
        fields += list(zip(self.kernels, arch.kernels))
        return all(value in choices.values for choices, value in fields)

    def references(self) -> List[str]:
        """Names of the reference variants that lie inside this space."""
        return [name for name, ref in REFERENCES.items() if self.contains(ref.arch)]

    # ----- proposing ------------------------------------------------------------------------
    def suggest(self, trial: "Any") -> Arch:
        """Ask an Optuna trial for an arch; parameter names are stable across trials and studies."""
        chain = []
        floor = 0
        for level, name in enumerate(("stem", "width_0", "width_1", "width_2")):
            choices = self._chain[level]
            lo, hi = choices.index_range(floor, self._upper[level])
            value = _suggest(trial, name, choices, lo, hi)
            chain.append(value)
            floor = value
        depths = [_suggest(trial, f"depth_{i}", c) for i, c in enumerate(self.depths)]
        kernels = [_suggest(trial, f"kernel_{i}", c) for i, c in enumerate(self.kernels)]
        last = _suggest(trial, "last", self.last)
        return Arch(stem=chain[0], widths=tuple(chain[1:]), depths=tuple(depths), last=last, kernels=tuple(kernels))

    def params_of(self, arch: Arch) -> Dict[str, int]:
        """The Optuna parameters that make `suggest` return ``arch`` (for ``study.enqueue_trial``)."""
        if not self.contains(arch):
            raise SpaceError(f"arch {arch.name} is not in space {self.name!r}")
        params: Dict[str, int] = {}
        named = [("stem", self.stem, arch.stem)]
        named += [(f"width_{i}", c, v) for i, (c, v) in enumerate(zip(self.widths, arch.widths))]
        named += [(f"depth_{i}", c, v) for i, (c, v) in enumerate(zip(self.depths, arch.depths))]
        named += [(f"kernel_{i}", c, v) for i, (c, v) in enumerate(zip(self.kernels, arch.kernels))]
        named += [("last", self.last, arch.last)]
        for name, choices, value in named:
            if len(choices.values) == 1:
                continue
            if choices.step is not None:
                params[name] = value
            else:
                params[f"{name}_index"] = choices.values.index(value)
        return params

    def sample(self, rng: RandomLike = None) -> Arch:
        """Draw an arch uniformly from all valid archs of the space."""
        gen = _generator(rng)
        chain = []
        floor = 0
        for level, choices in enumerate(self._chain):
            values = np.asarray(choices.values)
            weights = np.where(values > floor, self._counts[level], 0).astype(float)
            j = int(gen.choice(len(values), p=weights / weights.sum()))
            chain.append(int(values[j]))
            floor = chain[-1]

        def pick(c: _Choices) -> int:
            return int(c.values[int(gen.integers(len(c.values)))])

        return Arch(stem=chain[0], widths=tuple(chain[1:]), depths=tuple(pick(c) for c in self.depths),
                    last=pick(self.last), kernels=tuple(pick(c) for c in self.kernels))

    def __repr__(self) -> str:
        return f"SearchSpace({self.name!r}, size={self.size():.3g})"


def _suggest(trial: "Any", name: str, choices: _Choices, lo: int = 0, hi: Optional[int] = None) -> int:
    """One integer from ``choices.values[lo..hi]``; fixed choices are not asked of the trial."""
    values = choices.values
    hi = len(values) - 1 if hi is None else hi
    if len(values) == 1:
        return values[0]
    step = choices.step
    if step is not None:
        return int(trial.suggest_int(name, values[lo], values[hi], step=step))
    # Irregular lists: ask for the index so the distribution can narrow with the chain.
    return values[int(trial.suggest_int(f"{name}_index", lo, hi))]


def _generator(rng: RandomLike) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, random.Random):
        return np.random.default_rng(rng.getrandbits(64))
    return np.random.default_rng(rng)
