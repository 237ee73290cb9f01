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

    @property
    def mparams(self) -> float:
        return self.params / 1e6

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

    def projection(self, prefix: str, c: int, k: int, size: int) -> int:
        """branch_proj of a stride-2 unit: dw-bn, pw-bn-relu."""
        out = self.conv(f"{prefix}.0", c, c, k, 2, size, groups=c)
        self.bn(f"{prefix}.1", c, out)
        self.conv(f"{prefix}.2", c, c, 1, 1, out)
        self.bn(f"{prefix}.3", c, out)
        self.elementwise(f"{prefix}.4", "relu", c, out)
        return out


def cost(arch: Arch, resolution: int = 224, num_classes: int = 1000) -> Cost:
    """Analytic cost of ``arch`` for square ``resolution`` x ``resolution`` inputs at batch 1."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 8:
        raise ValueError(f"resolution must be an integer >= 8, got {resolution!r}")
    b = _Builder()
    size = b.conv("first_conv.0", 3, arch.stem, 3, 2, resolution, pad=1)
    b.bn("first_conv.1", arch.stem, size)
    b.elementwise("first_conv.2", "relu", arch.stem, size)
    pooled = (size + 1) // 2  # MaxPool2d(3, 2, 'same')
    b.rows.append(LayerCost("max_pool", "maxpool", arch.stem, arch.stem, 3, 2, size, pooled, 0, 0, 0,
                            arch.stem * (size * size + pooled * pooled), 0))
    size = pooled

    channels = arch.stem
    index = 0
    fragmentation = 0
    for width, depth, k in zip(arch.widths, arch.depths, arch.kernels):
        for i in range(depth):
            prefix = f"features.{index}"
            if i == 0:
                out = b.projection(f"{prefix}.branch_proj", channels, k, size)
                b.branch(f"{prefix}.branch_main", channels, width // 2, width - channels, k, 2, size)
                fragmentation += 2
            else:
                b.elementwise(f"{prefix}.shuffle", "shuffle", width, size)
                out = b.branch(f"{prefix}.branch_main", width // 2, width // 2, width // 2, k, 1, size)
                fragmentation += 1
            b.elementwise(f"{prefix}.concat", "concat", width, out)
            size = out
            channels = width
            index += 1

    b.conv("conv_last.0", channels, arch.last, 1, 1, size)
    b.bn("conv_last.1", arch.last, size)
    b.elementwise("conv_last.2", "relu", arch.last, size)
    n = arch.last * size * size
    b.rows.append(LayerCost("pool", "mean", arch.last, arch.last, size, 1, size, 1, 0, 0, 0, n + arch.last, n))
    head = arch.last * num_classes
    b.rows.append(LayerCost("classifier", "dense", arch.last, num_classes, 1, 1, 1, 1, head, 0, head,
                            arch.last + num_classes + head, 0))

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
