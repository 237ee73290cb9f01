"""Measure N archs sampled from the default space (one pass of the repeatability benchmark and
the data of the FLOPs-is-not-speed benchmark). Resumable: results go to a per-pass cache.

    python bench/latency_archs.py --backend mindspore --resolution 112 --n 30 --tag A
"""

from __future__ import annotations

import sys
import time

from _common import RESULTS, latency_parser, machine, sample_archs, write


def main() -> int:
    parser = latency_parser(__doc__)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--tag", required=True, help="pass name, e.g. A or B (separate cache per pass)")
    args = parser.parse_args()

    from evaluator import measure
    from space import cost

    name = f"latency_archs-{args.backend}-{args.resolution}-{args.clock}-{args.tag}"
    cache = RESULTS / f"{name}.sqlite"
    rows = []
    start = time.time()
    for i, arch in enumerate(sample_archs(args.n, args.seed)):
        r = measure(arch, backend=args.backend, resolution=args.resolution, repeats=args.repeats, clock=args.clock,
                    cache=cache)
        c = cost(arch, args.resolution)
        rows.append({"arch": arch.to_dict(), "name": arch.name, "key": arch.key, "flops": c.flops, "mac": c.mac,
                     "params": c.params, "fragmentation": c.fragmentation, "num_ops": c.num_ops,
                     "result": r.to_dict()})
        print(f"{i + 1}/{args.n} {arch.name}: " + (f"{r.median_ms:.2f} ms, ratio {r.ratio_to_reference:.3f}, "
              f"{'cached' if r.cached else f'{r.wall_s:.1f} s'}" if r.ok else f"ERROR {r.error}"),
              file=sys.stderr, flush=True)
    write(name, {"machine": machine(), "backend": args.backend, "resolution": args.resolution,
                 "repeats": args.repeats, "clock": args.clock, "seed": args.seed, "elapsed_s": time.time() - start, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
