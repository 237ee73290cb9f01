"""Print the latency benchmarks' results (bench/results/*.json) as Markdown for BENCHMARKS.md.

    python bench/latency_report.py
"""

from __future__ import annotations

import json
import sys

from _common import RESULTS


def _load(name: str):
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def main() -> int:
    runs = [("mindspore", 112), ("onnxruntime", 224)]
    out = []
    out.append("| backend, px, clock | archs | Kendall tau ms | median rel. diff ms | Kendall tau ratio | "
               "median rel. diff ratio | pass A | pass B |")
    out.append("|---|---|---|---|---|---|---|---|")
    for backend, res in runs:
        for clock in ("cpu", "wall"):
            r = _load(f"repeatability-{backend}-{res}-{clock}")
            if r:
                out.append(f"| {backend}, {res}, {clock} | {r['archs']} | {r['median_ms']['kendall_tau']:.3f} | "
                           f"{r['median_ms']['median_rel_diff_pct']:.1f} % | "
                           f"{r['ratio_to_reference']['kendall_tau']:.3f} | "
                           f"{r['ratio_to_reference']['median_rel_diff_pct']:.1f} % | "
                           f"{r['pass_a']['first'][11:16]}-{r['pass_a']['last'][11:16]} | "
                           f"{r['pass_b']['first'][11:16]}-{r['pass_b']['last'][11:16]} |")
    out.append("")
    out.append("| backend, px, clock | parts | build s | fit: intercept ms, scale, R^2 | MAPE | worst | "
               "within 10 % |")
    out.append("|---|---|---|---|---|---|---|")
    for backend, res in runs:
        for clock in ("cpu", "wall"):
            r = _load(f"lut_accuracy-{backend}-{res}-{clock}")
            if r:
                o, c = r["overhead"], r["check"]
                out.append(f"| {backend}, {res}, {clock} | {r['parts']} | {r['build_s_this_run']:.0f} | "
                           f"{o['intercept_ms']:.3f}, {o['scale']:.3f}, {o['r2']:.2f} | {c['mape_pct']:.1f} % | "
                           f"{c['max_abs_error_pct']:.1f} % | {c['within_10pct']}/{c['measured']} |")
    out.append("")
    for backend, res in runs:
        for clock in ("cpu", "wall"):
            r = _load(f"flops_not_speed-{backend}-{res}-{clock}")
            if not r:
                continue
            out.append(f"{backend}, {res} px, {clock} clock, {r['archs']} archs (target: median ms | "
                       f"ratio to x0_5 x x0_5's median):")
            out.append("")
            out.append("| metric | Kendall tau (ms) | Kendall tau (ratio) | R^2 alone (ms) | R^2 alone (ratio) |")
            out.append("|---|---|---|---|---|")
            for f in ("flops", "mac", "params", "fragmentation", "num_ops"):
                out.append(f"| {f} | {r['median_ms']['kendall_tau'][f]:.3f} | {r['ratio_ms']['kendall_tau'][f]:.3f} | "
                           f"{r['median_ms']['fit'][f]['r2']:.3f} | {r['ratio_ms']['fit'][f]['r2']:.3f} |")
            for m in ("flops+mac+fragmentation", "flops+mac+fragmentation+num_ops"):
                a, b = r["median_ms"]["fit"][m], r["ratio_ms"]["fit"][m]
                out.append(f"| {m} (R^2, adj.) | | | {a['r2']:.3f}, {a['adj_r2']:.3f} | {b['r2']:.3f}, {b['adj_r2']:.3f} |")
            out.append("")
    out.append("| backend, px, clock | cold measure s (median) | candidate compile s | cached measure s | "
               "table predict ms |")
    out.append("|---|---|---|---|---|")
    for backend, res in runs:
        for clock in ("cpu", "wall"):
            r = _load(f"cost-{backend}-{res}-{clock}")
            if r:
                lut = r.get("lut", {})
                out.append(f"| {backend}, {res}, {clock} | {r['cold_measure_s']['median']:.1f} | "
                           f"{r['candidate_compile_s_median']:.2f} | {r['cached_measure_s']['median']:.3f} | "
                           f"{lut.get('predict_ms_per_arch', float('nan')):.2f} |")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
