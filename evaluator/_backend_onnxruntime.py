"""Backend ``onnxruntime``: the network exported to ONNX by MindSpore, run by ONNX Runtime on CPU.

Optional extra: ``pip install shufflenas[onnx]``. The thread count is fixed (default 1) so
that results do not depend on how many cores happen to be free.

The worker (a MindSpore process) only exports; the exported files are timed in a process that
loads ONNX Runtime and nothing else (``TIMER``, `_ort_timer`), as a standalone program would
run them: with MindSpore loaded and run beside it, the same ONNX Runtime session read 5-18 %
slower (BENCHMARKS.md, "Absolute milliseconds").
"""

from __future__ import annotations

import time
from typing import Callable, Optional, Tuple

import numpy as np

NAME = "onnxruntime"
DEVICES = ("CPU",)
DTYPES = ("float32",)
REQUIRES = "onnxruntime"
INSTALL_HINT = "pip install shufflenas[onnx]"
TIMER = "evaluator._ort_timer"  # the module that times exported files in a clean process

_threads: int = 1


def version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def set_threads(threads: Optional[int]) -> Optional[int]:
    global _threads
    _threads = 1 if threads is None else threads
    return _threads


def export(cell, example: np.ndarray, path: str) -> float:
    """Write ``cell`` as an ONNX file at ``path`` (MindSpore's exporter); returns the seconds it took."""
    import mindspore as ms

    start = time.perf_counter()
    cell.set_train(False)
    stem = path[:-len(".onnx")] if path.endswith(".onnx") else path
    ms.export(cell, ms.Tensor(np.ascontiguousarray(example.astype(np.float32))), file_name=stem,
              file_format="ONNX")
    return time.perf_counter() - start


def session_runner(path: str, example: np.ndarray, threads: int) -> Tuple[Callable[[], None], float]:
    """A callable running the ONNX file once on ``example`` in a 1-process CPU session with
    ``threads`` intra-op threads, and the seconds of session creation plus the first run."""
    import onnxruntime as ort

    start = time.perf_counter()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.ascontiguousarray(example, dtype=np.float32)}

    def run() -> None:
        session.run(None, feed)

    run()
    return run, time.perf_counter() - start
