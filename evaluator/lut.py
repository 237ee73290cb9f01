"""Per-part latency lookup table: measure every distinct part of a search space once on the
target device, then predict any arch of that space without touching the device.

Parts are the stem, every distinct ShuffleV2 unit (kind, channels, stride, kernel, input size)
and every head; each is measured alone in a worker (`_worker`), with the fixed cost of one
call ("empty") measured too. Prediction::

    latency(arch) = intercept + scale * (empty + sum over the arch's parts of (part - empty))

with ``intercept`` and ``scale`` fitted by least squares on a few archs measured whole.
A table is tied to its batch size, resolution, dtype, backend, device and space; asking it
about anything else is a UserError, never a guess.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from common import UserError
from space import DEFAULT_REFERENCE, Arch, SearchSpace

from ._check import Progress, check_predictions
from common.env import utc_now
from ._header import BuiltFile, measure_references, measure_whole
from ._parts import Part, arch_parts, describe, empty_part, part_key
from ._parts_run import PartsFile, failure_summary, measure_parts
from .latency import base_request

FORMAT = "shufflenas-latency-table"
VERSION = 1
WHAT = "latency table"
BUILD = "search.py lut build"
# Per-part repeats when none are given: ONNX Runtime parts take tens of microseconds.
DEFAULT_PART_REPEATS = {"onnxruntime": 200}


def _feasible_levels(space: SearchSpace) -> List[List[int]]:
    """Values of stem, widths[0..2] that lie on at least one strictly increasing chain."""
    levels = [list(space.stem.values)] + [list(w.values) for w in space.widths]
    for i in range(1, len(levels)):
        levels[i] = [v for v in levels[i] if levels[i - 1] and v > min(levels[i - 1])]
    for i in range(len(levels) - 2, -1, -1):
        levels[i] = [v for v in levels[i] if levels[i + 1] and v < max(levels[i + 1])]
    return levels


def space_parts(space: SearchSpace, resolution: int, num_classes: int = 1000) -> List[Part]:
    """Every distinct part an arch of ``space`` can contain, plus the empty call.

    For each stage and each feasible (previous width, width) pair, one valid arch holding that
    pair is taken apart with `arch_parts`, so the channel and size rules come from the network.
    """
    levels = _feasible_levels(space)
    depths = tuple(min(2, max(d.values)) for d in space.depths)
    found: Dict[str, Part] = {"empty": empty_part()}
    for level in range(1, len(levels)):
        for prev in levels[level - 1]:
            for value in (v for v in levels[level] if v > prev):
                chain = [min(levels[i]) for i in range(level - 1)] + [prev, value]
                chain += [max(levels[i]) for i in range(level + 1, len(levels))]
                for kernels in _kernel_tuples(space):
                    for last in space.last.values:
                        arch = Arch(stem=chain[0], widths=tuple(chain[1:]), depths=depths, last=last,
                                    kernels=kernels)
                        for part in arch_parts(arch, resolution, num_classes):
                            found.setdefault(part_key(part), part)
    return list(found.values())


def _kernel_tuples(space: SearchSpace) -> Iterable[tuple]:
    k0, k1, k2 = (c.values for c in space.kernels)
    # Every per-stage kernel choice must appear at least once; the full product is not needed.
    n = max(len(k0), len(k1), len(k2))
    return {(k0[min(i, len(k0) - 1)], k1[min(i, len(k1) - 1)], k2[min(i, len(k2) - 1)]) for i in range(n)}


def _same_space(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    return {k: v for k, v in a.items() if k != "name"} == {k: v for k, v in b.items() if k != "name"}


class LatencyTable(BuiltFile):
    """A loaded (or freshly built) latency table. `load`, `save`, `predict`, `check`."""

    WHAT, BUILD, FORMAT, VERSION = WHAT, BUILD, FORMAT, VERSION

    def __init__(self, data: Dict[str, Any]) -> None:
        super().__init__(data)
        self.space = SearchSpace.from_dict(data["space"])
        self.entries: Dict[str, Dict[str, Any]] = data["entries"]

    overhead = property(lambda self: self.data["overhead"], doc="the fitted intercept and scale, or None")

    def check(self, *, batch_size: Optional[int] = None, resolution: Optional[int] = None,
              space: Optional[SearchSpace] = None, dtype: Optional[str] = None, backend: Optional[str] = None,
              device: Optional[str] = None, clock: Optional[str] = None) -> None:
        """UserError if any given setting differs from what the table was built for."""
        self.check_settings(batch_size=batch_size, resolution=resolution, dtype=dtype, backend=backend,
                            device=device, clock=clock)
        if space is not None and not _same_space(space.to_dict(), self.data["space"]):
            raise UserError(f"this latency table was built for search space {self.space.name!r} "
                            f"({self.data['space']}), not for space {space.name!r}; build a table for that space")

    # ----- prediction ---------------------------------------------------------------------
    def parts_sum_ms(self, arch: Arch) -> float:
        """empty + sum of (part - empty) over the arch's parts, in ms (before the fitted overhead)."""
        empty = self.entries["empty"]["median_ms"]
        total = empty
        for part in arch_parts(arch, self.resolution, self.num_classes):
            entry = self.entries.get(part_key(part))
            if entry is None:
                raise UserError(f"arch {arch.name} needs the {describe(part)} (table entry {part_key(part)}), which "
                                f"this table does not hold: it covers space {self.space.name!r} only; choose an "
                                f"arch inside that space or build a table for yours")
            total += entry["median_ms"] - empty
        if not self.space.contains(arch):
            raise UserError(f"arch {arch.name} is outside the table's space {self.space.name!r} "
                            f"({self.data['space']}); the fitted overhead holds only inside it")
        return total

    def predict(self, arch: Arch, *, batch_size: Optional[int] = None, resolution: Optional[int] = None) -> float:
        """Predicted median latency of ``arch`` in ms per batch."""
        self.check(batch_size=batch_size, resolution=resolution)
        fit = self.overhead or {"intercept_ms": 0.0, "scale": 1.0}
        return fit["intercept_ms"] + fit["scale"] * self.parts_sum_ms(arch)


