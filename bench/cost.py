"""Cost of the evaluator: seconds per measurement cold (fresh worker) and cached, per table
build and per table prediction.

    python bench/cost.py --backend mindspore --resolution 112
(reads latency_archs-<backend>-<res>-A.json and lut_accuracy-<backend>-<res>.json if present)
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from _common import RESULTS, latency_parser, machine, write


def main() -> int:
    parser = latency_parser(__doc__)
    args = parser.parse_args()

    from evaluator import measure
    from space import Arch

    name = f"latency_archs-{args.backend}-{args.resolution}-{args.clock}-A"
    data = json.loads((RESULTS / f"{name}.json").read_text())
    cold = [r["result"]["wall_s"] for r in data["rows"] if not r["result"]["cached"] and r["result"]["error"] is None]
    compile_s = [r["result"]["compile_s"] for r in data["rows"] if r["result"]["error"] is None]
    cached = []
    for r in data["rows"]:
        t0 = time.perf_counter()
        hit = measure(Arch.from_dict(r["arch"]), backend=args.backend, resolution=args.resolution, clock=args.clock,
                      cache=RESULTS / f"{name}.sqlite")
        cached.append(time.perf_counter() - t0)
        assert hit.cached, "expected a cache hit"
    result = {"machine": machine(), "backend": args.backend, "resolution": args.resolution,
              "cold_measure_s": {"median": float(np.median(cold)) if cold else None, "n": len(cold),
                                 "min": min(cold, default=None), "max": max(cold, default=None)},
              "candidate_compile_s_median": float(np.median(compile_s)),
              "cached_measure_s": {"median": float(np.median(cached)), "max": float(np.max(cached)), "n": len(cached)}}
    lut_path = RESULTS / f"lut_accuracy-{args.backend}-{args.resolution}-{args.clock}.json"
    if lut_path.is_file():
        lut = json.loads(lut_path.read_text())
        result["lut"] = {k: lut[k] for k in ("parts", "build_s_this_run", "parts_compile_s_total",
                                             "predict_ms_per_arch")}
    write(f"cost-{args.backend}-{args.resolution}-{args.clock}", result)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
