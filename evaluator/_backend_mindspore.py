"""Backend ``mindspore``: the network run natively by MindSpore in graph mode, on any device."""

from __future__ import annotations

import time
from typing import Callable, Optional, Tuple

import numpy as np

NAME = "mindspore"
DEVICES = ("CPU", "GPU", "Ascend")
DTYPES = ("float32", "float16")
REQUIRES = "mindspore"
INSTALL_HINT = "pip install mindspore"
# With the CPU clock and 1 thread the worker keeps itself on one core: MindSpore hands each
# kernel between an actor and a kernel thread, and the waiting one spins, so spread over two
# cores the process CPU time of one x0_5 inference read 13-27 ms against a steady 12.1-12.2 ms
# on one core (64 px, shared host), where a plain script on one core read the same (0.99x).
ONE_CORE_FOR_CPU_CLOCK = True


def version() -> str:
    import mindspore

    return mindspore.__version__


def set_threads(threads: Optional[int]) -> Optional[int]:
    """Fix the CPU kernel thread count (before the first graph runs); returns what was set."""
    import mindspore as ms

    if threads is None:
        return ms.get_context("runtime_num_threads")
    tuning = getattr(getattr(getattr(ms, "device_context", None), "cpu", None), "op_tuning", None)
    if tuning is not None and hasattr(tuning, "threads_num"):
        tuning.threads_num(threads)
    else:  # MindSpore 2.3
        ms.set_context(runtime_num_threads=threads)
    return threads


def prepare(cell, example: np.ndarray, device: str, dtype: str) -> Tuple[Callable[[], None], float]:
    """A callable that runs ``cell`` once on a device-resident input and waits for the device,
    and the seconds of the first call (graph compilation plus one run)."""
    import mindspore as ms

    from common.runtime import synchronize

    cell.set_train(False)
    if dtype == "float16":
        cell.to_float(ms.float16)
    x = ms.Tensor(example.astype(np.float16 if dtype == "float16" else np.float32))
    if device != "CPU" and hasattr(x, "move_to"):
        x = x.move_to(device)

    def run() -> None:
        synchronize()
        cell(x)
        synchronize()

    start = time.perf_counter()
    run()
    return run, time.perf_counter() - start
