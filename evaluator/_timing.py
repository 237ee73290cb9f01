"""Timing loop shared by every backend: interleaved warm-up until stable, then timed rounds.

Each callable runs the network once and returns after the device has finished (the
backend synchronises); this module only decides how often and in which order to call them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence

import numpy as np

# "wall": elapsed time, the latency a user sees. "cpu": CPU seconds of the whole process, which
# on a shared, oversubscribed host leaves out the time the OS gave to other processes; it
# approximates the unloaded latency of single-threaded inference (threads=1) only.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}

# Warm-up is "stable" when the median of the last STABLE_WINDOW runs is within STABLE_TOL of
# the median of the window before it.
STABLE_WINDOW = 5
STABLE_TOL = 0.05


@dataclass
class Timings:
    """Seconds per timed run for each callable, the warm-up runs done, and whether it settled."""

    runs: List[List[float]]
    warmup_runs: int
    stable: bool


def _settled(times: Sequence[float]) -> bool:
    if len(times) < 2 * STABLE_WINDOW:
        return False
    last = float(np.median(times[-STABLE_WINDOW:]))
    before = float(np.median(times[-2 * STABLE_WINDOW:-STABLE_WINDOW]))
    return abs(last - before) <= STABLE_TOL * before


def time_interleaved(fns: Sequence[Callable[[], None]], warmup: int, repeats: int,
                     max_warmup: int = 0, clock: str = "wall") -> Timings:
    """Time every callable ``repeats`` times, round-robin, after a shared warm-up.

    Warm-up runs at least ``warmup`` rounds and continues until every callable's times settle
    (see STABLE_TOL) or ``max_warmup`` rounds (default 5 x warmup, at least 50) have run.
    ``clock`` is a key of CLOCKS. Interleaving puts each callable's runs in the same time window, so a change of machine
    speed during the measurement affects all of them alike.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    now = CLOCKS[clock]

    def _once(fn: Callable[[], None]) -> float:
        start = now()
        fn()
        return now() - start

    max_warmup = max(max_warmup or 5 * warmup, 50, warmup)
    seen: List[List[float]] = [[] for _ in fns]
    rounds = 0
    while rounds < max_warmup:
        for times, fn in zip(seen, fns):
            times.append(_once(fn))
        rounds += 1
        if rounds >= warmup and all(_settled(t) for t in seen):
            break
    stable = all(_settled(t) for t in seen)
    runs: List[List[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for times, fn in zip(runs, fns):
            times.append(_once(fn))
    return Timings(runs=runs, warmup_runs=rounds, stable=stable)


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


def paired_ratio(candidate: Sequence[float], reference: Sequence[float]) -> float:
    """Median of the run-by-run ratios candidate / reference (runs were interleaved)."""
    return float(np.median(np.asarray(candidate, dtype=float) / np.asarray(reference, dtype=float)))
