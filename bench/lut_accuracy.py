"""Build a latency table for a (coarse) space, then compare its predictions with whole-arch
measurements on N archs sampled from that space. Resumable (parts file + result cache).

    python bench/lut_accuracy.py --backend onnxruntime --resolution 224 --n 30
"""

from __future__ import annotations

import sys
import time

from _common import RESULTS, ROOT, latency_parser, machine, write


def main() -> int:
    parser = latency_parser(__doc__)
    parser.add_argument("--space", default=str(ROOT / "configs" / "spaces" / "lut_cpu.yaml"))
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--fit-archs", type=int, default=5)
    args = parser.parse_args()

    from evaluator.lut import LatencyTable, build_table, check_table

    name = f"lut-{args.backend}-{args.resolution}-{args.clock}"
    cache = RESULTS / f"{name}.sqlite"
    marks = {}

    def progress(done: int, total: int, what: str) -> None:
        marks.setdefault("first", time.time())
        marks["last"] = time.time()
        print(f"build {done}/{total} {what}", file=sys.stderr, flush=True)

    start = time.time()
    table = build_table(args.space, backend=args.backend, resolution=args.resolution, fit_archs=args.fit_archs,
                        clock=args.clock, partial=RESULTS / f"{name}.parts.jsonl", cache=cache, progress=progress)
    build_s = time.time() - start
    table_path = RESULTS / f"{name}.table.json"
    table.save(table_path)
    table = LatencyTable.load(table_path)

    t0 = time.perf_counter()
    check = check_table(table, args.n, cache=cache,
                        progress=lambda d, t, w: print(f"check {d}/{t} {w}", file=sys.stderr, flush=True))
    check_s = time.perf_counter() - t0
    archs = [table.space.sample(i) for i in range(200)]
    t0 = time.perf_counter()
    for arch in archs:
        table.predict(arch)
    predict_ms = (time.perf_counter() - t0) / len(archs) * 1e3
    compile_s = sum(e["compile_s"] for e in table.entries.values())
    write(f"lut_accuracy-{args.backend}-{args.resolution}-{args.clock}", {
        "machine": machine(), "backend": args.backend, "resolution": args.resolution, "clock": args.clock, "space": args.space,
        "parts": len(table.entries), "build_s_this_run": build_s, "check_s_this_run": check_s,
        "parts_compile_s_total": compile_s, "predict_ms_per_arch": predict_ms,
        "overhead": table.overhead, "check": check, "table_file": str(table_path.relative_to(ROOT))})
    print(f"MAPE {check['mape_pct']:.2f} %, worst {check['max_abs_error_pct']:.2f} %", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
