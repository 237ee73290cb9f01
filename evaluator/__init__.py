"""What a candidate is worth: measured latency (`latency`), per-part lookup tables (`lut`),
kernel-level latency predictors (`predictor`).

Names are imported on first use, so a process that only needs a light module of the package
(the ONNX Runtime timer, `_ort_timer`) never loads MindSpore.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LatencyResult": "latency", "backends": "latency", "measure": "latency",
    "LatencyTable": "lut", "build_table": "lut", "check_table": "lut",
    "LatencyPredictor": "predictor", "check_predictor": "predictor", "build_predictor": "_predictor_build",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'evaluator' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


__all__ = sorted(_EXPORTS)
