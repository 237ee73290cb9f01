"""Search benchmarks: sampler efficiency and Optuna's overhead per trial.

    python bench/bench_search.py --table bench/results/lut-mindspore-112-cpu.table.json

1. Efficiency: constrained search (maximise the cheap ``flops`` proxy subject to the table's
   latency <= x0_5's) and Pareto search (flops vs latency, hypervolume), for TPE (default),
   NSGA-II and random sampling, several seeds each, 100 trials. Reports the trial at which
   each sampler first reaches random search's median best at 100 trials.
2. Overhead: seconds per trial that are not evaluation (sampling, storage writes of the
   trial's record), for SQLite and PostgreSQL storage, 1 and 2 workers: Optuna's trial
   duration minus the seconds spent in the latency source and the proxy.

Latency comes from a real per-part table (built with `search.py lut build`), so thousands of
trials fit; the proxy is the cost model's FLOPs. Writes bench/results/search_*.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional

from _common import machine, write

import optuna  # noqa: E402

from search import SearchConfig, run_search  # noqa: E402

PG_URL = os.environ.get("SHUFFLENAS_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
TrialState = optuna.trial.TrialState


def _config(run_dir: str, table: str, space: str, **changes) -> SearchConfig:
    from evaluator.lut import LatencyTable
    from space import reference

    built = LatencyTable.load(table)
    # "no slower than x0_5" by the table's own prediction of x0_5: the samplers are compared on
    # the table alone (tables of issue 4 hold no measured x0_5, which ratio mode now needs).
    base = dict(study_name=f"bench-{uuid.uuid4().hex[:8]}", run_dir=run_dir, space=space, n_trials=100,
                enqueue_references=False, latency_source="lut", latency_table=table,
                budget_ms=built.predict(reference("x0_5")), proxy="flops", quiet=True, backend=built.backend,
                device=built.device,
                batch_size=built.batch_size, resolution=built.resolution, dtype=built.dtype, clock=built.clock)
    base.update(changes)
    return SearchConfig(**base)


def _best_trace(study: optuna.Study) -> List[Optional[float]]:
    """Best feasible value after each trial, in trial order."""
    best, trace = None, []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        feasible = t.state == TrialState.COMPLETE and all(v <= 0 for v in t.constraints.values())
        if feasible and (best is None or t.value > best):
            best = t.value
        trace.append(best)
    return trace


def _hypervolume_trace(study: optuna.Study, ref_latency: float) -> List[float]:
    """2-D hypervolume (max flops, min latency) of the feasible points after each trial; ref (0, ref_latency)."""
    points, trace = [], []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if t.state == TrialState.COMPLETE and all(v <= 0 for v in t.constraints.values()):
            points.append((t.values[0], t.values[1]))
        front = sorted((p for p in points if p[1] < ref_latency), key=lambda p: p[1])
        volume, best_flops = 0.0, 0.0
        for i, (flops, latency) in enumerate(front):
            best_flops = max(best_flops, flops)
            next_latency = front[i + 1][1] if i + 1 < len(front) else ref_latency
            volume += best_flops * (next_latency - latency)
        trace.append(volume)
    return trace


def efficiency(table: str, space: str, seeds: int, trials: int) -> Dict:
    results: Dict = {"constrained": {}, "pareto": {}}
    from evaluator.lut import LatencyTable
    from space import reference

    ref_ms = LatencyTable.load(table).predict(reference("x0_5"))
    for sampler in ("tpe", "nsga2", "random"):
        for mode in ("constrained", "pareto"):
            traces = []
            for seed in range(seeds):
                with tempfile.TemporaryDirectory() as tmp:
                    extra = {"budget_ms": 2 * ref_ms} if mode == "pareto" else {}
                    cfg = _config(tmp, table, space, sampler=sampler, mode=mode, seed=seed, n_trials=trials, **extra)
                    start = time.perf_counter()
                    study = run_search(cfg)
                    wall = time.perf_counter() - start
                    trace = _best_trace(study) if mode == "constrained" else _hypervolume_trace(study, 2 * ref_ms)
                    traces.append(trace)
                    print(f"{mode:11s} {sampler:6s} seed {seed}: final {trace[-1]}, {wall:.1f} s", flush=True)
            results[mode][sampler] = traces
    summary = {}
    for mode in ("constrained", "pareto"):
        random_final = statistics.median(t[-1] or 0.0 for t in results[mode]["random"])
        summary[mode] = {"random_median_final": random_final}
        for sampler, traces in results[mode].items():
            reach = []
            for trace in traces:
                hit = next((i + 1 for i, v in enumerate(trace) if v is not None and v >= random_final), None)
                reach.append(hit)
            summary[mode][sampler] = {
                "median_final": statistics.median(t[-1] or 0.0 for t in traces),
                "median_at_40": statistics.median(t[min(39, len(t) - 1)] or 0.0 for t in traces),
                "trials_to_reach_random_final": reach,
                "median_trials_to_reach": (statistics.median(r for r in reach if r is not None)
                                           if any(r is not None for r in reach) else None),
                "seeds_reaching": sum(r is not None for r in reach),
            }
    return {"reference_ms": ref_ms, "summary": summary, "traces": results}


def overhead(table: str, space: str, trials: int) -> List[Dict]:
    rows = []
    storages = [("sqlite", None)]
    try:
        import sqlalchemy

        with sqlalchemy.create_engine(PG_URL).connect():
            storages.append(("postgresql", PG_URL))
    except Exception as exc:  # noqa: BLE001
        print(f"PostgreSQL not measured: {exc}", file=sys.stderr)
    for name, url in storages:
        for workers in (1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                cfg = _config(tmp, table, space, storage=url, workers=workers, n_trials=trials, seed=0)
                start = time.perf_counter()
                study = run_search(cfg)
                wall = time.perf_counter() - start
                done = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished() and t.duration]
                evaluation = [t.user_attrs.get("eval_seconds", 0.0) for t in done]
                own = [t.duration.total_seconds() - e for t, e in zip(done, evaluation)]
                row = {"storage": name, "workers": workers, "trials": len(done), "wall_s": round(wall, 2),
                       "evaluation_s_per_trial_median": round(statistics.median(evaluation), 4),
                       "optuna_s_per_trial_median": round(statistics.median(own), 4),
                       "optuna_s_per_trial_p90": round(sorted(own)[int(0.9 * (len(own) - 1))], 4)}
                print(row, flush=True)
                rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, help="latency table (search.py lut build)")
    parser.add_argument("--space", default=None, help="space file (default: the table's space, written to a temp file)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--overhead-trials", type=int, default=60)
    parser.add_argument("--skip-efficiency", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)

    space = args.space
    if space is None:
        import yaml

        from evaluator.lut import LatencyTable

        space_file = Path(tempfile.mkdtemp()) / "table_space.yaml"
        space_file.write_text(yaml.safe_dump(LatencyTable.load(args.table).data["space"]))
        space = str(space_file)
    result = {"machine": machine(), "table": args.table, "trials": args.trials, "seeds": args.seeds}
    if not args.skip_efficiency:
        result["efficiency"] = efficiency(args.table, space, args.seeds, args.trials)
        print(result["efficiency"]["summary"])
    result["overhead"] = overhead(args.table, space, args.overhead_trials)
    write("search_benchmark", result)


if __name__ == "__main__":
    main()
