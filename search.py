#!/usr/bin/env python
"""ShuffleNAS command line: inspect archs, measure latency, search, export, report.

Each subcommand lives in the package that owns it and exposes NAME, HELP,
add_arguments(parser) and run(args) -> exit status.
"""

from __future__ import annotations

from typing import Optional, Sequence

from evaluator import _cli_latency, _cli_lut, _cli_predictor, _cli_proxy
from search import _cli as search_cli
from space import _info
from space._cli import ArgumentParser, run_main

COMMANDS = [*search_cli.COMMANDS, _info, _cli_latency, _cli_lut, _cli_predictor, _cli_proxy]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = ArgumentParser(
        prog="search.py",
        description="Latency-constrained neural architecture search over ShuffleNetV2, on MindSpore.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub_parser = sub.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.add_arguments(sub_parser)
        sub_parser.set_defaults(run=command.run)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    run_main(main)
