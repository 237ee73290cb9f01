"""Repeatability: the same archs measured in two passes (separate processes, minutes apart).

    python bench/repeatability.py --backend mindspore --resolution 112 --n 20
(needs latency_archs-<backend>-<res>-A.json and -B.json from bench/latency_archs.py)
"""

from __future__ import annotations

import json
import sys

import numpy as np
from scipy.stats import kendalltau

from _common import RESULTS, latency_parser, machine, write


def _compare(a: np.ndarray, b: np.ndarray) -> dict:
    rel = np.abs(a - b) / ((a + b) / 2)
    return {"kendall_tau": float(kendalltau(a, b)[0]), "median_rel_diff_pct": float(np.median(rel) * 100),
            "max_rel_diff_pct": float(np.max(rel) * 100)}


def main() -> int:
    parser = latency_parser(__doc__)
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    passes = [json.loads((RESULTS / f"latency_archs-{args.backend}-{args.resolution}-{args.clock}-{tag}.json").read_text())
              for tag in ("A", "B")]
    rows = [p["rows"][:args.n] for p in passes]
    assert [r["key"] for r in rows[0]] == [r["key"] for r in rows[1]], "the two passes measured other archs"
    ok = [i for i in range(args.n) if rows[0][i]["result"]["error"] is None and rows[1][i]["result"]["error"] is None]
    ms = [np.array([rows[p][i]["result"]["median_ms"] for i in ok]) for p in (0, 1)]
    ratio = [np.array([rows[p][i]["result"]["ratio_to_reference"] for i in ok]) for p in (0, 1)]
    times = [[r["result"]["environment"]["time_utc"] for r in rows[p]] for p in (0, 1)]
    result = {"machine": machine(), "backend": args.backend, "resolution": args.resolution, "archs": len(ok),
              "pass_a": {"first": min(times[0]), "last": max(times[0]), "load": passes[0]["machine"]["load_average"]},
              "pass_b": {"first": min(times[1]), "last": max(times[1]), "load": passes[1]["machine"]["load_average"]},
              "median_ms": _compare(*ms), "ratio_to_reference": _compare(*ratio),
              "per_arch": [{"name": rows[0][i]["name"], "ms": [float(ms[0][j]), float(ms[1][j])],
                            "ratio": [float(ratio[0][j]), float(ratio[1][j])]} for j, i in enumerate(ok)]}
    write(f"repeatability-{args.backend}-{args.resolution}-{args.clock}", result)
    print(json.dumps({k: result[k] for k in ("archs", "median_ms", "ratio_to_reference")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
