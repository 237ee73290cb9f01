"""The command line of the whole project: `search.py` and the installed `shufflenas` command.

Each subcommand lives in the package that owns it and exposes NAME, HELP,
add_arguments(parser) and run(args) -> exit status. Nothing here imports MindSpore: the
subcommands that need it import it when they run, so ``--help``, ``info`` and bad input are
answered at once.
"""

from __future__ import annotations

from typing import NoReturn, Optional, Sequence

from evaluator import _cli_latency, _cli_lut, _cli_predictor, _cli_proxy
from space import _info
from common.cli import ArgumentParser, run_main

from . import _cli as search_cli

COMMANDS = [*search_cli.COMMANDS, _info, _cli_latency, _cli_lut, _cli_predictor, _cli_proxy]


def main(argv: Optional[Sequence[str]] = None, prog: str = "search.py") -> int:
    parser = ArgumentParser(
        prog=prog,
        description="Latency-constrained neural architecture search over ShuffleNetV2, on MindSpore.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub_parser = sub.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.add_arguments(sub_parser)
        sub_parser.set_defaults(run=command.run)
    args = parser.parse_args(argv)
    return args.run(args)


def console() -> NoReturn:
    """Entry point of the ``shufflenas`` console script (pyproject.toml)."""
    run_main(lambda argv: main(argv, prog="shufflenas"))
