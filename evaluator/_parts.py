"""The parts a latency table measures: stem, each distinct ShuffleV2 unit, head, and the
fixed per-call overhead ("empty"). Plain data; `_cells` turns a part into a MindSpore Cell."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from space import Arch, Cost, block_args, cost

Part = Dict[str, Any]


def part_key(part: Part) -> str:
    """Stable readable key, e.g. ``block:s2:48-96:k3:r28`` (input 48 ch at 28 px, output 96 ch)."""
    kind = part["kind"]
    if kind == "stem":
        return f"stem:{part['in']}-{part['out']}:r{part['size']}"
    if kind == "block":
        return f"block:s{part['stride']}:{_tensor_in(part)}-{part['out']}:k{part['kernel']}:r{part['size']}"
    if kind == "head":
        return f"head:{part['in']}-{part['out']}-{part['classes']}:r{part['size']}"
    if kind == "empty":
        return "empty"
    raise ValueError(f"unknown part kind {kind!r}")


def describe(part: Part) -> str:
    """The part in words, for error messages."""
    kind = part["kind"]
    if kind == "block":
        what = "first (stride-2) unit of a stage" if part["stride"] == 2 else "stride-1 unit"
        return (f"{what} {_tensor_in(part)}->{part['out']} channels, kernel {part['kernel']}, "
                f"input {part['size']}x{part['size']}")
    if kind == "stem":
        return f"stem 3->{part['out']} channels at {part['size']}x{part['size']}"
    if kind == "head":
        return f"head {part['in']}->{part['out']} channels at {part['size']}x{part['size']}, {part['classes']} classes"
    return "empty call (fixed overhead)"


def _tensor_in(part: Part) -> int:
    """Channels of a unit's input tensor; a stride-1 unit takes the whole width and splits it."""
    return part["out"] if part["stride"] == 1 else part["in"]


def empty_part() -> Part:
    return {"kind": "empty"}


def arch_parts(arch: Arch, resolution: int, num_classes: int = 1000, costed: Optional[Cost] = None) -> List[Part]:
    """The parts of ``arch`` in network order (with repeats); input sizes come from the cost model
    (``costed``: its cost at this resolution, when the caller has it already)."""
    costed = costed or cost(arch, resolution, num_classes)
    sizes = {row.name: row.in_size for row in costed.layers}
    parts: List[Part] = [{"kind": "stem", "in": 3, "out": arch.stem, "size": resolution}]
    for i, (cin, cout, mid, kernel, stride) in enumerate(block_args(arch)):
        parts.append({"kind": "block", "in": cin, "out": cout, "mid": mid, "kernel": kernel, "stride": stride,
                      "size": sizes[f"features.{i}.branch_main.0"]})
    parts.append({"kind": "head", "in": arch.widths[-1], "out": arch.last, "classes": num_classes,
                  "size": sizes["conv_last.0"]})
    return parts


def input_shape(part: Part, batch_size: int) -> tuple:
    """NCHW input of a part; a unit's input holds all channels of the previous unit's output."""
    if part["kind"] == "empty":
        return (batch_size, 1, 1, 1)
    channels = _tensor_in(part) if part["kind"] == "block" else part["in"]
    return (batch_size, channels, part["size"], part["size"])
