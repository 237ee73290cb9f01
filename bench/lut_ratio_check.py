"""A table's predictions in drift-free units: predicted ratio to x0_5 (table(arch) / table(x0_5))
against the measured ratio_to_reference (x0_5 timed interleaved in the same worker).

    python bench/lut_ratio_check.py --table bench/results/lut-onnxruntime-224-cpu.table.json --n 30
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from scipy.stats import kendalltau

from _common import RESULTS, machine, write


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from evaluator import LatencyTable, measure
    from space import reference

    table = LatencyTable.load(args.table)
    ref_ms = table.predict(reference("x0_5"))
    rng = np.random.default_rng(args.seed)  # the archs of `lut check` with the same seed
    rows = []
    for i in range(args.n):
        arch = table.space.sample(rng)
        r = measure(arch, backend=table.backend, resolution=table.resolution, clock=table.clock,
                    threads=table.data.get("threads"), cache=RESULTS / f"lut_ratio_check-{table.backend}.sqlite")
        if r.ok:
            rows.append({"arch": arch.name, "predicted_ratio": table.predict(arch) / ref_ms,
                         "measured_ratio": r.ratio_to_reference})
        print(f"{i + 1}/{args.n} {arch.name}: " + (f"{rows[-1]['predicted_ratio']:.3f} vs "
              f"{r.ratio_to_reference:.3f}" if r.ok else f"ERROR {r.error}"), file=sys.stderr, flush=True)
    p = np.array([r["predicted_ratio"] for r in rows])
    m = np.array([r["measured_ratio"] for r in rows])
    err = np.abs(p - m) / m * 100
    result = {"machine": machine(), "table": args.table, "archs": len(rows), "mape_pct": float(err.mean()),
              "max_abs_error_pct": float(err.max()), "within_10pct": int((err <= 10).sum()),
              "kendall_tau": float(kendalltau(p, m)[0]), "rows": rows}
    write(f"lut_ratio_check-{table.backend}-{table.resolution}-{table.clock}", result)
    print({k: result[k] for k in ("archs", "mape_pct", "max_abs_error_pct", "within_10pct", "kendall_tau")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
