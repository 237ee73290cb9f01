"""Backend ``onnxruntime``: the network exported to ONNX by MindSpore, run by ONNX Runtime on CPU.

Optional extra: ``pip install shufflenas[onnx]``. The thread count is fixed (default 1) so
that results do not depend on how many cores happen to be free.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Callable, Optional, Tuple

import numpy as np

NAME = "onnxruntime"
DEVICES = ("CPU",)
DTYPES = ("float32",)
REQUIRES = "onnxruntime"
INSTALL_HINT = "pip install shufflenas[onnx]"

_threads: int = 1


def version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def set_threads(threads: Optional[int]) -> Optional[int]:
    global _threads
    _threads = 1 if threads is None else threads
    return _threads


def prepare(cell, example: np.ndarray, device: str, dtype: str) -> Tuple[Callable[[], None], float]:
    """Export ``cell`` to ONNX (temporary file), open a CPU session; the first-call seconds
    include the export, the session creation and one run."""
    import mindspore as ms
    import onnxruntime as ort

    start = time.perf_counter()
    cell.set_train(False)
    x = np.ascontiguousarray(example.astype(np.float32))
    with tempfile.TemporaryDirectory(prefix="shufflenas-onnx-") as tmp:
        path = os.path.join(tmp, "model")
        ms.export(cell, ms.Tensor(x), file_name=path, file_format="ONNX")
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session = ort.InferenceSession(path + ".onnx", options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x}

    def run() -> None:
        session.run(None, feed)

    run()
    return run, time.perf_counter() - start
