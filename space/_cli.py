"""CLI plumbing shared by the scripts: one-line errors with exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, NoReturn, Optional, Sequence

from ._errors import UserError

EXIT_USAGE = 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


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
    raise SystemExit(code or 0)


def str2bool(value: str) -> bool:
    """``True/true/1/yes`` and ``False/false/0/no``, as MindCV's flags take them."""
    lowered = str(value).strip().lower()
    if lowered in ("true", "1", "yes", "y"):
        return True
    if lowered in ("false", "0", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {value!r}")


def load_yaml_mapping(path: "str | Path", what: str = "config file") -> dict:
    """A YAML file that must hold a mapping (safe loading); every problem is one UserError line."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{what} {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise UserError(f"{what} {path} must hold a mapping of key: value")
    return data
