"""Cells of the fast CPU path: drop-in replacements for two of the network's nn.Conv2d.

Both subclass nn.Conv2d and keep its ``weight`` parameter (same name, shape and
initialisation), so checkpoints move freely between a fast and a stock network; only
``construct`` differs.

* `KernelDepthwiseConv2d`: the depthwise conv on the C++ kernel (space/kernels/depthwise.cc)
  through ``ops.Custom(func_type="aot")``, with grad-input and grad-weight kernels as its bprop.
  MindSpore's CPU grouped conv spends most of a training step here.
* `UnfoldConv2d`: a dense conv with few input channels (the stem's 3x3 stride 2 over RGB) as
  im2col and one 1x1 conv. MindSpore's CPU conv is very slow for 3 input channels; on x0_5's stem
  (batch 32, forward + weight grad; in-run A/B on a shared machine, load average 1.7-4) this was
  10x (64 px) to 26x (224 px) faster than the stock conv, 1.4x to 4x faster than 9 strided
  slices + the same 1x1 conv, and as fast as (64 px) or 1.2x faster than (224 px) a matmul.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import List

from mindspore import Tensor, nn, ops

KERNEL_SOURCE = Path(__file__).resolve().parent / "kernels" / "depthwise.cc"
STRIDES = (1, 2)


class _KernelOp(ops.Custom):
    """An AOT Custom op that copy.deepcopy shares (MindSpore's Primitive.__deepcopy__ cannot rebuild a
    Custom op); it holds no state, and dataclasses.asdict deep-copies results that hold a network."""

    def __deepcopy__(self, memo):
        return self


def _out_size(size: int, stride: int) -> int:
    return (size - 1) // stride + 1  # odd kernel k, padding k // 2


@lru_cache(maxsize=None)
def grad_ops(library: str, stride: int):
    """(grad_input, grad_weight) Custom ops of ``library`` for ``stride``, each called as (x, weight, dy)."""
    if stride not in STRIDES:
        raise ValueError(f"the depthwise kernel supports strides {STRIDES}, got {stride}")
    grad_input = _KernelOp(f"{library}:dw_grad_input_s{stride}", out_shape=lambda x, w, dy: x,
                            out_dtype=lambda x, w, dy: x, func_type="aot")
    grad_weight = _KernelOp(f"{library}:dw_grad_weight_s{stride}", out_shape=lambda x, w, dy: w,
                             out_dtype=lambda x, w, dy: w, func_type="aot")
    return grad_input, grad_weight


@lru_cache(maxsize=None)
def depthwise_op(library: str, stride: int) -> ops.Custom:
    """The forward Custom op of ``library`` (an absolute .so path) for ``stride``, with its bprop."""
    grad_input, grad_weight = grad_ops(library, stride)

    def bprop(x, weight, out, dout):
        return grad_input(x, weight, dout), grad_weight(x, weight, dout)

    def out_shape(x, w) -> List[int]:
        return [x[0], x[1], _out_size(x[2], stride), _out_size(x[3], stride)]

    return _KernelOp(f"{library}:dw_forward_s{stride}", out_shape=out_shape, out_dtype=lambda x, w: x,
                      func_type="aot", bprop=bprop)


class KernelDepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(channels, channels, k, stride, pad k//2, group=channels)`` on the C++ kernel."""

    def __init__(self, channels: int, kernel_size: int, stride: int, library: str) -> None:
        super().__init__(channels, channels, kernel_size=kernel_size, stride=stride, pad_mode="pad",
                         padding=kernel_size // 2, group=channels)
        self.depthwise = depthwise_op(library, stride)

    def construct(self, x: Tensor) -> Tensor:
        return self.depthwise(x, self.weight)


class UnfoldConv2d(nn.Conv2d):
    """A dense k x k conv (no bias) as im2col (``ops.unfold``) and one 1x1 conv over its k*k*C rows.

    ``unfold`` orders its rows channel-major (c*k*k + ky*k + kx), as the (out, C, k, k) weight
    flattens, so the weight is used as it is stored.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size=kernel_size, stride=stride, pad_mode="pad",
                         padding=padding)
        self.k, self.s, self.p = kernel_size, stride, padding

    def construct(self, x: Tensor) -> Tensor:
        k, s, p = self.k, self.s, self.p
        h_out = (x.shape[2] + 2 * p - k) // s + 1
        w_out = (x.shape[3] + 2 * p - k) // s + 1
        cols = ops.unfold(x, k, padding=p, stride=s)  # (N, C*k*k, h_out*w_out)
        cols = ops.reshape(cols, (x.shape[0], -1, h_out, w_out))
        return ops.conv2d(cols, ops.reshape(self.weight, (self.out_channels, -1, 1, 1)))
