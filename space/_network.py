"""The ShuffleNetV2 network for any `Arch`, in MindSpore.

Structure, parameter names and weight initialisation follow MindCV's (and Megvii's)
ShuffleNetV2, so MindCV's released checkpoints of shufflenet_v2_x0_5 … x2_0 load as they are.
The stock network has no device-specific code: the same Cell runs in graph mode and PyNative on
CPU, GPU and Ascend. ``fast_cpu`` builds the same network (same parameters, same outputs) with
the depthwise convs and the stem conv replaced by the fast CPU path's cells (`space._fast_ops`)
and a cheaper channel shuffle; export and latency measurement always use the stock network
(`stock_network`).
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

import mindspore.common.initializer as init
from mindspore import Tensor, nn, ops

from ._arch import Arch, block_args
from ._fast_cpu import kernel_status, use_fast_cpu


def _dw_conv(channels: int, kernel: int, stride: int, library: Optional[str] = None) -> nn.Conv2d:
    """Depthwise conv; on the fast CPU path's kernel when ``library`` (its .so) is given."""
    if library is not None:
        from ._fast_ops import KernelDepthwiseConv2d

        return KernelDepthwiseConv2d(channels, kernel, stride, library)
    # padding k//2 with odd k is 'same' padding for stride 1 and halves even sizes at stride 2.
    return nn.Conv2d(channels, channels, kernel_size=kernel, stride=stride, pad_mode="pad",
                     padding=kernel // 2, group=channels)


def _stem_conv(in_channels: int, out_channels: int, fast: bool) -> nn.Conv2d:
    if fast:
        from ._fast_ops import UnfoldConv2d

        return UnfoldConv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1)
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, pad_mode="pad", padding=1)


