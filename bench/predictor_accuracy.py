"""Kernel-level latency predictor against measurement on held-out archs (issue 12), and the old
per-part table re-measured the same way. Resumable, stage by stage:

    python bench/predictor_accuracy.py --backend onnxruntime --resolution 224            # everything
    python bench/predictor_accuracy.py --backend onnxruntime --resolution 224 --smoke    # minutes, proves it runs

1. build the predictor for the default space and the demo space (one file covering both),
   timing the build (a rerun resumes it; the time of every run is added up);
2. build the old table of configs/spaces/lut_cpu.yaml (the only spaces a table can cover);
3. measure held-out archs, each with x0_5 interleaved in the same worker: ``--n-default``
   from the default space, ``--n-demo`` from the demo space, ``--n-table`` from the table's
   space (the archs the table and the predictor are compared on); archs the predictor was
   fitted on are left out. Measurements are cached: a rerun measures only what is missing;
4. report per set: MAPE of ms, share within +-5 % and +-10 %, Kendall tau, the same on the
   ratio to x0_5 (predicted ms / x0_5 measured at build time, against the interleaved ratio),
   and what a constrained search cares about: of the archs predicted under the budget
   (x0_5's latency), the share that measure over it by more than 5 %.

The load average is recorded before and after every stage; re-run on an idle machine what ran
under load (delete that stage's files under bench/results/predictor_accuracy/).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
from scipy.stats import kendalltau

from _common import RESULTS, ROOT, latency_parser, machine, sample_archs, write

DEMO_SPACE = ROOT / "configs" / "spaces" / "shufflenetv2_small.yaml"
TABLE_SPACE = ROOT / "configs" / "spaces" / "lut_cpu.yaml"
OVER_BUDGET = 1.05  # "measures over the budget": more than 5 % over


def _load() -> List[float]:
    import os

    return [round(v, 2) for v in os.getloadavg()]


class Stages:
    """Per-stage records (seconds, load before/after) kept in one JSON file across runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: Dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}

    def run(self, name: str, fn, *args, **kwargs):
        record = self.data.setdefault(name, {"seconds": 0.0, "runs": []})
        before, start = _load(), time.time()
        result = fn(*args, **kwargs)
        seconds = time.time() - start
        record["seconds"] += seconds
        record["runs"].append({"seconds": seconds, "load_before": before, "load_after": _load(),
                               "date_utc": machine()["date_utc"]})
        self.path.write_text(json.dumps(self.data, indent=1))
        return result


def _progress(label: str):
    def report(done: int, total: int, what: str) -> None:
        print(f"{label} {done}/{total} {what}", file=sys.stderr, flush=True)
    return report


def _measure(archs, args, cache: Path, label: str) -> List[Dict[str, Any]]:
    from evaluator import measure

    rows = []
    for i, arch in enumerate(archs):
        r = measure(arch, backend=args.backend, resolution=args.resolution, clock=args.clock, reference="x0_5",
                    repeats=args.repeats, cache=cache)
        if not r.ok:
            print(f"{label} {i + 1}/{len(archs)} {arch.name}: ERROR {r.error}", file=sys.stderr, flush=True)
            continue
        rows.append({"arch": arch.to_dict(), "name": arch.name, "key": arch.key, "measured_ms": r.median_ms,
                     "measured_ratio": r.ratio_to_reference, "reference_ms": r.reference_median_ms,
                     "load_average": r.environment.get("load_average"), "cached": r.cached})
        print(f"{label} {i + 1}/{len(archs)} {arch.name}: {r.median_ms:.3f} ms, ratio {r.ratio_to_reference:.3f}"
              f"{' (cached)' if r.cached else ''}", file=sys.stderr, flush=True)
    return rows


