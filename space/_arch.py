"""`Arch`: one ShuffleNetV2 architecture, immutable and validated on construction."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Mapping, Sequence, Tuple, Union

from common.cli import parse_yaml, read_yaml
from common.errors import UserError

NUM_STAGES = 3
KERNEL_CHOICES = (3, 5, 7)
MAX_CHANNELS = 8192
MAX_DEPTH = 32
_FIELDS = ("stem", "widths", "depths", "last", "kernels")

IntTriple = Tuple[int, int, int]


class ArchError(UserError):
    """An architecture spec that breaks a rule; the message names the field and the rule."""


def _as_int(field_name: str, value: Any) -> int:
    # bool is an int subclass; `widths: [true, ...]` is always a mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArchError(f"Arch.{field_name}: expected an integer, got {value!r}")
    return value


def _as_triple(field_name: str, value: Any) -> IntTriple:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ArchError(f"Arch.{field_name}: expected a list of {NUM_STAGES} integers, got {value!r}")
    if len(value) != NUM_STAGES:
        raise ArchError(
            f"Arch.{field_name}: expected {NUM_STAGES} values (one per stage), got {len(value)}: {list(value)}"
        )
    return tuple(_as_int(f"{field_name}[{i}]", v) for i, v in enumerate(value))  # type: ignore[return-value]


@dataclass(frozen=True)
class Arch:
    """A ShuffleNetV2 architecture: stem conv, three stages of ShuffleV2 blocks, last 1x1 conv.

    Attributes:
        stem: output channels of the first 3x3 stride-2 conv.
        widths: output channels of the three stages.
        depths: number of blocks per stage (the first block of each stage has stride 2).
        last: channels of the last 1x1 conv before global pooling.
        kernels: depthwise kernel size per stage (3, 5 or 7).
    """

    widths: IntTriple
    depths: IntTriple
    stem: int = 24
    last: int = 1024
    kernels: IntTriple = field(default=(3, 3, 3))

    def __post_init__(self) -> None:
        stem = _as_int("stem", self.stem)
        widths = _as_triple("widths", self.widths)
        depths = _as_triple("depths", self.depths)
        last = _as_int("last", self.last)
        kernels = _as_triple("kernels", self.kernels)
        # Normalise lists to tuples so the dataclass stays hashable and immutable.
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "depths", depths)
        object.__setattr__(self, "kernels", kernels)

        if not 1 <= stem <= MAX_CHANNELS:
            raise ArchError(f"Arch.stem: must be between 1 and {MAX_CHANNELS}, got {stem}")
        if not 1 <= last <= MAX_CHANNELS:
            raise ArchError(f"Arch.last: must be between 1 and {MAX_CHANNELS}, got {last}")
        for i, w in enumerate(widths):
            if w % 2:
                raise ArchError(
                    f"Arch.widths[{i}]: must be even (stride-1 blocks split channels in half), got {w}"
                )
            if w > MAX_CHANNELS:
                raise ArchError(f"Arch.widths[{i}]: must be at most {MAX_CHANNELS}, got {w}")
        # A stride-2 block's main branch produces (out - in) channels, so each stage must widen.
        if widths[0] <= stem:
            raise ArchError(f"Arch.widths[0]: must be larger than the stem ({stem}), got {widths[0]}")
        for i in (1, 2):
            if widths[i] <= widths[i - 1]:
                raise ArchError(
                    f"Arch.widths[{i}]: must be larger than widths[{i - 1}] "
                    f"(widths strictly increase stage to stage), got {widths[i]} <= {widths[i - 1]}"
                )
        for i, d in enumerate(depths):
            if not 1 <= d <= MAX_DEPTH:
                raise ArchError(f"Arch.depths[{i}]: must be between 1 and {MAX_DEPTH}, got {d}")
        for i, k in enumerate(kernels):
            if k not in KERNEL_CHOICES:
                raise ArchError(f"Arch.kernels[{i}]: must be one of {KERNEL_CHOICES}, got {k}")

    # ----- identity -------------------------------------------------------------------------
    @property
    def key(self) -> str:
        """Stable short hash of the spec; equal specs give equal keys across runs and hosts."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha1(canonical.encode()).hexdigest()[:12]

    @property
    def name(self) -> str:
        """Readable name, e.g. ``s24-w48.96.192-d4.8.4-l1024`` (``-k3.5.3`` if kernels differ from 3)."""
        parts = [
            f"s{self.stem}",
            "w" + ".".join(map(str, self.widths)),
            "d" + ".".join(map(str, self.depths)),
            f"l{self.last}",
        ]
        if self.kernels != (3, 3, 3):
            parts.append("k" + ".".join(map(str, self.kernels)))
        return "-".join(parts)

    def __str__(self) -> str:
        return self.name

    # ----- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "stem": self.stem,
            "widths": list(self.widths),
            "depths": list(self.depths),
            "last": self.last,
            "kernels": list(self.kernels),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Arch":
        if not isinstance(data, Mapping):
            raise ArchError(f"an arch must be a mapping with keys {', '.join(_FIELDS)}; got {type(data).__name__}")
        unknown = sorted(set(map(str, data)) - set(_FIELDS))
        if unknown:
            raise ArchError(f"unknown arch key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(_FIELDS)}")
        missing = [k for k in ("widths", "depths") if k not in data]
        if missing:
            raise ArchError(f"arch is missing required key(s): {', '.join(missing)}")
        return cls(**dict(data))

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    @classmethod
    def from_yaml(cls, text_or_path: Union[str, Path]) -> "Arch":
        """Load from YAML text or a file (a `Path`). A file may hold the arch at the top or under ``arch:``."""
        if isinstance(text_or_path, Path):
            data = read_yaml(text_or_path, "arch file", ArchError)
        else:
            data = parse_yaml(text_or_path, "arch", ArchError)
        if isinstance(data, Mapping) and isinstance(data.get("arch"), Mapping):
            data = data["arch"]
        return cls.from_dict(data)

    def save(self, path: Union[str, Path]) -> None:
        Path(path).write_text(self.to_yaml())


def block_args(arch: Arch) -> List[Tuple[int, int, int, int, int]]:
    """``(in_channels, out_channels, mid_channels, kernel_size, stride)`` of each unit, in order.

    The first unit of a stage takes the previous stage's whole output at stride 2; the others
    see half the channels (the half that the shuffle routes through ``branch_main``).
    """
    args = []
    channels = arch.stem
    for width, depth, kernel in zip(arch.widths, arch.depths, arch.kernels):
        args.append((channels, width, width // 2, kernel, 2))
        args.extend([(width // 2, width, width // 2, kernel, 1)] * (depth - 1))
        channels = width
    return args
