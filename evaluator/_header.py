"""The settings header that latency tables and predictors share: what they were built for,
the check that refuses anything else, whole-arch measurements under those settings, and the
reference latencies measured on the target (ratio mode divides by those, never by a prediction).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Union

from common import UserError
from space import Arch, reference

from .latency import LatencyResult, measure

SETTINGS = ("batch_size", "resolution", "dtype", "backend", "device", "clock")


def check_format(data: Dict[str, Any], what: str, fmt: str, version: int, build: str) -> None:
    """UserError unless ``data`` is a ``what`` file of this code's format version."""
    if data.get("format") != fmt:
        raise UserError(f"not a {what} (format {data.get('format')!r}, expected {fmt!r})")
    if data.get("version") != version:
        raise UserError(f"{what} version {data.get('version')!r} is not supported (this code reads version "
                        f"{version}); rebuild it with `{build}`")


def load_json(path: Union[str, Path], what: str, build: str) -> Dict[str, Any]:
    """The JSON mapping in ``path``; a missing or unreadable file is a UserError naming ``build``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist; build one with `{build}`")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a {what} ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a {what}")
    return data


def save_json(path: Union[str, Path], data: Dict[str, Any]) -> None:
    """Write ``data`` atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def check_settings(data: Dict[str, Any], what: str, build: str, **given: Any) -> None:
    """UserError if a given setting (None: not checked) differs from what ``data`` was built for.

    ``what`` names the file kind ("latency table"), ``build`` the command that builds one."""
    unknown = set(given) - set(SETTINGS)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}")
    for name, value in given.items():
        built = data.get(name, "wall" if name == "clock" else None)
        if value is not None and value != built:
            label = name.replace("_", " ")
            raise UserError(f"this {what} was built for {label} {built}, not {value}; "
                            f"build one for {label} {value} with `{build}`")


def measure_whole(arch: Arch, data: Dict[str, Any], *, cache: Any, device_id: int = 0, warmup: int = 10,
                  repeats: int = 50) -> LatencyResult:
    """``arch`` measured alone (no reference) with the settings of a table or predictor ``data``."""
    return measure(arch, backend=data["backend"], device=data["device"], device_id=device_id,
                   batch_size=data["batch_size"], resolution=data["resolution"], dtype=data["dtype"], warmup=warmup,
                   repeats=repeats, threads=data.get("threads"), reference=None, num_classes=data["num_classes"],
                   clock=data.get("clock", "wall"), cache=cache)


def measure_references(names: Iterable[str], data: Dict[str, Any], *, cache: Any,
                       device_id: int = 0) -> Dict[str, Dict[str, Any]]:
    """``{name: {"arch": ..., "median_ms": ...}}`` for reference variants measured whole on the target."""
    found = {}
    for name in names:
        arch = reference(name)
        result = measure_whole(arch, data, cache=cache, device_id=device_id)
        if not result.ok:
            raise UserError(f"measuring the reference {name} failed: {result.error}")
        found[name] = {"arch": arch.to_dict(), "median_ms": result.median_ms, "environment": result.environment}
    return found


def measured_reference(data: Dict[str, Any], name: str, what: str, build: str) -> float:
    """The reference's latency measured on the target when the file was built (ratio mode)."""
    refs: Optional[Dict[str, Any]] = data.get("references")
    if not refs or name not in refs:
        held = ", ".join(sorted(refs)) if refs else "none"
        raise UserError(f"this {what} holds no measured latency of the reference {name} (it holds: {held}); ratio "
                        f"mode divides by the reference measured on the target, so rebuild it with "
                        f"`{build} --reference {name}`, or set budget_ms instead of budget_ratio")
    return float(refs[name]["median_ms"])


class BuiltFile:
    """What latency tables and predictors share: a versioned JSON file, its settings header,
    the check against it and the references measured at build time. Subclasses set WHAT,
    BUILD (the command that builds one), FORMAT and VERSION."""

    WHAT = BUILD = FORMAT = ""
    VERSION = 0

    def __init__(self, data: Dict[str, Any]) -> None:
        check_format(data, self.WHAT, self.FORMAT, self.VERSION, self.BUILD)
        self.data = data

    @classmethod
    def load(cls, path: Union[str, Path]):
        return cls(load_json(path, cls.WHAT, cls.BUILD))

    def save(self, path: Union[str, Path]) -> None:
        save_json(path, self.data)

    batch_size = property(lambda self: self.data["batch_size"])
    resolution = property(lambda self: self.data["resolution"])
    dtype = property(lambda self: self.data["dtype"])
    backend = property(lambda self: self.data["backend"])
    device = property(lambda self: self.data["device"])
    num_classes = property(lambda self: self.data["num_classes"])
    clock = property(lambda self: self.data.get("clock", "wall"))
    environment = property(lambda self: self.data["environment"], doc="where and with what the parts were timed")

    def check_settings(self, **given: Any) -> None:
        """UserError if a given setting (None: not checked) differs from the file's."""
        check_settings(self.data, self.WHAT, self.BUILD, **given)

    def reference_ms(self, name: str) -> float:
        """The reference's latency measured whole on the target at build time (ratio mode)."""
        return measured_reference(self.data, name, self.WHAT, self.BUILD)
