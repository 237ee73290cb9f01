"""Building a latency predictor on the target: a budget of parts and minutes, spent where the
error weighs most, then the graph term fitted on whole archs.

1. Every distinct part of the spaces is a candidate (`lut.space_parts`), grouped by kind and
   input size (`_features.part_group`).
2. An initial design per group: the largest part, then the part farthest from those taken
   (channels and kernel, scaled to the group's range), and so on.
3. Rounds of ``batch`` parts (one worker each) until the budget of parts or minutes is spent.
   Each round refits every group (out-of-fold error of each feature set, `_regression`) and
   gives its parts to the groups whose error weighs most in an arch (share of the predicted
   latency x out-of-fold error / sqrt(parts measured)): half near the worst-predicted parts,
   half far from every part measured.
4. Whole archs sampled from the spaces and the references are measured; the graph term's
   features (`predictor.graph_terms`) are chosen by leave-one-out error on them.

Resumable: measured parts go to a .jsonl file as they arrive (`_parts_run.PartsFile`) with the
measuring seconds of each round, so a rerun continues and the minutes budget counts across runs;
whole archs come back from the latency cache.
"""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from common import UserError
from space import DEFAULT_REFERENCE, Arch, SearchSpace, cost, reference

from common.env import utc_now
from ._features import ALIGNMENTS, design_matrix, feature_names, part_coords, part_group
from ._header import measure_whole
from ._parts import Part, arch_parts, empty_part, part_key
from ._parts_run import PartsFile, failure_summary, measure_parts
from ._regression import choose_fit, fit_linear, leave_one_out_linear
from .latency import base_request
from .lut import DEFAULT_PART_REPEATS, space_parts
from .predictor import FORMAT, VERSION, LatencyPredictor, PartFits, graph_terms

DEFAULT_BUDGET_PARTS = 800
DEFAULT_BUDGET_MINUTES = 20.0
DEFAULT_WHOLE_ARCHS = 16
BATCH = 24
INITIAL_PER_GROUP = 10
SHARE_ARCHS = 32  # archs sampled to weigh each group by its share of the latency
GRAPH_TERM_SETS = (("intercept",), ("intercept", "operators"), ("intercept", "parts_ms"),
                   ("intercept", "weights_m"), ("intercept", "operators", "parts_ms"),
                   ("intercept", "operators", "weights_m"))
SIMPLER_WITHIN = 1.1  # a graph term set with fewer terms wins unless the richer one is 10 % better
Progress = Callable[[int, int, str], None]
Record = Dict[str, Any]


class DeviceTarget:
    """Parts and whole archs measured for real, in worker processes on this host's device."""

    def __init__(self, request: Dict[str, Any], settings: Dict[str, Any], cache: Any, device_id: int,
                 timeout_per_part: float = 120.0) -> None:
        self.request, self.settings, self.cache, self.device_id = request, settings, cache, device_id
        self.timeout_per_part = timeout_per_part
        self.environment: Dict[str, Any] = {}

    def measure_parts(self, parts: List[Part], report: Callable[[Record], None]) -> Dict[str, str]:
        return measure_parts(parts, self.request, self.timeout_per_part, len(parts), report, self.environment)

    def measure_arch(self, arch: Arch) -> float:
        result = measure_whole(arch, self.settings, cache=self.cache, device_id=self.device_id)
        if not result.ok:
            raise UserError(f"measuring the whole arch {arch.name} failed: {result.error}")
        if not self.environment:
            self.environment.update(result.environment)
        return float(result.median_ms)


