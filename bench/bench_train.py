#!/usr/bin/env python
"""Training and inference throughput of shufflenet_v2_x0_5 on CPU: ours-fast vs ours-stock vs MindCV.

    python bench/bench_train.py [--resolutions 64 224] [--batch 32] [--windows 7] [--steps 2]
    python bench/bench_train.py --profile [--resolutions 64 224] [--steps 3] [--top 15]
    python bench/bench_train.py --proxy [--runs 3]
    python bench/bench_train.py --smoke        # proves the harness runs: 2 windows x 1 step, writes nothing

Throughput: "fast" is our network on the fast CPU path (`space.build(..., fast_cpu="on")`),
"stock" the same network on MindSpore's own ops, "mindcv" MindCV's shufflenet_v2_x0_5. All get
the identical training step (the recipe's momentum optimizer with its weight-decay groups,
label-smoothed CE, fixed loss scale 1024, graph mode) on one fixed random batch, so the data
pipeline is excluded. One child process per resolution; windows rotate which implementation
goes first, so machine load hits all alike; img/s is the median window after compile, and the
ratios are medians of per-window ratios. The load average is recorded before and after each
child. Writes bench/results/train_fast_cpu.json and .md.

--profile: MindSpore's Profiler (it works on CPU) over ``--steps`` training steps after compile,
one child per implementation and resolution; prints and writes the top op types and the top
(op type, where in the network) pairs per step -> bench/results/op_profile.json and .md.

--proxy: seconds per arch of the default train proxy (`evaluator.proxy.train_score` on x0_5,
compile included, a fresh process per run as in a search worker), fast vs stock alternating
through the SHUFFLENAS_FAST_CPU variable -> bench/results/train_proxy_fast_cpu.json.

mindcv==0.3.0 is installed into a private folder (bench/_mindcv_env.py) and imported in the
child processes only.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
RESULTS = HERE / "results"
IMPLS = ("fast", "stock", "mindcv")
RATIOS = (("fast", "mindcv"), ("fast", "stock"), ("stock", "mindcv"))


def _load() -> List[float]:
    return [round(v, 2) for v in os.getloadavg()]


# ---------------------------------------------------------------- child side

def _train_cells(impl: str, batch: int, resolution: int):
    """(train step, inference cell, x, y) for one implementation, freshly seeded."""
    import mindspore as ms
    import numpy as np
    from mindspore import nn

    from space import build, reference
    from training import TrainConfig, read_recipe
    from training._loss import EvalNet, NetWithLoss, create_loss
    from training._optim import create_optimizer

    recipe = TrainConfig(**read_recipe(HERE.parent / "configs/shufflenetv2/shufflenet_v2_0.5_ascend.yaml"))
    ms.set_seed(0)
    if impl == "mindcv":
        from mindcv.models import create_model as mindcv_model

        net = mindcv_model("shufflenet_v2_x0_5", num_classes=1000)
    else:
        net = build(reference("x0_5"), num_classes=1000, fast_cpu="on" if impl == "fast" else "off")
    opt = create_optimizer(net.trainable_params(), recipe, [recipe.lr] * 100000, loss_scale=recipe.loss_scale)
    step = nn.TrainOneStepCell(NetWithLoss(net, create_loss(recipe.label_smoothing)), opt, sens=recipe.loss_scale)
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.standard_normal((batch, 3, resolution, resolution)).astype(np.float32))
    y = ms.Tensor(rng.integers(0, 1000, batch).astype(np.int32))
    return step, EvalNet(net), x, y


def _available(impls) -> List[str]:
    out = []
    for impl in impls:
        if impl == "mindcv":
            try:
                import mindcv.models  # noqa: F401
            except ImportError as exc:
                print(f"mindcv not importable: {exc}", file=sys.stderr)
                continue
        out.append(impl)
    return out


def _child_throughput(args) -> dict:
    from common.runtime import configure

    configure("CPU", "graph")
    res = args.resolutions[0]
    impls = _available(args.impls)
    cells, compile_s = {}, {}
    for impl in impls:
        step, infer, x, y = _train_cells(impl, args.batch, res)
        step.set_train(True)
        t = time.perf_counter()
        step(x, y).asnumpy()
        compile_train = time.perf_counter() - t
        infer.set_train(False)
        t = time.perf_counter()
        infer(x).asnumpy()
        compile_s[impl] = {"compile_train_s": compile_train, "compile_infer_s": time.perf_counter() - t}
        cells[impl] = (step, infer, x, y)
    load_before = _load()
    windows: Dict[str, Dict[str, List[float]]] = {impl: {"train": [], "infer": []} for impl in impls}
    for w in range(args.windows):
        order = impls[w % len(impls):] + impls[:w % len(impls)]  # each goes first in turn
        for impl in order:
            step, infer, x, y = cells[impl]
            step.set_train(True)
            t = time.perf_counter()
            for _ in range(args.steps):
                step(x, y).asnumpy()
            windows[impl]["train"].append(args.batch * args.steps / (time.perf_counter() - t))
            infer.set_train(False)
            t = time.perf_counter()
            for _ in range(args.steps):
                infer(x).asnumpy()
            windows[impl]["infer"].append(args.batch * args.steps / (time.perf_counter() - t))
    row = {"load_before": load_before, "load_after": _load()}
    for impl in impls:
        row[impl] = {"train_img_s": statistics.median(windows[impl]["train"]),
                     "infer_img_s": statistics.median(windows[impl]["infer"]),
                     "train_windows": windows[impl]["train"], "infer_windows": windows[impl]["infer"],
                     **compile_s[impl]}
        print(f"{res} px {impl}: train {row[impl]['train_img_s']:.1f} img/s, infer {row[impl]['infer_img_s']:.1f} "
              f"img/s", file=sys.stderr, flush=True)
    return {str(res): row}


def _where(full_name: str) -> str:
    """Where in the network a profiled op ran, as a pattern over blocks: "first_conv/0:UnfoldConv2d",
    "branch_main/3:KernelDepthwiseConv2d", "features/*:ShuffleV2Block" (the channel shuffle).
    Backward ops only name their layer type: MindSpore's backward scopes are not reliable paths."""
    parts = [p for p in full_name.split("/")[:-1] if "-" in p and not p.startswith(("Grad_", "network-"))]
    if not parts:
        return "?"
    if full_name.startswith("Gradients/"):
        return "backward of " + parts[-1].split("-", 1)[1]
    names = [f"{name}:{cls}" if name.isdigit() else name for name, cls in (p.split("-", 1) for p in parts)]
    return re.sub(r"^features/\d+:", "features/*:", "/".join(names[-2:]))


