"""Config dataclasses described once: each field carries its default, type, help and unit.

A config (the search's `SearchConfig`, the training recipe's `TrainConfig`) declares every
key with `setting(default, help, unit=..., choices=...)`. From those fields alone come the
YAML keys, one command-line flag per key (``--n-trials`` and ``--n_trials`` both work), the
``--help`` line of each flag, the type coercion of YAML and flag values, and the comments of
YAML files the tool writes. Nothing about a key is written twice.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import typing
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from .cli import str2bool
from .errors import UserError

_NULL_TEXT = ("none", "null", "~", "")


def setting(default: Any, help: str, *, unit: str = "", choices: Sequence[str] = (), metavar: str = "",
            convert: Optional[Callable[[Any], Any]] = None) -> Any:
    """A dataclass field with its help line, unit and allowed values (the one description of a key).

    ``convert`` replaces the type-based coercion for a key whose YAML may hold several types
    (``fast_cpu: on`` is a YAML boolean); it raises `UserError` on a bad value."""
    return dataclasses.field(default=default, metadata={"help": help, "unit": unit, "choices": tuple(choices),
                                                        "metavar": metavar, "convert": convert})


@functools.lru_cache(maxsize=None)
def _types(cls: type) -> Dict[str, Tuple[bool, Any]]:
    """key -> (optional, base type) from the dataclass's annotations."""
    out = {}
    for name, hint in typing.get_type_hints(cls).items():
        args = typing.get_args(hint)
        optional = typing.get_origin(hint) is typing.Union and type(None) in args
        base = next(a for a in args if a is not type(None)) if optional else hint
        out[name] = (optional, base)
    return out


def keys(cls: type) -> Tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (str, int)):
        return str2bool(str(value))
    raise TypeError


def _as_int(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError


def _as_float(value: Any) -> float:
    if isinstance(value, str):
        return float(value.strip())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TypeError


def _as_pair(value: Any) -> Tuple[float, float]:
    items = [v for v in value.strip("()[] ").split(",") if v.strip()] if isinstance(value, str) else value
    pair = tuple(float(v) for v in items)
    if len(pair) != 2:
        raise ValueError
    return pair


def _as_ints(value: Any) -> Tuple[int, ...]:
    items = [v for v in value.strip("()[] ").split(",") if v.strip()] if isinstance(value, str) else value
    if isinstance(items, int) and not isinstance(items, bool):
        items = [items]
    ints = tuple(_as_int(v) for v in items)
    if not ints:
        raise ValueError
    return ints


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TypeError


# type of a field -> (converter, what a user must give)
_KINDS = {bool: (_as_bool, "true or false"), int: (_as_int, "an integer"), float: (_as_float, "a number"),
          tuple: (_as_pair, "two numbers, e.g. 0.08,1.0"), str: (_as_text, "text")}


def coerce(cls: type, key: str, value: Any) -> Any:
    """``value`` (from YAML, or text from a flag) as the type of ``cls.key``; a mismatch is one UserError."""
    custom = _field(cls, key).metadata.get("convert")
    if custom is not None:
        return custom(value)
    optional, base = _types(cls)[key]
    if value is None or (optional and isinstance(value, str) and value.strip().lower() in _NULL_TEXT):
        if optional:
            return None
        raise UserError(f"config key {key}: needs a value, not null")
    if typing.get_args(base) == (int, Ellipsis):
        convert, expected = _as_ints, "integers, e.g. 0,1,2"
    else:
        convert, expected = _KINDS[typing.get_origin(base) or base]
    try:
        return convert(value)
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        raise UserError(f"config key {key}: expected {expected}, got {value!r}") from None


def check_choices(config: Any) -> None:
    """A UserError when a field of the config instance holds a value outside its ``choices``."""
    for f in dataclasses.fields(config):
        choices, value = f.metadata.get("choices"), getattr(config, f.name)
        if choices and value is not None and value not in choices:
            raise UserError(f"{f.name}: choose one of {', '.join(choices)}, got {value!r}")


def coerce_all(cls: type, values: Mapping[Any, Any], where: str = "", see: str = "") -> Dict[str, Any]:
    """Every value coerced; unknown keys are one UserError naming them all (``where``: the file)."""
    unknown = sorted(set(map(str, values)) - set(keys(cls)))
    if unknown:
        raise UserError(f"{where + ': ' if where else ''}unknown config key(s) {', '.join(unknown)}"
                        + (f"; see {see}" if see else ""))
    return {str(k): coerce(cls, str(k), v) for k, v in values.items()}


def _field(cls: type, key: str) -> dataclasses.Field:
    return cls.__dataclass_fields__[key]


def format_value(value: Any) -> str:
    """A value as a user types it on the command line."""
    if value is None:
        return "none"
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)


def _describe(cls: type, key: str) -> str:
    meta = _field(cls, key).metadata
    text = meta.get("help") or key.replace("_", " ")
    return f"{text} [{meta['unit']}]" if meta.get("unit") else text


def help_line(cls: type, key: str) -> str:
    """``what it does [unit] (default: X)``, from the field's metadata."""
    f = _field(cls, key)
    default = f.default if f.default is not dataclasses.MISSING else None
    return f"{_describe(cls, key)} (default: {format_value(default)})"


def _metavar(cls: type, key: str) -> str:
    meta = _field(cls, key).metadata
    if meta.get("metavar"):
        return meta["metavar"]
    if meta.get("choices"):
        return "{" + "|".join(meta["choices"]) + "}"
    base = _types(cls)[key][1]
    if typing.get_args(base) == (int, Ellipsis):
        return "N,N,..."
    if typing.get_origin(base) is tuple:
        return "A,B"
    return {bool: "BOOL", int: "N", float: "X"}.get(base, "TEXT")


def add_flags(parser: argparse.ArgumentParser, cls: type, title: str) -> None:
    """A group ``title`` with one flag per field, ``--some-key`` (``--some_key`` works too); a flag
    not typed is absent from the parsed args, so the YAML file's value stands."""
    group = parser.add_argument_group(f"{title} (YAML keys of the same name; a flag wins over the file; "
                                      "--some-key and --some_key both work)")
    for key in keys(cls):
        # --some_key works too: common.cli.ArgumentParser rewrites it before parsing.
        group.add_argument(f"--{key.replace('_', '-')}", dest=key, metavar=_metavar(cls, key),
                           default=argparse.SUPPRESS, help=help_line(cls, key).replace("%", "%%"))


def given(args: argparse.Namespace, cls: type) -> Dict[str, Any]:
    """The flags of ``cls`` that were given on the command line (as text)."""
    return {k: getattr(args, k) for k in keys(cls) if hasattr(args, k)}


def yaml_with_help(cls: type, values: Mapping[str, Any]) -> str:
    """``values`` as YAML, one key per line, each commented with its help line (files the tool writes)."""
    import yaml

    lines = []
    for key, value in values.items():
        # A one-item flow list is the YAML of one value, quoted as needed: [[0.08, 1.0]] -> [0.08, 1.0].
        text = yaml.safe_dump([list(value) if isinstance(value, tuple) else value], default_flow_style=True,
                              width=10**6).strip()[1:-1]
        comment = f"  # {_describe(cls, key)}" if key in cls.__dataclass_fields__ else ""
        lines.append(f"{key}: {text}{comment}")
    return "\n".join(lines) + "\n"


__all__ = ["setting", "keys", "coerce", "check_choices", "coerce_all", "help_line", "add_flags", "given",
           "yaml_with_help", "format_value"]