def _fit(sums: Sequence[float], measured: Sequence[float]) -> Dict[str, float]:
    """Least squares measured = intercept + scale * sum (intercept only with fewer than 3 archs)."""
    x, y = np.asarray(sums, float), np.asarray(measured, float)
    if len(x) >= 3 and np.ptp(x) > 0:
        scale, intercept = np.polyfit(x, y, 1)
    else:
        scale, intercept = 1.0, float(np.mean(y - x))
    pred = intercept + scale * x
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    return {"intercept_ms": float(intercept), "scale": float(scale), "r2": r2,
            "max_abs_error_pct": float(np.max(np.abs(pred - y) / y) * 100)}


def build_table(space: Union[SearchSpace, str, Path], *, backend: str = "mindspore", device: str = "CPU",
                device_id: int = 0, batch_size: int = 1, resolution: int = 224, dtype: str = "float32",
                warmup: int = 10, repeats: Optional[int] = None, threads: Optional[int] = 1,
                num_classes: int = 1000, clock: str = "wall", fit_archs: int = 5, seed: int = 0,
                partial: Union[str, Path, None] = None,
                chunk: int = 24, timeout_per_part: float = 120.0, cache: Any = "default",
                references: Sequence[str] = (DEFAULT_REFERENCE,), progress: Optional[Progress] = None) -> LatencyTable:
    """Measure every part of ``space``, fit the overhead on ``fit_archs`` sampled archs, return the table.

    ``partial`` (a .jsonl path) keeps finished parts, so an interrupted build resumes where it
    stopped. ``progress(done, total, what)`` is called after each part and each fit arch.
    ``references`` are measured whole too: ratio mode divides by them (`LatencyTable.reference_ms`).
    """
    if not isinstance(space, SearchSpace):
        space = SearchSpace.from_yaml(space)
    repeats = repeats or DEFAULT_PART_REPEATS.get(backend, 50)
    request = base_request(backend, device, device_id, batch_size, resolution, dtype, warmup, repeats, threads,
                           num_classes, clock)
    parts = space_parts(space, resolution, num_classes)
    total = len(parts) + fit_archs
    header = {k: v for k, v in request.items() if k != "device_id"}
    header["space"] = space.to_dict()
    done = PartsFile(partial, header)
    entries = done.measured
    environment: Dict[str, Any] = {}
    todo = [p for p in parts if part_key(p) not in entries]
    count = len(parts) - len(todo)

    def report(record: Dict[str, Any]) -> None:
        nonlocal count
        count += 1
        done.add(record)
        if progress is not None:
            progress(count, total, record["key"] + (f" FAILED: {record['error']}" if "error" in record else ""))

    if todo:
        failed = measure_parts(todo, request, timeout_per_part, chunk, report, environment)
        if failed:
            raise UserError(failure_summary(failed, len(parts)))
    table_entries = {part_key(p): {**p, **{k: entries[part_key(p)][k] for k in
                                          ("median_ms", "p10_ms", "p90_ms", "mean_ms", "std_ms", "runs",
                                           "compile_s")}} for p in parts}
    data: Dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "created_utc": utc_now(),
        "environment": environment, "space": space.to_dict(), "batch_size": batch_size,
        "resolution": resolution, "dtype": dtype, "backend": backend, "device": request["device"],
        "num_classes": num_classes, "threads": threads, "clock": clock, "part_repeats": repeats, "overhead": None,
        "entries": table_entries,
    }
    table = LatencyTable(data)
    rng = np.random.default_rng(seed)
    fit_rows = []
    for i in range(fit_archs):
        arch = space.sample(rng)
        result = measure_whole(arch, data, cache=cache, device_id=device_id, warmup=warmup)
        if not result.ok:
            raise UserError(f"fitting the overhead: measuring {arch.name} failed: {result.error}")
        if not environment:
            environment.update(result.environment)
        fit_rows.append({"arch": arch.to_dict(), "measured_ms": result.median_ms,
                         "parts_sum_ms": table.parts_sum_ms(arch)})
        if progress is not None:
            progress(len(parts) + i + 1, total, f"fit arch {arch.name}: {result.median_ms:.3f} ms")
    if fit_rows:
        data["overhead"] = {**_fit([r["parts_sum_ms"] for r in fit_rows], [r["measured_ms"] for r in fit_rows]),
                            "archs": fit_rows}
    data["references"] = measure_references(references, data, cache=cache, device_id=device_id)
    data["environment"] = environment or _environment_of(request)
    return table


