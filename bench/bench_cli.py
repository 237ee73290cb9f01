#!/usr/bin/env python
"""Wall time of the commands a user expects to answer at once (goal: <= 0.5 s each).

`search.py --help`, `search.py search --help`, `search.py info x0_5`, two bad inputs (an
unknown arch, a bad flag value) and, for contrast, `train.py --help` (which imports
MindSpore). Each command runs as a fresh process, the commands interleaved round by round so
they share the same minutes of a shared machine; the median of the rounds is reported with
the load average before and after.

    python bench/bench_cli.py              # 15 rounds -> bench/results/cli.json
    python bench/bench_cli.py --smoke      # 3 rounds, printed only
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import write  # noqa: E402

GOAL_S = 0.5
COMMANDS: Dict[str, List[str]] = {
    "search.py --help": ["search.py", "--help"],
    "search.py search --help": ["search.py", "search", "--help"],
    "search.py info x0_5": ["search.py", "info", "x0_5"],
    "search.py info x9_9 (bad name, exit 2)": ["search.py", "info", "x9_9"],
    "search.py info x0_5 --resolution abc (bad flag, exit 2)": ["search.py", "info", "x0_5", "--resolution", "abc"],
    "train.py --help (imports MindSpore)": ["train.py", "--help"],
}


def time_once(argv: List[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 2):
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--smoke", action="store_true", help="3 rounds, print only (no results file)")
    args = parser.parse_args()
    rounds = 3 if args.smoke else args.rounds
    load_before = [round(v, 2) for v in os.getloadavg()]
    times: Dict[str, List[float]] = {name: [] for name in COMMANDS}
    time_once(COMMANDS["search.py --help"])  # warm the file cache once, untimed
    for _ in range(rounds):
        for name, argv in COMMANDS.items():
            times[name].append(time_once(argv))
    load_after = [round(v, 2) for v in os.getloadavg()]
    baseline = [time_once(["-c", "pass"]) for _ in range(rounds)]
    rows = {name: {"median_s": round(statistics.median(t), 3), "min_s": round(min(t), 3), "max_s": round(max(t), 3),
                   "within_goal": statistics.median(t) <= GOAL_S} for name, t in times.items()}
    result = {"goal_s": GOAL_S, "rounds": rounds, "python_startup_median_s": round(statistics.median(baseline), 3),
              "load_average_before": load_before, "load_average_after": load_after, "commands": rows}
    print(f"{rounds} rounds, load average {load_before} -> {load_after}; "
          f"python -c pass: {result['python_startup_median_s']:.3f} s")
    for name, row in rows.items():
        print(f"  {row['median_s']:6.3f} s (min {row['min_s']:.3f}, max {row['max_s']:.3f})  {name}")
    if not args.smoke:
        from bench._common import machine

        write("cli", {**result, "machine": machine()})


if __name__ == "__main__":
    main()
