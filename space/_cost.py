"""Analytic cost of an `Arch`: params, FLOPs, memory access cost, element-wise ops, fragmentation.

Pure Python, no MindSpore: cheap enough to run on every candidate of a search. The counts
follow the ShuffleNetV2 paper's conventions:

* FLOPs are multiply-adds of convolutions and dense layers (BN, ReLU and pooling excluded),
  as in the paper's 41M / 146M / 299M / 591M.
* Memory access cost (MAC, guideline G1) is in elements: every operator's input read, output
  written and weights read. BN is counted as an element-wise op (an inference backend may
  fold it into the conv; the count is still the unfused graph MindSpore runs).
* Element-wise ops (G4): ReLU, BN, channel shuffle, concat and the global mean.
* Fragmentation (G3): parallel branches that compute, summed over blocks
  (stride-1 unit: 1, stride-2 unit: 2) plus the number of operators (kernel launches).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, NamedTuple, Tuple

from ._arch import Arch


class LayerCost(NamedTuple):
    name: str  # parameter-name prefix of the layer, e.g. "features.0.branch_main.3"
    op: str  # conv, dwconv, bn, relu, maxpool, shuffle, concat, mean, dense
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    in_size: int  # spatial side of the input
    out_size: int  # spatial side of the output
    params: int  # trainable
    bn_stats: int  # non-trainable BN moving mean / variance
    flops: int  # multiply-adds
    mac: int  # elements read + written (incl. weights)
    elementwise: int  # elements processed by an element-wise op (0 for conv/dense/pool)


@dataclass(frozen=True)
class Cost:
    arch: Arch
    resolution: int
    params: int
    params_with_bn_stats: int
    flops: int
    mac: int
    elementwise_ops: int
    elementwise_elements: int
    fragmentation: int  # computing branches summed over blocks
    num_ops: int  # operators in the graph
    layers: Tuple[LayerCost, ...]

    @property
    def mflops(self) -> float:
        return self.flops / 1e6

    def summary(self) -> dict:
        """The totals as a flat dict (for logs, CSV rows, trial attributes)."""
        return {
            "resolution": self.resolution,
            "params": self.params,
            "params_with_bn_stats": self.params_with_bn_stats,
            "flops": self.flops,
            "mac": self.mac,
            "elementwise_ops": self.elementwise_ops,
            "elementwise_elements": self.elementwise_elements,
            "fragmentation": self.fragmentation,
            "num_ops": self.num_ops,
        }


class _Builder:
    """Appends rows while tracking the running channel count and spatial size."""

    def __init__(self) -> None:
        self.rows: List[LayerCost] = []

    def conv(self, name: str, cin: int, cout: int, k: int, stride: int, size: int, groups: int = 1,
             pad: int = -1) -> int:
        pad = k // 2 if pad < 0 else pad
        out = (size + 2 * pad - k) // stride + 1
        weights = (cin // groups) * cout * k * k
        flops = weights * out * out
        mac = cin * size * size + cout * out * out + weights
        self.rows.append(LayerCost(name, "dwconv" if groups > 1 else "conv", cin, cout, k, stride, size, out,
                                   weights, 0, flops, mac, 0))
        return out

    def bn(self, name: str, c: int, size: int) -> None:
        n = c * size * size
        self.rows.append(LayerCost(name, "bn", c, c, 1, 1, size, size, 2 * c, 2 * c, 0, 2 * n + 4 * c, n))

    def elementwise(self, name: str, op: str, c: int, size: int) -> None:
        n = c * size * size
        self.rows.append(LayerCost(name, op, c, c, 1, 1, size, size, 0, 0, 0, 2 * n, n))

    def branch(self, prefix: str, cin: int, mid: int, cout: int, k: int, stride: int, size: int) -> int:
        """branch_main of a unit: pw-bn-relu, dw-bn, pw-bn-relu; returns output size."""
        self.conv(f"{prefix}.0", cin, mid, 1, 1, size)
        self.bn(f"{prefix}.1", mid, size)
        self.elementwise(f"{prefix}.2", "relu", mid, size)
        out = self.conv(f"{prefix}.3", mid, mid, k, stride, size, groups=mid)
        self.bn(f"{prefix}.4", mid, out)
        self.conv(f"{prefix}.5", mid, cout, 1, 1, out)
        self.bn(f"{prefix}.6", cout, out)
        self.elementwise(f"{prefix}.7", "relu", cout, out)
        return out

    def stem(self, cin: int, cout: int, resolution: int) -> int:
        """first_conv + max_pool; returns the pooled size."""
        size = self.conv("first_conv.0", cin, cout, 3, 2, resolution, pad=1)
        self.bn("first_conv.1", cout, size)
        self.elementwise("first_conv.2", "relu", cout, size)
        pooled = (size + 1) // 2  # MaxPool2d(3, 2, 'same')
        self.rows.append(LayerCost("max_pool", "maxpool", cout, cout, 3, 2, size, pooled, 0, 0, 0,
                                   cout * (size * size + pooled * pooled), 0))
        return pooled

    def unit(self, prefix: str, channels: int, width: int, k: int, stride: int, size: int) -> int:
        """One ShuffleV2 unit from ``channels`` to ``width``; returns the output size."""
        if stride == 2:
            out = self.projection(f"{prefix}.branch_proj", channels, k, size)
            self.branch(f"{prefix}.branch_main", channels, width // 2, width - channels, k, 2, size)
        else:
            self.elementwise(f"{prefix}.shuffle", "shuffle", width, size)
            out = self.branch(f"{prefix}.branch_main", width // 2, width // 2, width // 2, k, 1, size)
        self.elementwise(f"{prefix}.concat", "concat", width, out)
        return out

    def head(self, channels: int, last: int, size: int, num_classes: int) -> None:
        """conv_last, global mean, classifier."""
        self.conv("conv_last.0", channels, last, 1, 1, size)
        self.bn("conv_last.1", last, size)
        self.elementwise("conv_last.2", "relu", last, size)
        n = last * size * size
        self.rows.append(LayerCost("pool", "mean", last, last, size, 1, size, 1, 0, 0, 0, n + last, n))
        dense = last * num_classes
        self.rows.append(LayerCost("classifier", "dense", last, num_classes, 1, 1, 1, 1, dense, 0, dense,
                                   last + num_classes + dense, 0))

    def projection(self, prefix: str, c: int, k: int, size: int) -> int:
        """branch_proj of a stride-2 unit: dw-bn, pw-bn-relu."""
        out = self.conv(f"{prefix}.0", c, c, k, 2, size, groups=c)
        self.bn(f"{prefix}.1", c, out)
        self.conv(f"{prefix}.2", c, c, 1, 1, out)
        self.bn(f"{prefix}.3", c, out)
        self.elementwise(f"{prefix}.4", "relu", c, out)
        return out


def stem_layers(out_channels: int, resolution: int, in_channels: int = 3) -> Tuple[LayerCost, ...]:
    """Rows of the stem: first 3x3 stride-2 conv, BN, ReLU, 3x3 stride-2 max pool."""
    b = _Builder()
    b.stem(in_channels, out_channels, resolution)
    return tuple(b.rows)


def unit_layers(in_channels: int, width: int, kernel: int, stride: int, size: int,
                prefix: str = "unit") -> Tuple[LayerCost, ...]:
    """Rows of one ShuffleV2 unit taking ``in_channels`` (the whole input tensor) at ``size``
    to ``width`` channels; stride 1 needs ``in_channels == width``."""
    b = _Builder()
    b.unit(prefix, in_channels, width, kernel, stride, size)
    return tuple(b.rows)


def head_layers(in_channels: int, last: int, size: int, num_classes: int = 1000) -> Tuple[LayerCost, ...]:
    """Rows of the head: last 1x1 conv, BN, ReLU, global mean, classifier."""
    b = _Builder()
    b.head(in_channels, last, size, num_classes)
    return tuple(b.rows)


def cost(arch: Arch, resolution: int = 224, num_classes: int = 1000) -> Cost:
    """Analytic cost of ``arch`` for square ``resolution`` x ``resolution`` inputs at batch 1."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 8:
        raise ValueError(f"resolution must be an integer >= 8, got {resolution!r}")
    b = _Builder()
    size = b.stem(3, arch.stem, resolution)
    channels = arch.stem
    index = 0
    fragmentation = 0
    for width, depth, k in zip(arch.widths, arch.depths, arch.kernels):
        for i in range(depth):
            stride = 2 if i == 0 else 1
            size = b.unit(f"features.{index}", channels, width, k, stride, size)
            fragmentation += stride  # computing branches: stride-2 units have two
            channels = width
            index += 1
    b.head(channels, arch.last, size, num_classes)

    rows = tuple(b.rows)
    params = sum(r.params for r in rows)
    elementwise_rows = [r for r in rows if r.elementwise]
    return Cost(
        arch=arch,
        resolution=resolution,
        params=params,
        params_with_bn_stats=params + sum(r.bn_stats for r in rows),
        flops=sum(r.flops for r in rows),
        mac=sum(r.mac for r in rows),
        elementwise_ops=len(elementwise_rows),
        elementwise_elements=sum(r.elementwise for r in elementwise_rows),
        fragmentation=fragmentation,
        num_ops=len(rows),
        layers=rows,
    )