class _Group:
    """The candidate parts of one group and which of them are taken (measured, chosen or failed)."""

    def __init__(self, name: str, parts: List[Part]) -> None:
        self.name = name
        self.parts = parts
        self.keys = [part_key(p) for p in parts]
        self.index = {k: i for i, k in enumerate(self.keys)}
        coords = np.array([part_coords(p) for p in parts], dtype=float)
        span = np.ptp(coords, axis=0)
        span[span == 0] = 1.0
        self.x = (coords - coords.min(axis=0)) / span
        self.taken = np.zeros(len(parts), dtype=bool)
        self.distance = np.full(len(parts), np.inf)

    @property
    def left(self) -> int:
        return int((~self.taken).sum())

    def take(self, i: int) -> Part:
        self.taken[i] = True
        self.distance = np.minimum(self.distance, np.linalg.norm(self.x - self.x[i], axis=1))
        return self.parts[i]

    def take_all(self, keys: set) -> None:
        """Mark the parts with these keys taken (measured or failed)."""
        for i, key in enumerate(self.keys):
            if key in keys and not self.taken[i]:
                self.take(i)

    def farthest(self) -> Optional[int]:
        """The untaken part farthest from every taken one (the largest part first)."""
        if self.left == 0:
            return None
        if not self.taken.any():
            return int(np.argmax(self.x.sum(axis=1)))
        return int(np.argmax(np.where(self.taken, -1.0, self.distance)))

    def nearest(self, i: int) -> Optional[int]:
        """The untaken part nearest to part ``i``."""
        if self.left == 0:
            return None
        d = np.linalg.norm(self.x - self.x[i], axis=1)
        return int(np.argmin(np.where(self.taken, np.inf, d)))


def _groups(spaces: Sequence[SearchSpace], resolution: int, num_classes: int) -> Dict[str, _Group]:
    found: Dict[str, Part] = {}
    for space in spaces:
        for part in space_parts(space, resolution, num_classes):
            if part["kind"] != "empty":
                found.setdefault(part_key(part), part)
    by_group: Dict[str, List[Part]] = {}
    for key in sorted(found):
        by_group.setdefault(part_group(found[key]), []).append(found[key])
    return {name: _Group(name, parts) for name, parts in sorted(by_group.items())}


def _initial_design(groups: Dict[str, _Group], per_group: int) -> List[Part]:
    """A deterministic spread of ``per_group`` parts per group, taking turns between groups
    (so a small budget still reaches every group), independent of what is measured (so a
    resumed build asks for the same parts)."""
    per = []
    for group in groups.values():
        fresh = _Group(group.name, group.parts)
        per.append([fresh.take(fresh.farthest()) for _ in range(min(per_group, len(group.parts)))])
    return [p for turn in itertools.zip_longest(*per) for p in turn if p is not None]


def _fit_group(parts: List[Part], y_total: np.ndarray, empty_ms: float) -> Dict[str, Any]:
    """The group's best fit by out-of-fold error: which alignment split of the FLOPs (or none),
    non-negative coefficients or free ones."""
    y = y_total - empty_ms
    candidates, setting = {}, {}
    for nonnegative in (True, False):
        for align in ALIGNMENTS:
            label = ("none" if align is None else f"align {align}") + ("" if nonnegative else ", free signs")
            names = feature_names(parts, align)
            candidates[label] = (design_matrix(parts, names, align), nonnegative)
            setting[label] = (names, align, nonnegative)
    label, coef, errors, scores = choose_fit(candidates, y, np.maximum(y_total, 1e-9))
    names, align, nonnegative = setting[label]
    return {"features": names, "align": align, "nonnegative": nonnegative, "coef": coef.tolist(),
            "cv_mape_pct": scores[label], "candidates_cv_mape_pct": scores, "parts": len(parts),
            "oof_errors": errors}


def _fit_all(groups: Dict[str, _Group], measured: Dict[str, Record], empty_ms: float) -> Dict[str, Dict[str, Any]]:
    fits = {}
    for name, group in groups.items():
        parts = [p for p, k in zip(group.parts, group.keys) if k in measured]
        if parts:
            y = np.array([measured[part_key(p)]["median_ms"] for p in parts])
            fits[name] = {**_fit_group(parts, y, empty_ms), "measured": [part_key(p) for p in parts]}
    return fits


def _shares(fits: Dict[str, Dict[str, Any]], archs: List[Arch], resolution: int, num_classes: int,
            empty_ms: float) -> Dict[str, float]:
    """Each group's mean share of the predicted latency of ``archs`` (parts only)."""
    model = PartFits(fits)
    totals: Dict[str, float] = {name: 0.0 for name in fits}
    for arch in archs:
        per_group: Dict[str, float] = {}
        for part in arch_parts(arch, resolution, num_classes):
            group = part_group(part)
            per_group[group] = per_group.get(group, 0.0) + model.part_ms(part)
        whole = empty_ms + sum(per_group.values())
        for group, ms in per_group.items():
            totals[group] += ms / whole / len(archs)
    return totals


