"""CLI plumbing shared by the scripts: one-line errors with exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional, Sequence, Type

from .errors import UserError

EXIT_USAGE = 2
# The configs shipped with the code (package data of a non-editable install, the repo's own otherwise).
CONFIGS = Path(__file__).resolve().parent.parent / "configs"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's flag convention and one-line usage errors (exit status 2).

    Every flag is declared ``--some-key`` and also accepted as ``--some_key`` (MindCV's recipes
    and their YAML keys use underscores), in every script and subcommand."""

    def parse_known_args(self, args: Optional[Sequence[str]] = None, namespace: Any = None):
        return super().parse_known_args(dashed_flags(sys.argv[1:] if args is None else args), namespace)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def dashed_flags(args: Sequence[str]) -> list:
    """``--some_key`` and ``--some_key=V`` written as ``--some-key`` (values and positionals untouched)."""
    out = []
    for arg in args:
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg.partition("=")
            arg = name.replace("_", "-") + eq + value
        out.append(arg)
    return out


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on one line to stderr and exit with status 2."""
    first = " ".join(str(message).split())
    sys.stderr.write(f"error: {first}\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_USAGE)


def run_main(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None) -> NoReturn:
    """Run a script's main; a UserError becomes one line and exit 2, Ctrl-C exits 130."""
    try:
        code = main(argv)
    except UserError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(141) from None
    raise SystemExit(code or 0)


def str2bool(value: str) -> bool:
    """``True/true/1/yes`` and ``False/false/0/no``, as MindCV's flags take them."""
    lowered = str(value).strip().lower()
    if lowered in ("true", "1", "yes", "y"):
        return True
    if lowered in ("false", "0", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {value!r}")


def config_path(path: "str | Path") -> Path:
    """``path`` as given when it exists; a missing relative ``configs/...`` path is the shipped file.

    So the documented commands (``-c configs/search/demo_cpu.yaml``) and the defaults that name
    shipped files work from any directory, after ``pip install .`` as in a checkout.
    """
    given = Path(path)
    if given.exists() or given.is_absolute() or not given.parts or given.parts[0] != "configs":
        return given
    shipped = CONFIGS.joinpath(*given.parts[1:])
    return shipped if shipped.exists() else given


def parse_yaml(text: str, where: str, error: Type[UserError] = UserError) -> Any:
    """YAML text (safe loading) to data; a syntax error is one ``error`` line naming ``where``."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
        mark = getattr(exc, "problem_mark", None)
        at = f", line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise error(f"{where}: not valid YAML ({' '.join(str(problem).split())}{at})") from None


def read_yaml(path: "str | Path", what: str = "file", error: Type[UserError] = UserError) -> Any:
    """The one reader of the YAML files the tool is given (arch, space, search config, recipe,
    selection): missing, unreadable, binary, non-UTF-8 or malformed files are one ``error`` line."""
    path = config_path(path)
    if not path.is_file():
        raise error(f"{what} {path} {'is not a file' if path.exists() else 'does not exist'}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                    "give a YAML file saved as UTF-8") from None
    if "\x00" in text:
        raise error(f"{what} {path} is a binary file, not YAML text")
    return parse_yaml(text, f"{what} {path}", error)


def load_yaml_mapping(path: "str | Path", what: str = "config file") -> dict:
    """A YAML file that must hold a mapping (empty file: empty mapping); problems are one UserError line."""
    data = read_yaml(path, what)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{what} {path} must hold a mapping of key: value, not {type(data).__name__}")
    return data
