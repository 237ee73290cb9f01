"""Does measuring table parts one after another in the same worker bias them? The same parts
timed (a) all in one worker, in order, and (b) each in a fresh worker; twice (a b a b) so
the difference can be set against the run-to-run noise.

    python bench/lut_worker_reuse.py --backend onnxruntime --resolution 224 --clock cpu --parts 8
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from _common import ROOT, machine, write


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--clock", default="cpu", choices=("wall", "cpu"))
    parser.add_argument("--parts", type=int, default=8)
    args = parser.parse_args()

    from evaluator._parts import part_key
    from evaluator._spawn import run_worker
    from evaluator.latency import base_request
    from evaluator.lut import DEFAULT_PART_REPEATS, space_parts
    from space import SearchSpace

    space = SearchSpace.from_yaml(ROOT / "configs" / "spaces" / "lut_cpu.yaml")
    parts = [p for p in space_parts(space, args.resolution) if p["kind"] != "empty"][:args.parts]
    request = base_request(args.backend, "CPU", 0, 1, args.resolution, "float32", 10,
                           DEFAULT_PART_REPEATS.get(args.backend, 50), 1, 1000, args.clock)
    request["kind"] = "parts"

    def shared():
        records, error = run_worker({**request, "parts": parts}, 1800)
        assert error is None, error
        return {r["key"]: r["median_ms"] for r in records if "key" in r}

    def fresh():
        out = {}
        for p in parts:
            records, error = run_worker({**request, "parts": [p]}, 600)
            assert error is None, error
            out.update({r["key"]: r["median_ms"] for r in records if "key" in r})
        return out

    rounds = []
    for i in range(2):
        rounds.append(("shared", shared()))
        rounds.append(("fresh", fresh()))
        print(f"round {i + 1} done", file=sys.stderr, flush=True)
    keys = [part_key(p) for p in parts]
    s1, f1, s2, f2 = (np.array([r[k] for k in keys]) for _, r in rounds)

    def rel(a, b):
        return float(np.median(np.abs(a - b) / ((a + b) / 2)) * 100)

    result = {"machine": machine(), "backend": args.backend, "resolution": args.resolution, "clock": args.clock,
              "parts": keys, "rounds": [{"mode": m, "median_ms": r} for m, r in rounds],
              "median_rel_diff_pct": {"shared_vs_fresh": (rel(s1, f1) + rel(s2, f2)) / 2,
                                      "shared_vs_shared": rel(s1, s2), "fresh_vs_fresh": rel(f1, f2)},
              "mean_signed_diff_pct_shared_minus_fresh":
                  float(np.mean(np.concatenate([(s1 - f1) / f1, (s2 - f2) / f2])) * 100)}
    write(f"lut_worker_reuse-{args.backend}-{args.resolution}-{args.clock}", result)
    print(result["median_rel_diff_pct"], result["mean_signed_diff_pct_shared_minus_fresh"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