class ShuffleV2Block(nn.Cell):
    """One ShuffleNetV2 unit (Megvii layout).

    Stride 1: the input's channels are split by a channel shuffle; one half passes through,
    the other goes through ``branch_main``. Stride 2: the whole input goes through both
    ``branch_proj`` (dw + pw) and ``branch_main``; outputs are concatenated.
    """

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int, kernel_size: int,
                 stride: int, library: Optional[str] = None) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        self.stride = stride
        self.unstack = library is not None  # the fast CPU path's channel shuffle
        main_out = out_channels - in_channels
        self.branch_main = nn.SequentialCell([
            nn.Conv2d(in_channels, mid_channels, kernel_size=1, stride=1),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(),
            _dw_conv(mid_channels, kernel_size, stride, library),
            nn.BatchNorm2d(mid_channels),
            nn.Conv2d(mid_channels, main_out, kernel_size=1, stride=1),
            nn.BatchNorm2d(main_out),
            nn.ReLU(),
        ])
        if stride == 2:
            self.branch_proj = nn.SequentialCell([
                _dw_conv(in_channels, kernel_size, stride, library),
                nn.BatchNorm2d(in_channels),
                nn.Conv2d(in_channels, in_channels, kernel_size=1, stride=1),
                nn.BatchNorm2d(in_channels),
                nn.ReLU(),
            ])
        else:
            self.branch_proj = None

    def construct(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            x_proj, x_main = self.channel_shuffle(x, self.unstack)
            return ops.concat((x_proj, self.branch_main(x_main)), axis=1)
        return ops.concat((self.branch_proj(x), self.branch_main(x)), axis=1)

    @staticmethod
    def channel_shuffle(x: Tensor, unstack: bool = False) -> Tuple[Tensor, Tensor]:
        """Split into even and odd channels (the shuffle of the previous unit's concat).

        The stock graph takes the halves by indexing (MindCV's ops); ``unstack`` takes them with
        one Unstack instead of two StridedSlices: the same values, and on MindSpore's CPU backend
        1.14x (64 px) to 1.25x (224 px) faster per x0_5 training step on the fast CPU path
        (in-run A/B, shared machine at load average 2.5-2.8).
        """
        batch_size, num_channels, height, width = x.shape
        x = ops.reshape(x, (batch_size * num_channels // 2, 2, height * width))
        x = ops.transpose(x, (1, 0, 2))
        x = ops.reshape(x, (2, -1, num_channels // 2, height, width))
        if unstack:
            return ops.unstack(x, 0)
        return x[0], x[1]


class ShuffleNetV2(nn.Cell):
    """ShuffleNetV2 built from an `Arch`; `space.build` is the usual way to make one.

    ``fast_cpu`` True takes the fast CPU path (the kernel must be available: `space.build`
    decides that from the ``fast_cpu`` switch).
    """

    def __init__(self, arch: Arch, num_classes: int = 1000, in_channels: int = 3, fast_cpu: bool = False) -> None:
        super().__init__()
        self.arch = arch
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.fast_cpu = fast_cpu
        library = None
        if fast_cpu:
            status = kernel_status()
            if not status.available:
                raise RuntimeError(f"the fast CPU path is unavailable: {status.reason}")
            library = status.library
        self.first_conv = nn.SequentialCell([
            _stem_conv(in_channels, arch.stem, fast_cpu),
            nn.BatchNorm2d(arch.stem),
            nn.ReLU(),
        ])
        self.max_pool = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="same")

        self.features = nn.SequentialCell([ShuffleV2Block(*args, library=library) for args in block_args(arch)])
        channels = arch.widths[-1]

        self.conv_last = nn.SequentialCell([
            nn.Conv2d(channels, arch.last, kernel_size=1, stride=1),
            nn.BatchNorm2d(arch.last),
            nn.ReLU(),
        ])
        self.classifier = nn.Dense(arch.last, num_classes, has_bias=False)
        self._initialize_weights()

    def _initialize_weights(self) -> None:
        # MindCV's scheme: N(0, 0.01) for the stem conv and the classifier,
        # N(0, 1 / fan-in-per-group) for every other conv.
        for name, cell in self.cells_and_names():
            if isinstance(cell, nn.Conv2d):
                sigma = 0.01 if "first" in name else 1.0 / cell.weight.shape[1]
                cell.weight.set_data(init.initializer(init.Normal(sigma, 0), cell.weight.shape, cell.weight.dtype))
                if cell.bias is not None:
                    cell.bias.set_data(init.initializer("zeros", cell.bias.shape, cell.bias.dtype))
            elif isinstance(cell, nn.Dense):
                cell.weight.set_data(init.initializer(init.Normal(0.01, 0), cell.weight.shape, cell.weight.dtype))
                if cell.bias is not None:
                    cell.bias.set_data(init.initializer("zeros", cell.bias.shape, cell.bias.dtype))

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.first_conv(x)
        x = self.max_pool(x)
        return self.features(x)

    def forward_head(self, x: Tensor) -> Tensor:
        x = self.conv_last(x)
        x = ops.mean(x, axis=(2, 3), keep_dims=False)
        return self.classifier(x)

    def construct(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def build(arch: Arch, num_classes: int = 1000, in_channels: int = 3,
          fast_cpu: Union[bool, str] = False) -> ShuffleNetV2:
    """Build the MindSpore network of ``arch`` with freshly initialised weights.

    ``fast_cpu``: False/``off`` (default) the stock network; ``auto`` the fast CPU path when
    this process runs on CPU and the kernel works (else stock, said once); True/``on`` the fast
    path or a UserError. Training, validation and the proxies pass the recipe's ``fast_cpu``.
    """
    if not isinstance(arch, Arch):
        raise TypeError(f"build() takes a space.Arch, got {type(arch).__name__}")
    return ShuffleNetV2(arch, num_classes=num_classes, in_channels=in_channels, fast_cpu=use_fast_cpu(fast_cpu))


def stock_network(net: ShuffleNetV2) -> ShuffleNetV2:
    """``net`` if it is stock, else a stock copy holding its parameter values (for export: a
    deployed network has no custom op). The copy shares nothing with ``net``."""
    if not getattr(net, "fast_cpu", False):
        return net
    import mindspore as ms

    stock = ShuffleNetV2(net.arch, num_classes=net.num_classes, in_channels=net.in_channels)
    values = {p.name: ms.Parameter(ms.Tensor(p.asnumpy()), name=p.name) for p in net.get_parameters()}
    ms.load_param_into_net(stock, values, strict_load=True)
    return stock