def parse_profile(folder: str, steps: int) -> dict:
    """Per-step ms of each op type and of each (op type, cell), from the Profiler's CPU csv files."""
    types = glob.glob(os.path.join(folder, "**", "cpu_op_type_info_*.csv"), recursive=True)
    details = glob.glob(os.path.join(folder, "**", "cpu_op_detail_info_*.csv"), recursive=True)
    if not types or not details:
        raise RuntimeError(f"the profiler wrote no CPU op tables under {folder}")
    by_type = {r["op_type"]: float(r["total_compute_time"]) / steps for r in csv.DictReader(open(types[0]))}
    by_cell: Dict[str, float] = defaultdict(float)
    for r in csv.DictReader(open(details[0])):
        by_cell[f"{r['op_type']} in {_where(r['full_op_name'])}"] += float(r["op_total_time(ms)"]) / steps
    total = sum(by_type.values())
    return {"total_ms": total,
            "by_type": dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
            "by_cell": dict(sorted(by_cell.items(), key=lambda kv: -kv[1]))}


def _child_profile(args) -> dict:
    import mindspore as ms

    from common.runtime import configure

    configure("CPU", "graph")
    impl, res = args.impls[0], args.resolutions[0]
    step, _, x, y = _train_cells(impl, args.batch, res)
    step.set_train(True)
    step(x, y).asnumpy()  # compile outside the profile
    with tempfile.TemporaryDirectory(prefix="shufflenas-profile-") as tmp:
        profiler = ms.Profiler(output_path=tmp)
        t = time.perf_counter()
        for _ in range(args.steps):
            step(x, y).asnumpy()
        wall = (time.perf_counter() - t) / args.steps * 1000
        profiler.analyse()
        out = parse_profile(tmp, args.steps)
    return {"impl": impl, "resolution": res, "wall_ms_per_step": wall, "load": _load(), **out}


