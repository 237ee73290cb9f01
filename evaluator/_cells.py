"""MindSpore Cells for whole archs and for latency-table parts (imported by the worker only)."""

from __future__ import annotations

from mindspore import nn, ops

from space import Arch, ShuffleNetV2, ShuffleV2Block, build

from ._parts import Part


class _Stem(nn.Cell):
    """first_conv + max_pool of a network (the start of its forward_features)."""

    def __init__(self, net: ShuffleNetV2) -> None:
        super().__init__()
        self.first_conv = net.first_conv
        self.max_pool = net.max_pool

    def construct(self, x):
        return self.max_pool(self.first_conv(x))


class _Head(nn.Cell):
    """A network's forward_head: conv_last, global mean, classifier."""

    def __init__(self, net: ShuffleNetV2) -> None:
        super().__init__()
        self.net = net

    def construct(self, x):
        return self.net.forward_head(x)


class _Empty(nn.Cell):
    """One trivial operator: what a call costs when the network does (almost) nothing."""

    def construct(self, x):
        return ops.add(x, 1.0)


def part_cell(part: Part, num_classes: int = 1000) -> nn.Cell:
    kind = part["kind"]
    if kind == "block":
        return ShuffleV2Block(part["in"], part["out"], part["mid"], part["kernel"], part["stride"])
    if kind == "stem":
        return _Stem(build(Arch(stem=part["out"], widths=(part["out"] + 2, part["out"] + 4, part["out"] + 6),
                                depths=(1, 1, 1), last=8), num_classes=num_classes))
    if kind == "head":
        width = part["in"]
        return _Head(build(Arch(stem=2, widths=(4, 6, width), depths=(1, 1, 1), last=part["out"]),
                           num_classes=part["classes"]))
    if kind == "empty":
        return _Empty()
    raise ValueError(f"unknown part kind {kind!r}")
