"""Timing loop shared by every backend: interleaved warm-up until stable, then timed blocks.

Each callable runs the network once and returns after the device has finished (the
backend synchronises); this module only decides how often and in which order to call them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Sequence

import numpy as np

# "wall": elapsed time, the latency a user sees. "cpu": CPU seconds of the whole process, which
# on a shared, oversubscribed host leaves out the time the OS gave to other processes; it
# approximates the unloaded latency of single-threaded inference (threads=1) only.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}

# Warm-up is "stable" when the median of the last STABLE_WINDOW runs is within STABLE_TOL of
# the median of the window before it.
STABLE_WINDOW = 5
STABLE_TOL = 0.05
# Interleaving: each callable runs BLOCK times in a row; with several callables the first DROP
# runs of a block (the cache refill after a switch) are not timed.
BLOCK = 10
DROP = 2
# Part of every cached result's key: results timed another way (run-by-run alternation, ONNX
# Runtime beside MindSpore) are not reused.
METHOD = "blocks-10-2/clean-onnxruntime"


@dataclass
class Timings:
    """Seconds per timed run for each callable, the warm-up runs done, whether it settled, and
    how many consecutive timed runs of one callable form a block (see `time_interleaved`)."""

    runs: List[List[float]]
    warmup_runs: int
    stable: bool
    block: int = 1


def _settled(times: Sequence[float]) -> bool:
    if len(times) < 2 * STABLE_WINDOW:
        return False
    last = float(np.median(times[-STABLE_WINDOW:]))
    before = float(np.median(times[-2 * STABLE_WINDOW:-STABLE_WINDOW]))
    return abs(last - before) <= STABLE_TOL * before


def time_interleaved(fns: Sequence[Callable[[], None]], warmup: int, repeats: int,
                     max_warmup: int = 0, clock: str = "wall", block: int = BLOCK, drop: int = DROP) -> Timings:
    """Time every callable ``repeats`` times, in interleaved blocks, after a shared warm-up.

    Each callable runs ``block`` times in a row, then the next takes over. With several
    callables the first ``drop`` runs of each block are not timed: after a switch the caches
    hold the other network, and alternating run by run would time that refill every time
    (+13-15 % for x0_5 in ONNX Runtime, BENCHMARKS.md). Blocks keep the drift control of
    interleaving (every callable is timed in the same minutes) at the latency a network has
    when it runs on its own. A single callable has nothing to refill: no run is dropped.

    Warm-up runs at least ``warmup`` runs of each callable and continues until every
    callable's times settle (see STABLE_TOL) or ``max_warmup`` runs (default 5 x warmup, at
    least 50) have run. ``clock`` is a key of CLOCKS.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if not 0 <= drop < block:
        raise ValueError(f"need 0 <= drop < block, got drop {drop}, block {block}")
    now = CLOCKS[clock]
    drop = drop if len(fns) > 1 else 0
    timed_per_block = block - drop

    def _block(fn: Callable[[], None], timed: int, into: List[float]) -> None:
        for _ in range(drop):
            fn()
        for _ in range(timed):
            start = now()
            fn()
            into.append(now() - start)

    max_warmup = max(max_warmup or 5 * warmup, 50, warmup)
    seen: List[List[float]] = [[] for _ in fns]
    warmup_runs = 0
    while warmup_runs < max_warmup:
        for times, fn in zip(seen, fns):
            _block(fn, timed_per_block, times)
        warmup_runs += block
        if warmup_runs >= warmup and all(_settled(t) for t in seen):
            break
    stable = all(_settled(t) for t in seen)
    runs: List[List[float]] = [[] for _ in fns]
    while len(runs[0]) < repeats:
        timed = min(timed_per_block, repeats - len(runs[0]))
        for times, fn in zip(runs, fns):
            _block(fn, timed, times)
    return Timings(runs=runs, warmup_runs=warmup_runs, stable=stable, block=timed_per_block)


def stats_ms(seconds: Sequence[float]) -> Dict[str, float]:
    """median, mean, std, p10, p90 in milliseconds."""
    ms = np.asarray(seconds, dtype=float) * 1e3
    return {
        "median_ms": float(np.median(ms)),
        "mean_ms": float(ms.mean()),
        "std_ms": float(ms.std(ddof=1)) if len(ms) > 1 else 0.0,
        "p10_ms": float(np.percentile(ms, 10)),
        "p90_ms": float(np.percentile(ms, 90)),
        "runs": int(len(ms)),
    }


def paired_ratio(candidate: Sequence[float], reference: Sequence[float], block: int = 1) -> float:
    """Median over interleaved blocks of median(candidate block) / median(reference block).

    ``block`` is the number of consecutive timed runs per block (`Timings.block`); 1 pairs
    the runs one by one."""
    cand, ref = np.asarray(candidate, dtype=float), np.asarray(reference, dtype=float)
    if len(cand) != len(ref):
        raise ValueError(f"candidate and reference need the same number of runs, got {len(cand)} and {len(ref)}")
    starts = range(0, len(cand), block)
    return float(np.median([np.median(cand[i:i + block]) / np.median(ref[i:i + block]) for i in starts]))


def example_input(shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """The float32 input every network is timed on (normal noise, fixed seed)."""
    return np.random.default_rng(seed).standard_normal(tuple(shape)).astype(np.float32)


def measure_record(runners: Sequence[Callable[[], None]], compile_s: Sequence[float], warmup: int, repeats: int,
                   clock: str) -> Dict[str, Any]:
    """Time the candidate (first runner) and the reference (second, optional) interleaved; the
    record a measurement reports (statistics, warm-up, ratio to the reference)."""
    timings = time_interleaved(runners, warmup, repeats, clock=clock)
    record: Dict[str, Any] = {**stats_ms(timings.runs[0]), "compile_s": compile_s[0],
                              "warmup_runs": timings.warmup_runs, "stable": timings.stable}
    if len(runners) > 1:
        record["reference_median_ms"] = stats_ms(timings.runs[1])["median_ms"]
        record["reference_compile_s"] = compile_s[1]
        record["ratio_to_reference"] = paired_ratio(timings.runs[0], timings.runs[1], timings.block)
    return record


def part_record(key: str, run: Callable[[], None], compile_s: float, warmup: int, repeats: int,
                clock: str) -> Dict[str, Any]:
    """Time one table or predictor part alone; the record it reports."""
    timings = time_interleaved([run], warmup, repeats, clock=clock)
    return {"key": key, **stats_ms(timings.runs[0]), "compile_s": compile_s, "warmup_runs": timings.warmup_runs,
            "stable": timings.stable}
