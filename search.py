#!/usr/bin/env python
"""ShuffleNAS command line: inspect archs, measure latency, search, export, report.

The same command is installed as ``shufflenas`` (pyproject.toml); see search/_main.py.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":  # run as a script from anywhere: this checkout's packages first
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from search._main import COMMANDS, main  # noqa: E402
from common.cli import run_main  # noqa: E402

__all__ = ["COMMANDS", "main"]

if __name__ == "__main__":
    run_main(main)