def _next_round(groups: Dict[str, _Group], fits: Dict[str, Dict[str, Any]], shares: Dict[str, float],
                size: int) -> List[Part]:
    """``size`` parts for the groups whose error weighs most; half near their worst-predicted
    parts, half far from everything measured."""
    score = {}
    for name, group in groups.items():
        if group.left == 0:
            continue
        fit = fits.get(name)
        if fit is None or fit["parts"] < 3:
            score[name] = math.inf
            continue
        rms = float(np.sqrt(np.nanmean(np.square(fit["oof_errors"])))) if fit["parts"] else 1.0
        score[name] = shares.get(name, 0.0) * rms / math.sqrt(fit["parts"])
    given: Dict[str, int] = {name: 0 for name in score}
    chosen: List[Part] = []
    while len(chosen) < size:
        open_groups = [n for n in given if groups[n].left > 0]
        if not open_groups:
            break
        name = max(open_groups, key=lambda n: (score[n] / (1 + given[n]), n))
        group = groups[name]
        fit = fits.get(name)
        pick = None
        if given[name] % 2 == 0 and fit is not None and fit["parts"] >= 3:
            worst = np.argsort(-np.abs(np.nan_to_num(fit["oof_errors"])))
            near = given[name] // 2
            if near < len(worst):
                pick = group.nearest(group.index[fit["measured"][int(worst[near])]])
        if pick is None:
            pick = group.farthest()
        chosen.append(group.take(pick))
        given[name] += 1
    return chosen