def space_part_count(space: SearchSpace) -> int:
    """How many parts `space_parts` yields, counted without enumerating them (fast)."""
    levels = _feasible_levels(space)
    kernels = [len(c.values) for c in space.kernels]
    count = 1 + len(levels[0])  # empty call, stems
    for stage in range(3):
        pairs = sum(1 for prev in levels[stage] for v in levels[stage + 1] if v > prev)
        stride1 = len(levels[stage + 1]) if max(space.depths[stage].values) > 1 else 0
        count += (pairs + stride1) * kernels[stage]
    return count + len(levels[3]) * len(space.last.values)


def _environment_of(request: Dict[str, Any]) -> Dict[str, Any]:
    from common.env import environment
    from .latency import backend_module

    module = backend_module(request["backend"])
    return environment(module.NAME, None, request["device"], request["threads"])


def check_table(table: LatencyTable, n: int = 30, *, seed: int = 1, device_id: int = 0, warmup: int = 10,
                repeats: int = 50, cache: Any = "default",
                progress: Optional[Progress] = None) -> Dict[str, Any]:
    """Predicted vs measured latency of ``n`` archs sampled from the table's space."""
    return check_predictions(table, table.space, n, seed=seed, device_id=device_id, warmup=warmup, repeats=repeats,
                             cache=cache, progress=progress)


__all__ = ["FORMAT", "VERSION", "LatencyTable", "build_table", "check_table", "space_part_count", "space_parts"]