def _child_proxy() -> dict:
    from space import reference
    from common.runtime import configure

    configure("CPU", "graph")
    from evaluator.proxy import train_score

    t = time.perf_counter()
    result = train_score(reference("x0_5"))
    return {"seconds": time.perf_counter() - t, "top1": result.value, "img_per_s": result.settings["img_per_s"],
            "compile_s": result.settings["compile_s"], "fast_cpu": result.settings["fast_cpu"]}


# ---------------------------------------------------------------- parent side

def _child(argv: List[str], env: Dict[str, str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *argv], env=env, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed: {' '.join(argv)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def paired_ratios(row: dict) -> None:
    """a/b of medians and the median of per-window ratios (each window ran its implementations back
    to back, so a pair saw about the same load), for each pair in RATIOS present in ``row``."""
    for a, b in RATIOS:
        if a not in row or b not in row:
            continue
        for kind in ("train", "infer"):
            row[f"{a}/{b}_{kind}"] = row[a][f"{kind}_img_s"] / row[b][f"{kind}_img_s"]
            row[f"{a}/{b}_{kind}_paired"] = statistics.median(
                x / y for x, y in zip(row[a][f"{kind}_windows"], row[b][f"{kind}_windows"]))


def _throughput_markdown(result: dict) -> str:
    lines = [f"shufflenet_v2_x0_5, batch {result['batch']}, {result['windows']} windows x {result['steps']} steps, "
             f"median img/s after compile; {result['machine']['cpu_model']}, MindSpore "
             f"{result['machine']['mindspore']}, {result['machine']['date_utc']}", ""]
    for kind in ("train", "infer"):
        header = " | ".join(list(IMPLS) + [f"{a}/{b}" for a, b in RATIOS])
        lines += [f"{kind}: img/s, and ratios as median of per-window ratios (ratio of medians)", "",
                  f"| px | load before / after | {header} |", "|---|---|" + "---|" * (len(IMPLS) + len(RATIOS))]
        for res, row in result["by_resolution"].items():
            cells = [f"{row[i][kind + '_img_s']:.1f}" if i in row else "n/a" for i in IMPLS]
            cells += [f"{row[f'{a}/{b}_{kind}_paired']:.2f} ({row[f'{a}/{b}_{kind}']:.2f})"
                      if f"{a}/{b}_{kind}" in row else "n/a" for a, b in RATIOS]
            load = f"{row['load_before'][0]:.1f} / {row['load_after'][0]:.1f}"
            lines.append(f"| {res} | {load} | " + " | ".join(cells) + " |")
        lines.append("")
    if result.get("mindcv_error"):
        lines.append(f"MindCV not measured: {result['mindcv_error']}")
    return "\n".join(lines) + "\n"


def _profile_markdown(rows: List[dict], top: int) -> str:
    lines = []
    for r in rows:
        lines += [f"### {r['impl']}, {r['resolution']} px: {r['total_ms']:.1f} ms of op time per step "
                  f"(wall {r['wall_ms_per_step']:.1f} ms, load {r['load'][0]:.1f})", "",
                  "| op type | ms/step | % | | op type, where | ms/step | % |", "|---|---|---|---|---|---|---|"]
        types, cells = list(r["by_type"].items())[:top], list(r["by_cell"].items())[:top]
        for i in range(max(len(types), len(cells))):
            left = (f"{types[i][0]} | {types[i][1]:.1f} | {100 * types[i][1] / r['total_ms']:.1f}"
                    if i < len(types) else " | | ")
            right = (f"{cells[i][0]} | {cells[i][1]:.1f} | {100 * cells[i][1] / r['total_ms']:.1f}"
                     if i < len(cells) else " | | ")
            lines.append(f"| {left} | | {right} |")
        lines.append("")
    return "\n".join(lines)


def _write(name: str, data, markdown: str = "") -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")
    if markdown:
        (RESULTS / f"{name}.md").write_text(markdown)
    print(f"wrote {RESULTS / name}.json", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 224])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--windows", type=int, default=7)
    parser.add_argument("--steps", type=int, default=2, help="steps per window (--profile: steps profiled)")
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--profile", action="store_true", help="op profile of a training step instead")
    parser.add_argument("--top", type=int, default=15, help="--profile: rows shown")
    parser.add_argument("--proxy", action="store_true", help="train proxy seconds per arch, fast vs stock")
    parser.add_argument("--runs", type=int, default=3, help="--proxy: runs of each")
    parser.add_argument("--smoke", action="store_true", help="2 windows x 1 step (1 proxy run); nothing written")
    parser.add_argument("--child", choices=("throughput", "profile", "proxy"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        out = {"throughput": _child_throughput, "profile": _child_profile}.get(args.child)
        print(json.dumps(out(args) if out else _child_proxy()))
        return 0
    if args.smoke:
        args.windows, args.runs = 2, 1
        args.steps = 1 if not args.profile else min(args.steps, 2)

    from _common import machine
    from _mindcv_env import VERSION, child_env, ensure_mindcv

    mindcv_path, error = ensure_mindcv() if "mindcv" in args.impls and not args.proxy else (None, "")
    env = child_env(mindcv_path)
    record = {"machine": machine(), "load_before": _load()}
    common = ["--batch", str(args.batch), "--steps", str(args.steps)]

    if args.proxy:
        runs: Dict[str, List[dict]] = {"fast": [], "stock": []}
        for i in range(args.runs):
            for impl in (("fast", "stock") if i % 2 == 0 else ("stock", "fast")):
                row = _child(["--child", "proxy"], {**env, "SHUFFLENAS_FAST_CPU": "on" if impl == "fast" else "off"})
                if row["fast_cpu"] != (impl == "fast"):
                    raise SystemExit(f"the {impl} proxy run did not get the path SHUFFLENAS_FAST_CPU asked for")
                runs[impl].append(row)
                print(f"train proxy, x0_5, {impl}: {row['seconds']:.1f} s (top-1 {row['top1']:.2f}, "
                      f"{row['img_per_s']:.1f} img/s, compile {row['compile_s']:.1f} s)", file=sys.stderr)
        medians = {impl: statistics.median(r["seconds"] for r in rows) for impl, rows in runs.items()}
        result = {**record, "benchmark": "train_proxy_fast_cpu", "runs": runs, "median_s": medians,
                  "stock/fast": medians["stock"] / medians["fast"], "load_after": _load()}
        print(json.dumps({k: result[k] for k in ("median_s", "stock/fast", "load_before", "load_after")}))
        if not args.smoke:
            _write("train_proxy_fast_cpu", result)
        return 0

    if args.profile:
        rows = [_child(["--child", "profile", "--impls", impl, "--resolutions", str(res)] + common, env)
                for res in args.resolutions for impl in args.impls if impl != "mindcv" or mindcv_path]
        markdown = _profile_markdown(rows, args.top)
        print(markdown)
        if not args.smoke:
            _write("op_profile", {**record, "batch": args.batch, "steps": args.steps, "rows": rows,
                                  "load_after": _load()}, markdown)
        return 0

    by_resolution = {}
    impls = [i for i in args.impls if i != "mindcv" or mindcv_path]
    for res in args.resolutions:  # one process per resolution: a fresh graph cache for each
        by_resolution.update(_child(["--child", "throughput", "--windows", str(args.windows), "--impls", *impls,
                                     "--resolutions", str(res)] + common, env))
    for row in by_resolution.values():
        paired_ratios(row)
    result = {**record, "benchmark": "train_fast_cpu", "model": "shufflenet_v2_x0_5", "batch": args.batch,
              "windows": args.windows, "steps": args.steps, "mindcv_version": VERSION if mindcv_path else None,
              "mindcv_error": error or None, "by_resolution": by_resolution, "load_after": _load()}
    markdown = _throughput_markdown(result)
    print(markdown)
    if not args.smoke:
        _write("train_fast_cpu", result, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
