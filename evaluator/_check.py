"""Predicted against measured latency on archs sampled from a space: the check that a table
or a predictor (anything with ``predict(arch)`` and the settings of `_header`) earns its keep."""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional

import numpy as np

from common import UserError
from space import SearchSpace

from ._header import measure_whole

Progress = Callable[[int, int, str], None]


def check_predictions(model: Any, space: SearchSpace, n: int = 30, *, seed: int = 1, device_id: int = 0,
                      warmup: int = 10, repeats: int = 50, cache: Any = "default",
                      progress: Optional[Progress] = None) -> Dict[str, Any]:
    """Predicted vs measured latency of ``n`` archs sampled from ``space`` (seeded)."""
    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        arch = space.sample(rng)
        predicted = model.predict(arch)
        result = measure_whole(arch, model.data, cache=cache, device_id=device_id, warmup=warmup, repeats=repeats)
        row = {"arch": arch.name, "key": arch.key, "predicted_ms": predicted, "measured_ms": result.median_ms,
               "error": result.error}
        if result.ok:
            row["error_pct"] = 100.0 * (predicted - result.median_ms) / result.median_ms
        rows.append(row)
        if progress is not None:
            progress(i + 1, n, arch.name)
    errors = [abs(r["error_pct"]) for r in rows if "error_pct" in r]
    return {"n": n, "measured": len(errors), "failed": n - len(errors),
            "mape_pct": float(np.mean(errors)) if errors else math.nan,
            "max_abs_error_pct": float(np.max(errors)) if errors else math.nan,
            "within_5pct": int(sum(e <= 5 for e in errors)),
            "within_10pct": int(sum(e <= 10 for e in errors)), "rows": rows}
