"""FLOPs is not speed: rank agreement (Kendall tau) of FLOPs, MAC and params with measured
latency, and how much of latency a least-squares model of FLOPs + MAC + fragmentation explains.

    python bench/flops_not_speed.py --backend mindspore --resolution 112
(reads latency_archs-<backend>-<res>-A.json from bench/latency_archs.py)
"""

from __future__ import annotations

import json
import sys

import numpy as np
from scipy.stats import kendalltau

from _common import RESULTS, latency_parser, machine, write

FEATURES = ("flops", "mac", "params", "fragmentation", "num_ops")
MODELS = {"flops": ["flops"], "mac": ["mac"], "params": ["params"], "fragmentation": ["fragmentation"],
          "num_ops": ["num_ops"], "flops+mac+fragmentation": ["flops", "mac", "fragmentation"],
          "flops+mac+fragmentation+num_ops": ["flops", "mac", "fragmentation", "num_ops"]}


def r2(columns, y) -> dict:
    x = np.column_stack([np.ones(len(y))] + columns)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ coef
    r2_value = 1 - float(resid @ resid) / float(((y - y.mean()) ** 2).sum())
    n, k = len(y), x.shape[1] - 1
    return {"r2": r2_value, "adj_r2": 1 - (1 - r2_value) * (n - 1) / (n - k - 1)}


def analyse(rows, target) -> dict:
    y = np.array([target(r) for r in rows])
    feats = {f: np.array([float(r[f]) for r in rows]) for f in FEATURES}
    return {"kendall_tau": {f: float(kendalltau(feats[f], y)[0]) for f in FEATURES},
            "fit": {name: r2([feats[f] / feats[f].std() for f in cols], y) for name, cols in MODELS.items()}}


def main() -> int:
    parser = latency_parser(__doc__)
    args = parser.parse_args()
    data = json.loads((RESULTS / f"latency_archs-{args.backend}-{args.resolution}-{args.clock}-A.json").read_text())
    rows = [r for r in data["rows"] if r["result"]["error"] is None]
    ref_ms = float(np.median([r["result"]["reference_median_ms"] for r in rows]))
    result = {"machine": machine(), "backend": args.backend, "resolution": args.resolution, "archs": len(rows),
              "measured": {"first": min(r["result"]["environment"]["time_utc"] for r in rows),
                           "last": max(r["result"]["environment"]["time_utc"] for r in rows),
                           "load_at_end": data["machine"]["load_average"]},
              "median_ms": analyse(rows, lambda r: r["result"]["median_ms"]),
              # drift-corrected: the ratio to x0_5 (timed interleaved) times x0_5's median over the pass
              "ratio_ms": analyse(rows, lambda r: r["result"]["ratio_to_reference"] * ref_ms),
              "reference_median_ms": ref_ms}
    write(f"flops_not_speed-{args.backend}-{args.resolution}-{args.clock}", result)
    print(json.dumps({k: result[k] for k in ("archs", "median_ms", "ratio_ms")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
