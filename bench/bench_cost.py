"""Speed of the analytic cost model: microseconds per `space.cost` call on sampled archs.

    python bench/bench_cost.py [--archs 200] [--repeats 5]

Writes bench/results/cost_model.json. The goal (issue 2) is well under 1 ms per arch.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from common.env import cpu_model  # noqa: E402
from space import REFERENCES, SearchSpace, cost  # noqa: E402




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cost_model.json")
    args = parser.parse_args()

    space = SearchSpace.default()
    archs = [space.sample(np.random.default_rng(i)) for i in range(args.archs)]
    per_arch_us = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for arch in archs:
            cost(arch)
        per_arch_us.append((time.perf_counter() - start) / len(archs) * 1e6)
    largest = REFERENCES["x2_0"].arch
    start = time.perf_counter()
    for _ in range(200):
        cost(largest)
    x2_0_us = (time.perf_counter() - start) / 200 * 1e6

    result = {
        "command": "python bench/bench_cost.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu_model()}, {len(__import__('os').sched_getaffinity(0))} cores, Python {platform.python_version()}",
        "archs": args.archs,
        "repeats": args.repeats,
        "median_us_per_arch": round(statistics.median(per_arch_us), 1),
        "max_us_per_arch": round(max(per_arch_us), 1),
        "x2_0_us": round(x2_0_us, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