def _fit_graph(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Choose and fit the graph term on whole archs: measured - parts = sum of coef x term."""
    y = np.array([r["measured_ms"] - r["parts_ms"] for r in rows])
    measured = np.array([r["measured_ms"] for r in rows])
    scores, best = {}, None
    for terms in GRAPH_TERM_SETS:
        if len(rows) < len(terms) + 2:
            continue
        x = np.array([[r["terms"][t] for t in terms] for r in rows])
        loo = leave_one_out_linear(x, y)
        scores["+".join(terms)] = float(np.mean(np.abs(loo - y) / measured) * 100)
        if best is None or scores["+".join(terms)] * SIMPLER_WITHIN < scores["+".join(best)]:
            best = terms
    if best is None:
        best = ("intercept",)
    x = np.array([[r["terms"][t] for t in best] for r in rows])
    coef = fit_linear(x, y) if rows else np.zeros(len(best))
    return {"terms": list(best), "coef": coef.tolist(), "loo_mape_pct": scores.get("+".join(best)),
            "candidates_loo_mape_pct": scores,
            "archs": [{k: r[k] for k in ("arch", "measured_ms", "parts_ms")} for r in rows]}


def _whole_archs(spaces: Sequence[SearchSpace], n: int, seed: int) -> List[Arch]:
    """``n`` distinct archs, drawn from the spaces in turn."""
    rng = np.random.default_rng(seed)
    archs, keys = [], set()
    for space in itertools.islice(itertools.cycle(spaces), 100 * n + 10):
        if len(archs) >= n:
            break
        arch = space.sample(rng)
        if arch.key not in keys:
            keys.add(arch.key)
            archs.append(arch)
    return archs


def check_budget(budget_parts: int, budget_minutes: float, whole_archs: int, batch: int) -> None:
    if isinstance(budget_parts, bool) or not isinstance(budget_parts, int) or budget_parts < 1:
        raise UserError(f"the budget of parts must be a positive integer, got {budget_parts!r}")
    if not budget_minutes > 0:
        raise UserError(f"the budget of minutes must be positive, got {budget_minutes!r}")
    if whole_archs < 3:
        raise UserError(f"the graph term needs at least 3 whole archs, got {whole_archs}")
    if batch < 1:
        raise UserError(f"the batch of parts per worker must be at least 1, got {batch}")


def build_predictor(spaces: Sequence[Union[SearchSpace, str, Path]], *, backend: str = "mindspore",
                    device: str = "CPU", device_id: int = 0, batch_size: int = 1, resolution: int = 224,
                    dtype: str = "float32", warmup: int = 10, repeats: Optional[int] = None,
                    threads: Optional[int] = 1, num_classes: int = 1000, clock: str = "wall",
                    budget_parts: int = DEFAULT_BUDGET_PARTS, budget_minutes: float = DEFAULT_BUDGET_MINUTES,
                    whole_archs: int = DEFAULT_WHOLE_ARCHS, references: Sequence[str] = (DEFAULT_REFERENCE,), seed: int = 0,
                    partial: Union[str, Path, None] = None, batch: int = BATCH, cache: Any = "default",
                    progress: Optional[Progress] = None, target: Any = None) -> LatencyPredictor:
    """Build a predictor for ``spaces`` on the target (see the module docstring).

    The budget caps the parts measured (``budget_parts``) and the seconds spent measuring
    them (``budget_minutes``, counted across resumed runs); ``whole_archs`` archs sampled from
    the spaces plus the ``references`` are measured whole for the graph term, and the
    references' measured latencies are kept for ratio mode. ``partial`` (a .jsonl path) keeps
    finished parts for a resumed build. ``target`` replaces the device (tests: a synthetic
    latency); it needs ``measure_parts(parts, report) -> failed``, ``measure_arch(arch) -> ms``
    and an ``environment`` dict.
    """
    spaces = [s if isinstance(s, SearchSpace) else SearchSpace.from_yaml(s) for s in spaces]
    if not spaces:
        raise UserError("give at least one search space to build a predictor for")
    check_budget(budget_parts, budget_minutes, whole_archs, batch)
    for name in references:
        reference(name)  # an unknown name is a UserError before anything is measured
    repeats = repeats or DEFAULT_PART_REPEATS.get(backend, 50)
    request = base_request(backend, device, device_id, batch_size, resolution, dtype, warmup, repeats, threads,
                           num_classes, clock)
    settings = {k: request[k] for k in ("batch_size", "resolution", "dtype", "backend", "device", "num_classes",
                                        "threads", "clock")}
    header = {**{k: v for k, v in request.items() if k != "device_id"}, "spaces": [s.to_dict() for s in spaces],
              "format": FORMAT, "version": VERSION}
    done = PartsFile(partial, header)
    target = target or DeviceTarget(request, settings, cache, device_id)
    groups = _groups(spaces, resolution, num_classes)
    total = budget_parts + 1 + whole_archs + len(references)
    count = len(done.measured)
    spent = sum(n.get("measure_s", 0.0) for n in done.notes)

    def report(record: Record) -> None:
        nonlocal count
        count += 1
        done.add(record)
        if progress is not None:
            what = record["key"] + (f" FAILED: {record['error']}" if "error" in record else
                                    f" {record['median_ms']:.3f} ms")
            progress(count, total, what)

    failed: Dict[str, str] = {}

    def run(parts: List[Part]) -> None:
        nonlocal spent
        start = time.monotonic()
        failed.update(target.measure_parts(parts, report))
        seconds = time.monotonic() - start
        spent += seconds
        done.note(measure_s=seconds, parts=len(parts))

    empty = empty_part()
    if "empty" not in done.measured:
        run([empty])
    if "empty" not in done.measured:
        raise UserError(f"measuring the empty call failed: {failed.get('empty')}")
    per_group = max(3, min(INITIAL_PER_GROUP, budget_parts // max(len(groups), 1)))
    initial = [p for p in _initial_design(groups, per_group) if part_key(p) not in done.measured]
    while initial and _parts_measured(done) < budget_parts and spent < 60 * budget_minutes:
        size = min(batch, budget_parts - _parts_measured(done))
        run(initial[:size])
        initial = initial[size:]
    empty_ms = done.measured["empty"]["median_ms"]
    share_archs = _whole_archs(spaces, SHARE_ARCHS, seed + 1)
    while True:
        for group in groups.values():
            group.take_all(set(done.measured) | set(failed))
        left = budget_parts - _parts_measured(done)
        if left <= 0 or spent >= 60 * budget_minutes:
            break
        fits = _fit_all(groups, done.measured, empty_ms)
        shares = _shares(fits, [a for a in share_archs if _covered(a, fits, resolution, num_classes)], resolution,
                         num_classes, empty_ms)
        chosen = _next_round(groups, fits, shares, min(batch, left))
        if not chosen:
            break
        run(chosen)
    missing = sorted(g.name for g in groups.values() if not any(k in done.measured for k in g.keys))
    if missing:
        raise UserError(f"no part of group(s) {', '.join(missing)} could be measured within the budget; "
                        + (failure_summary(failed, count) if failed else "raise --budget-parts or --budget-minutes"))
    fits = _fit_all(groups, done.measured, empty_ms)
    data = _assemble(settings, spaces, repeats, empty_ms, fits, groups, done, spent, failed, budget_parts,
                     budget_minutes)
    predictor = LatencyPredictor(data)
    whole_start = time.monotonic()

    def measured_whole(arch: Arch) -> float:
        nonlocal count
        ms = target.measure_arch(arch)
        count += 1
        if progress is not None:
            progress(count, total, f"whole arch {arch.name}: {ms:.3f} ms")
        return ms

    rows, data["references"] = _whole_rows(predictor, _whole_archs(spaces, whole_archs, seed), references,
                                           measured_whole)
    data["graph"] = _fit_graph(rows)
    data["build"]["whole_s"] = time.monotonic() - whole_start
    data["environment"] = dict(target.environment)
    return LatencyPredictor(data)


def _whole_rows(predictor: LatencyPredictor, archs: List[Arch], references: Sequence[str],
                measured: Callable[[Arch], float]) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """Measure the whole archs and the references: the graph term's rows (archs inside the
    predictor's spaces, each once) and the references' measured latencies."""
    rows, refs, seen = [], {}, set()
    for arch in archs + [reference(name) for name in references]:
        ms = measured(arch)
        for name in references:
            if reference(name) == arch:
                refs[name] = {"arch": arch.to_dict(), "median_ms": ms}
        if arch.key not in seen and any(s.contains(arch) for s in predictor.spaces):
            seen.add(arch.key)
            costed = cost(arch, predictor.resolution, predictor.num_classes)
            parts = predictor.parts_ms(arch, costed)
            rows.append({"arch": arch.to_dict(), "measured_ms": ms, "parts_ms": parts,
                         "terms": graph_terms(costed, parts)})
    return rows, refs


def _parts_measured(done: PartsFile) -> int:
    return len(done.measured) - ("empty" in done.measured)


def _covered(arch: Arch, fits: Dict[str, Any], resolution: int, num_classes: int) -> bool:
    return all(part_group(p) in fits for p in arch_parts(arch, resolution, num_classes))


def _assemble(settings: Dict[str, Any], spaces: List[SearchSpace], repeats: int, empty_ms: float,
              fits: Dict[str, Dict[str, Any]], groups: Dict[str, _Group], done: PartsFile, spent: float,
              failed: Dict[str, str], budget_parts: int, budget_minutes: float) -> Dict[str, Any]:
    """The predictor file's data before the graph term (which needs the part fits)."""
    group_data = {name: {**{k: v for k, v in fit.items() if k not in ("oof_errors", "measured")},
                         "pool": len(groups[name].parts)} for name, fit in fits.items()}
    group_of = {key: group.name for group in groups.values() for key in group.keys}
    parts = {key: {"group": group_of.get(key, "empty"),
                   **{k: r[k] for k in ("median_ms", "p10_ms", "p90_ms", "compile_s") if k in r}}
             for key, r in done.measured.items()}
    return {
        "format": FORMAT, "version": VERSION, "created_utc": utc_now(), "environment": {},
        "spaces": [s.to_dict() for s in spaces], **settings, "part_repeats": repeats, "empty_ms": empty_ms,
        "groups": group_data, "graph": {"terms": [], "coef": []}, "references": {},
        "build": {"parts_measured": _parts_measured(done), "parts_failed": failed, "measure_s": spent,
                  "budget_parts": budget_parts, "budget_minutes": budget_minutes,
                  "compile_s": float(sum(r.get("compile_s", 0.0) for r in done.measured.values())),
                  "rounds": len(done.notes)},
        "parts": parts,
    }


__all__ = ["BATCH", "DEFAULT_BUDGET_MINUTES", "DEFAULT_BUDGET_PARTS", "DEFAULT_WHOLE_ARCHS", "DeviceTarget",
           "build_predictor"]


