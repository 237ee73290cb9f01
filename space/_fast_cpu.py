"""Whether a network built now uses the fast CPU path: the ``fast_cpu`` switch and the kernel's health.

``fast_cpu`` is ``auto`` (default), ``on`` or ``off`` (YAML's booleans count as on/off).
``auto`` defers to the environment variable ``SHUFFLENAS_FAST_CPU`` when it is set (how worker
processes are told), and otherwise uses the fast path on CPU when the kernel builds and passes
its self-check, saying once per process in one line when it falls back to MindSpore's stock
ops. ``on`` raises `UserError` when the fast path cannot be had; GPU and Ascend never use it.

The self-check runs the compiled forward, grad-input and grad-weight kernels on a small input
(both strides, an odd and an even size) and compares them with a NumPy depthwise convolution.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from common.errors import UserError

ENV_VAR = "SHUFFLENAS_FAST_CPU"
MODES = ("auto", "on", "off")
_ALIASES = {"true": "on", "yes": "on", "1": "on", "false": "off", "no": "off", "0": "off"}
_TOLERANCE = dict(rtol=1e-4, atol=1e-5)


@dataclass(frozen=True)
class KernelStatus:
    library: Optional[str]   # absolute path of the compiled kernel, None when unusable
    reason: str = ""         # why it is unusable, one line

    @property
    def available(self) -> bool:
        return self.library is not None


_status: Optional[KernelStatus] = None
_fallback_said = False


def fast_cpu_mode(value: Union[str, bool, None], source: str = "fast_cpu") -> str:
    """``auto``/``on``/``off`` from a string or bool (None is auto); anything else is a UserError."""
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "on" if value else "off"
    mode = str(value).strip().lower()
    mode = _ALIASES.get(mode, mode)
    if mode not in MODES:
        raise UserError(f"{source} must be auto, on or off, got {value!r}")
    return mode


def kernel_status() -> KernelStatus:
    """Build (or find cached) and self-check the depthwise kernel, once per process."""
    global _status
    if _status is None:
        _status = _check_kernel()
    return _status


def use_fast_cpu(mode: Union[str, bool, None] = "auto") -> bool:
    """Whether a network built now in this process should take the fast CPU path."""
    global _fallback_said
    mode = fast_cpu_mode(mode)
    if mode == "auto" and os.environ.get(ENV_VAR):
        mode = fast_cpu_mode(os.environ[ENV_VAR], source=ENV_VAR)
    if mode == "off":
        return False
    from common.runtime import current_device

    device = current_device()
    if device != "CPU":
        if mode == "on":
            raise UserError(f"fast_cpu on is for CPU, but this process runs on {device}; use fast_cpu auto or off")
        return False
    status = kernel_status()
    if status.available:
        return True
    if mode == "on":
        raise UserError(f"fast_cpu on, but the fast CPU path cannot be used: {status.reason}; "
                        "fix that, or set fast_cpu auto (falls back to MindSpore's stock ops) or off")
    if not _fallback_said:
        print(f"fast CPU path unavailable ({status.reason}); using MindSpore's stock ops", file=sys.stderr,
              flush=True)
        _fallback_said = True
    return False


def _check_kernel() -> KernelStatus:
    from ._fast_ops import KERNEL_SOURCE
    from ._kernel_build import KernelBuildError, library_path

    try:
        library = str(library_path(KERNEL_SOURCE))
    except KernelBuildError as exc:
        return KernelStatus(None, f"kernel build: {exc}")
    try:
        problem = _self_check(library)
    except Exception as exc:  # noqa: BLE001 - any failure to load or run means: use the stock ops
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return KernelStatus(None, f"kernel self-check failed: {first}")
    return KernelStatus(None, f"kernel self-check failed: {problem}") if problem else KernelStatus(library)


def reference_depthwise(x: np.ndarray, w: np.ndarray, dy: Optional[np.ndarray], stride: int):
    """NumPy depthwise conv (padding k//2): y, and with ``dy`` also (dx, dw)."""
    k = w.shape[-1]
    p = k // 2
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (p, p), (p, p)))
    ho, wo = (x.shape[2] - 1) // stride + 1, (x.shape[3] - 1) // stride + 1

    def window(ky: int, kx: int):
        return np.s_[:, :, ky:ky + stride * (ho - 1) + 1:stride, kx:kx + stride * (wo - 1) + 1:stride]

    taps = [(ky, kx) for ky in range(k) for kx in range(k)]
    y = sum(w[None, :, 0, ky, kx, None, None] * xp[window(ky, kx)] for ky, kx in taps)
    if dy is None:
        return y
    dxp = np.zeros_like(xp)
    dw = np.zeros(w.shape, np.float64)
    for ky, kx in taps:
        dxp[window(ky, kx)] += w[None, :, 0, ky, kx, None, None] * dy
        dw[:, 0, ky, kx] = (dy * xp[window(ky, kx)]).sum(axis=(0, 2, 3))
    return y, dxp[:, :, p:p + x.shape[2], p:p + x.shape[3]], dw


def _self_check(library: str) -> str:
    """'' when the kernels match NumPy on a small input, else what differs."""
    from mindspore import Tensor

    from ._fast_ops import depthwise_op, grad_ops

    rng = np.random.default_rng(0)
    for stride, (h, w_) in ((1, (7, 6)), (2, (7, 6)), (2, (6, 5))):
        x = rng.standard_normal((2, 3, h, w_)).astype(np.float32)
        w = rng.standard_normal((3, 1, 3, 3)).astype(np.float32)
        dy = rng.standard_normal((2, 3, (h - 1) // stride + 1, (w_ - 1) // stride + 1)).astype(np.float32)
        expected = reference_depthwise(x, w, dy, stride)
        grad_input, grad_weight = grad_ops(library, stride)
        tx, tw, tdy = Tensor(x), Tensor(w), Tensor(dy)
        got = (depthwise_op(library, stride)(tx, tw), grad_input(tx, tw, tdy), grad_weight(tx, tw, tdy))
        for name, a, b in zip(("forward", "grad-input", "grad-weight"), got, expected):
            if a.shape != b.shape or not np.allclose(a.asnumpy(), b, **_TOLERANCE):
                return f"{name} differs from a reference depthwise conv (stride {stride}, {h}x{w_})"
    return ""