def _scores(predicted_ms: np.ndarray, predicted_ratio: np.ndarray, rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    measured = np.array([r["measured_ms"] for r in rows])
    ratio = np.array([r["measured_ratio"] for r in rows])

    def errors(p: np.ndarray, m: np.ndarray) -> Dict[str, Any]:
        e = np.abs(p - m) / m * 100
        return {"mape_pct": float(e.mean()), "max_abs_error_pct": float(e.max()),
                "within_5pct_share": float((e <= 5).mean()), "within_10pct_share": float((e <= 10).mean()),
                "kendall_tau": float(kendalltau(p, m)[0]) if len(m) > 1 else None,
                "mean_signed_error_pct": float(((p - m) / m * 100).mean())}

    under = predicted_ratio <= 1.0
    over = ratio > OVER_BUDGET
    return {"archs": len(rows), "ms": errors(predicted_ms, measured), "ratio": errors(predicted_ratio, ratio),
            "budget": {"predicted_under": int(under.sum()), "of_those_measured_over_5pct": int((under & over).sum()),
                       "share": float((under & over).sum() / under.sum()) if under.any() else None,
                       "measured_under": int((ratio <= 1.0).sum())}}


def _evaluate(model, rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    from space import Arch

    reference_ms = model.reference_ms("x0_5")
    start = time.perf_counter()
    predicted = np.array([model.predict(Arch.from_dict(r["arch"])) for r in rows])
    predict_ms = (time.perf_counter() - start) / max(len(rows), 1) * 1e3
    scores = _scores(predicted, predicted / reference_ms, rows)
    scores["predict_ms_per_arch"] = predict_ms
    scores["rows"] = [{"name": r["name"], "predicted_ms": float(p), "measured_ms": r["measured_ms"],
                       "predicted_ratio": float(p / reference_ms), "measured_ratio": r["measured_ratio"]}
                      for r, p in zip(rows, predicted)]
    return scores


def _line(label: str, s: Dict[str, Any]) -> str:
    ms, ratio, budget = s["ms"], s["ratio"], s["budget"]
    share = "n/a" if budget["share"] is None else f"{100 * budget['share']:.1f} %"
    return (f"| {label} | {s['archs']} | {ms['mape_pct']:.2f} % | {100 * ms['within_5pct_share']:.0f} % | "
            f"{100 * ms['within_10pct_share']:.0f} % | {ms['kendall_tau']:.3f} | {ratio['mape_pct']:.2f} % | "
            f"{budget['predicted_under']} | {budget['of_those_measured_over_5pct']} ({share}) |")


def main() -> int:
    parser = latency_parser(__doc__)
    parser.set_defaults(backend="onnxruntime", resolution=224)
    parser.add_argument("--n-default", type=int, default=100, help="held-out archs of the default space")
    parser.add_argument("--n-demo", type=int, default=30, help="held-out archs of the demo space")
    parser.add_argument("--n-table", type=int, default=30, help="held-out archs of the table's space")
    parser.add_argument("--budget-parts", type=int, default=None, help="predictor build (default: its own)")
    parser.add_argument("--budget-minutes", type=float, default=None, help="predictor build (default: its own)")
    parser.add_argument("--whole-archs", type=int, default=None, help="predictor build (default: its own)")
    parser.add_argument("--repeats", type=int, default=50, help="timed runs per held-out measurement")
    parser.add_argument("--seed", type=int, default=100, help="seed of the held-out archs")
    parser.add_argument("--smoke", action="store_true",
                        help="a few minutes: 3 archs per set, 40 parts, 4 whole archs (results tagged smoke)")
    args = parser.parse_args()
    if args.smoke:
        args.n_default = args.n_demo = args.n_table = 3
        args.budget_parts, args.budget_minutes, args.whole_archs = 40, 3.0, 4

    from evaluator._predictor_build import (DEFAULT_BUDGET_MINUTES, DEFAULT_BUDGET_PARTS, DEFAULT_WHOLE_ARCHS,
                                            build_predictor)
    from evaluator.lut import LatencyTable, build_table
    from evaluator.predictor import LatencyPredictor
    from space import DEFAULT_SPACE

    name = f"{args.backend}-{args.resolution}-{args.clock}" + ("-smoke" if args.smoke else "")
    folder = RESULTS / "predictor_accuracy"
    folder.mkdir(parents=True, exist_ok=True)
    stages = Stages(folder / f"{name}.stages.json")
    cache = folder / f"{name}.sqlite"
    settings = dict(backend=args.backend, resolution=args.resolution, clock=args.clock, cache=cache)
    started = machine()

    predictor_file = folder / f"{name}.predictor.json"
    if not predictor_file.is_file():
        budget = dict(budget_parts=args.budget_parts or DEFAULT_BUDGET_PARTS,
                      budget_minutes=args.budget_minutes or DEFAULT_BUDGET_MINUTES,
                      whole_archs=args.whole_archs or DEFAULT_WHOLE_ARCHS)
        predictor = stages.run("build_predictor", build_predictor, [DEFAULT_SPACE, DEMO_SPACE], **settings, **budget,
                               partial=folder / f"{name}.predictor.parts.jsonl", progress=_progress("build"))
        predictor.save(predictor_file)
    predictor = LatencyPredictor.load(predictor_file)
    table_file = folder / f"{name}.table.json"
    if not table_file.is_file():
        table = stages.run("build_table", build_table, TABLE_SPACE, **settings,
                           partial=folder / f"{name}.table.parts.jsonl", progress=_progress("table"))
        table.save(table_file)
    table = LatencyTable.load(table_file)

    fitted = {json.dumps(a["arch"], sort_keys=True) for a in predictor.data["graph"]["archs"]}
    sets = {}
    for label, space, n in (("default space", None, args.n_default), ("demo space", str(DEMO_SPACE), args.n_demo),
                            ("table space", str(TABLE_SPACE), args.n_table)):
        archs = [a for a in sample_archs(n + 10, args.seed, space) if json.dumps(a.to_dict(), sort_keys=True)
                 not in fitted][:n]
        sets[label] = stages.run(f"measure {label}", _measure, archs, args, cache, label)

    report = {"machine_at_start": started, "machine_at_end": machine(), "settings": vars(args),
              "stages": stages.data, "predictor_file": str(predictor_file.relative_to(ROOT)),
              "table_file": str(table_file.relative_to(ROOT)),
              "predictor_build": {k: predictor.data["build"][k] for k in ("parts_measured", "measure_s", "whole_s",
                                                                          "compile_s", "rounds")},
              "predictor_graph_term": {k: predictor.data["graph"][k] for k in ("terms", "coef", "loo_mape_pct")},
              "predictor": {label: _evaluate(predictor, rows) for label, rows in sets.items()},
              "table": {"table space": _evaluate(table, sets["table space"])}}
    write(f"predictor_accuracy/{name}", report)
    print("| model, held-out set | archs | MAPE ms | within 5 % | within 10 % | Kendall tau | MAPE ratio | "
          "predicted under x0_5 | of those > 5 % over |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, s in report["predictor"].items():
        print(_line(f"predictor, {label}", s))
    print(_line("table, table space", report["table"]["table space"]))
    build = stages.data.get("build_predictor", {}).get("seconds")
    print(f"predictor build {build / 60:.1f} min (this machine, all runs)" if build else "predictor build: reused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
