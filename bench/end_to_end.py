"""End-to-end proof: does the demo search's declared winner beat x0_5 after real training?

Four resumable stages, results under bench/results/end_to_end/:

    python bench/end_to_end.py search    # the demo search as shipped (its own run dir)  -> search.json
    python bench/end_to_end.py train     # winner and x0_5 at the long budget, 3+ seeds   -> train.json
    python bench/end_to_end.py latency   # winner vs x0_5 on the demo's backend (idle!)   -> latency.json
    python bench/end_to_end.py report    # paired difference, 90 % interval, the goal     -> report.json/.md

A candidate default is tried the same way with ``--variant NAME --flags "..."`` (extra flags of
``search.py search``, e.g. ``--variant tse --flags "--proxy tse"``): its files go under
end_to_end/NAME/, and the train stage reuses any training of the same arch and seed already done
(the long truth, the shipped demo's or another variant's), so only new winners cost time.

The long budget is the proxy calibration's long ground truth (bench/proxy_calibration.py,
SETTINGS["long_truth"]): the same trainings, so x0_5's rows there are reused when their
settings match. The goal (issue 11): the winner, at <= 1.0x x0_5's latency, beats x0_5 by
>= 1.0 point of test top-1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time
from typing import Any, Dict, List

import numpy as np

from _common import RESULTS, ROOT, machine

import proxy_calibration as calib

BASE = RESULTS / "end_to_end"
OUT = BASE  # the shipped demo's; a --variant's own folder below it
DEMO = "configs/search/demo_cpu.yaml"
GOAL_POINTS = 1.0


def _load(name: str) -> Dict[str, Any]:
    path = OUT / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _save(name: str, data: Dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = OUT / f"{name}.json.tmp"
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, OUT / f"{name}.json")


def search(args: argparse.Namespace) -> None:
    """Run the demo exactly as the README says (plus a run dir of its own), time it, keep its verdict."""
    import yaml

    run_dir = OUT / "run"
    if _load("search").get("winner") and not args.again:
        print("search: done already (--again to re-run)", file=sys.stderr)
        return
    before = machine()
    start = time.time()
    command = ["search.py", "search", "--config", DEMO, *shlex.split(args.flags or "")]
    done = subprocess.run([sys.executable, *command, "--run-dir", str(run_dir),
                           "--study-name", f"end_to_end_{int(start)}"], cwd=ROOT, capture_output=True, text=True)
    wall = time.time() - start
    sys.stderr.write(done.stdout[-3000:] + done.stderr[-2000:])
    if done.returncode != 0:
        raise SystemExit(f"the demo search failed (exit {done.returncode})")
    selection = yaml.safe_load((run_dir / "best.yaml").read_text())
    if not selection["archs"]:
        raise SystemExit("the demo search declared no winner")
    winner = selection["archs"][0]
    verdict = [line for line in done.stdout.splitlines() if line.startswith(("Final round", "Best arch", "No "))]
    _save("search", {"machine_before": before, "machine_after": machine(), "wall_s": wall, "winner": winner,
                     "verdict": verdict[-1] if verdict else None, "command": "python " + " ".join(command)})
    print(f"search: {wall / 60:.1f} min, winner {winner['name']}", file=sys.stderr)


def _archs() -> List[Dict[str, Any]]:
    from space import Arch, resolve_arch

    found = _load("search").get("winner")
    if not found:
        raise SystemExit("run the search stage first")
    winner, ref = Arch.from_dict(found["arch"]), resolve_arch("x0_5")
    return [{"key": a.key, "name": a.name, "arch": a.to_dict(), "arch_obj": a, "role": role}
            for a, role in ((winner, "winner"), (ref, "x0_5"))]


def train(args: argparse.Namespace) -> None:
    """The long budget on every seed, for the winner and x0_5 (x0_5 taken from the long truth when there)."""
    t = calib.SETTINGS["long_truth"]
    settings = {k: calib.SETTINGS[k] for k in ("data", "resolution", "recipe", "long_truth")}
    data = _load("train")
    if data.get("settings") != settings:
        data = {"settings": settings, "rows": []}
    truth = calib._load("long_truth")
    shared = [dict(r, reused_from="proxy_calibration/long_truth.json") for r in truth.get("rows", [])
              if truth.get("settings") == settings]
    for other in [BASE / "train.json", *sorted(BASE.glob("*/train.json"))]:  # the shipped demo's, the variants'
        done = json.loads(other.read_text()) if other.exists() and other.parent != OUT else {}
        if done.get("settings") == settings:
            shared += [dict(r, reused_from=str(other.relative_to(RESULTS))) for r in done["rows"]
                       if "reused_from" not in r]
    for row in _archs():
        for seed in t["seeds"]:
            if any(r["key"] == row["key"] and r["seed"] == seed for r in data["rows"]):
                continue
            reuse = next((r for r in shared if r["key"] == row["key"] and r["seed"] == seed), None)
            if reuse is None:
                start = time.perf_counter()
                result = calib._train(row["arch_obj"], epochs=t["epochs"], subset=t["subset"], seed=seed,
                                      batch_size=t["batch_size"], warmup_epochs=t["warmup_epochs"],
                                      val_subset=t["val_subset"],
                                      ckpt_dir=calib.OUT / "ckpt" / f"{row['key']}-seed{seed}")
                print(f"  {row['name']} seed {seed}: {result['value']:.2f} ({time.perf_counter() - start:.0f} s)",
                      file=sys.stderr, flush=True)
            else:
                result = {k: v for k, v in reuse.items() if k not in ("key", "name", "label", "seed", "role")}
            data["rows"].append({"key": row["key"], "name": row["name"], "role": row["role"], "seed": seed,
                                 **result})
            data["machine"] = machine()
            _save("train", data)


def latency(args: argparse.Namespace) -> None:
    """The winner's latency as a ratio to x0_5, measured interleaved on the demo's backend."""
    from evaluator.latency import measure
    from search import load_config

    cfg = load_config(DEMO)  # a variant's flags change the proxy or the final round, not the latency target
    winner = _archs()[0]["arch_obj"]
    before = machine()
    r = measure(winner, backend=cfg.backend, device=cfg.device, batch_size=cfg.batch_size,
                resolution=cfg.resolution, threads=cfg.threads, clock=cfg.clock, warmup=cfg.latency_warmup,
                repeats=max(cfg.latency_repeats, 200), cache=None)
    if not r.ok:
        raise SystemExit(f"latency failed: {r.error}")
    _save("latency", {"machine_before": before, "machine_after": machine(), "backend": cfg.backend,
                      "resolution": cfg.resolution, "threads": cfg.threads, "ratio_to_x0_5": r.ratio_to_reference,
                      "median_ms": r.median_ms, "x0_5_median_ms": r.reference_median_ms})
    print(f"latency: {r.ratio_to_reference:.3f}x x0_5 ({r.median_ms:.3f} ms vs {r.reference_median_ms:.3f} ms)",
          file=sys.stderr)


def report(args: argparse.Namespace) -> None:
    from scipy.stats import t as student_t

    rows = _load("train").get("rows", [])
    keys = {row["role"]: row["key"] for row in _archs()}  # this search's winner, not an earlier one's
    by = {role: {r["seed"]: r["value"] for r in rows if r["key"] == key} for role, key in keys.items()}
    seeds = sorted(set(by["winner"]) & set(by["x0_5"]))
    if len(seeds) < 2:
        raise SystemExit(f"need at least 2 seeds with both archs trained, have {len(seeds)}")
    diffs = np.array([by["winner"][s] - by["x0_5"][s] for s in seeds])
    mean, sd = float(diffs.mean()), float(diffs.std(ddof=1))
    half = float(student_t.ppf(0.95, len(diffs) - 1)) * sd / math.sqrt(len(diffs))
    lat = _load("latency")
    ratio = lat.get("ratio_to_x0_5")
    found = _load("search")
    result = {"winner": found["winner"]["name"], "verdict_of_the_search": found.get("verdict"),
              "search_wall_s": found.get("wall_s"), "seeds": seeds,
              "winner_top1": [by["winner"][s] for s in seeds], "x0_5_top1": [by["x0_5"][s] for s in seeds],
              "mean_difference": mean, "sd": sd, "interval90": [mean - half, mean + half],
              "latency_ratio": ratio, "latency_load": (lat.get("machine_before") or {}).get("load_average"),
              "budget": calib.SETTINGS["long_truth"],
              "goal_met": bool(ratio is not None and ratio <= 1.0 and mean >= GOAL_POINTS)}
    _save("report", {**result, "machine": machine()})
    text = (f"End to end: the demo's winner {result['winner']} vs x0_5 at the long budget "
            f"({len(seeds)} seeds): {np.mean(result['winner_top1']):.2f} vs {np.mean(result['x0_5_top1']):.2f} "
            f"top-1, paired difference {mean:+.2f} (90 % interval {mean - half:+.2f} to {mean + half:+.2f}); "
            f"latency {ratio if ratio is None else format(ratio, '.3f')}x x0_5; goal (<= 1.0x and >= "
            f"+{GOAL_POINTS} point): {'met' if result['goal_met'] else 'NOT met'}.")
    (OUT / "report.md").write_text(text + "\n")
    print(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="stage", required=True)
    stages = {name: sub.add_parser(name) for name in ("search", "train", "latency", "report")}
    stages["search"].add_argument("--again", action="store_true", help="run the search again")
    stages["search"].add_argument("--flags", help='extra flags of search.py search for a --variant, e.g. "--proxy tse"')
    for stage in stages.values():
        stage.add_argument("--variant", help="a candidate default's name: its files go under end_to_end/NAME/")
    args = parser.parse_args()
    global OUT
    if args.variant:
        if not args.variant.isidentifier():
            print(f"end_to_end: --variant {args.variant!r} must be a plain name (letters, digits, _)", file=sys.stderr)
            return 2
        OUT = BASE / args.variant
    if getattr(args, "flags", None) and not args.variant:
        print("end_to_end: --flags changes the demo, so it needs a --variant NAME for its files", file=sys.stderr)
        return 2
    {"search": search, "train": train, "latency": latency, "report": report}[args.stage](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
