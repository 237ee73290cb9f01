#!/usr/bin/env python
"""Training and inference throughput of shufflenet_v2_x0_5: ours vs MindCV's, same run, same harness.

    python bench/bench_train.py [--resolutions 224 64] [--batch 32] [--windows 5] [--steps 3]

Both networks get the identical training step (the recipe's momentum optimizer with its
weight-decay groups, label-smoothed CE, fixed loss scale 1024, graph mode) on a fixed random
batch, so the data pipeline is excluded (see the data pipeline benchmark for that). Windows
alternate ours / MindCV so machine load hits both alike; img/s is the median over windows,
after compile. mindcv==0.3.0 is installed into a private folder (bench/_mindcv_env.py) and
imported in a child process only. Writes bench/results/train_throughput.json and .md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
RESULTS = HERE / "results"


def _measure(args) -> dict:
    """Child process: build both nets, alternate timed windows, return medians."""
    import mindspore as ms
    import numpy as np
    from mindspore import nn

    from space import build, reference
    from space._runtime import configure
    from training._config import TrainConfig, read_yaml
    from training._loss import EvalNet, NetWithLoss, create_loss
    from training._optim import create_optimizer

    configure("CPU", "graph")
    recipe = TrainConfig(**read_yaml(HERE.parent / "configs/shufflenetv2/shufflenet_v2_0.5_ascend.yaml"))
    makers = {"ours": lambda: build(reference("x0_5"), num_classes=1000)}
    try:
        from mindcv.models import create_model as mindcv_model

        makers["mindcv"] = lambda: mindcv_model("shufflenet_v2_x0_5", num_classes=1000)
    except ImportError as exc:
        print(f"mindcv not importable: {exc}", file=sys.stderr)
    rng = np.random.default_rng(0)
    out = {}
    for res in args.resolutions:
        x = ms.Tensor(rng.standard_normal((args.batch, 3, res, res)).astype(np.float32))
        y = ms.Tensor(rng.integers(0, 1000, args.batch).astype(np.int32))
        cells = {}
        for impl, make in makers.items():
            ms.set_seed(0)
            net = make()
            opt = create_optimizer(net.trainable_params(), recipe, [recipe.lr] * 100000,
                                   loss_scale=recipe.loss_scale)
            step = nn.TrainOneStepCell(NetWithLoss(net, create_loss(recipe.label_smoothing)), opt,
                                       sens=recipe.loss_scale)
            step.set_train(True)
            infer = EvalNet(net)
            t = time.perf_counter()
            step(x, y).asnumpy()
            compile_train = time.perf_counter() - t
            infer.set_train(False)
            t = time.perf_counter()
            infer(x).asnumpy()
            compile_infer = time.perf_counter() - t
            cells[impl] = (step, infer, {"compile_train_s": compile_train, "compile_infer_s": compile_infer})
        samples = {impl: {"train": [], "infer": []} for impl in cells}
        for window in range(args.windows):
            # Alternate which implementation goes first, so neither always runs on a warmer cache.
            order = list(cells.items())
            if window % 2:
                order.reverse()
            for impl, (step, infer, _) in order:
                step.set_train(True)
                t = time.perf_counter()
                for _ in range(args.steps):
                    step(x, y).asnumpy()
                samples[impl]["train"].append(args.batch * args.steps / (time.perf_counter() - t))
                infer.set_train(False)
                t = time.perf_counter()
                for _ in range(args.steps):
                    infer(x).asnumpy()
                samples[impl]["infer"].append(args.batch * args.steps / (time.perf_counter() - t))
        out[str(res)] = {impl: {"train_img_s": statistics.median(s["train"]), "infer_img_s": statistics.median(s["infer"]),
                                "train_windows": s["train"], "infer_windows": s["infer"], **cells[impl][2]}
                         for impl, s in samples.items()}
        for impl in cells:
            print(f"{res} px {impl}: train {out[str(res)][impl]['train_img_s']:.1f} img/s, "
                  f"infer {out[str(res)][impl]['infer_img_s']:.1f} img/s", file=sys.stderr, flush=True)
    return out


def add_ratios(result: dict) -> None:
    """ours/MindCV as a ratio of medians, and as the median of per-window ratios (windows run
    back to back, so each pair saw about the same machine load)."""
    for row in result["by_resolution"].values():
        if "mindcv" not in row:
            continue
        for kind in ("train", "infer"):
            o, m = row["ours"], row["mindcv"]
            row[f"ratio_{kind}"] = o[f"{kind}_img_s"] / m[f"{kind}_img_s"]
            row[f"paired_ratio_{kind}"] = statistics.median(
                a / b for a, b in zip(o[f"{kind}_windows"], m[f"{kind}_windows"]))


def _markdown(result: dict) -> str:
    lines = [f"shufflenet_v2_x0_5, batch {result['batch']}, {result['windows']} windows x {result['steps']} steps, "
             f"median img/s after compile; {result['cpu']}, MindSpore {result['mindspore']}, {result['date']}", "",
             "| px | ours train | MindCV train | ratio (paired) | ours infer | MindCV infer | ratio (paired) |",
             "|---|---|---|---|---|---|---|"]
    for res, row in result["by_resolution"].items():
        o, m = row["ours"], row.get("mindcv")
        cells = []
        for kind in ("train", "infer"):
            if m:
                cells.append(f"{o[kind + '_img_s']:.1f} | {m[kind + '_img_s']:.1f} | "
                             f"{row['ratio_' + kind]:.2f} ({row['paired_ratio_' + kind]:.2f})")
            else:
                cells.append(f"{o[kind + '_img_s']:.1f} | n/a | n/a")
        lines.append(f"| {res} | {cells[0]} | {cells[1]} |")
    if result.get("mindcv_error"):
        lines += ["", f"MindCV not measured: {result['mindcv_error']}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[224, 64])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(args)))
        return 0

    from _mindcv_env import VERSION, child_env, ensure_mindcv

    mindcv_path, error = ensure_mindcv()
    by_resolution = {}
    for res in args.resolutions:  # one process per resolution: a fresh graph cache for each
        argv = [sys.executable, __file__, "--child", "--batch", str(args.batch), "--windows", str(args.windows),
                "--steps", str(args.steps), "--resolutions", str(res)]
        proc = subprocess.run(argv, env=child_env(mindcv_path), stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            print(f"benchmark child failed at {res} px", file=sys.stderr)
            return 1
        by_resolution.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    import mindspore

    from evaluator._env import cpu_model

    cpu = cpu_model()
    result = {"benchmark": "train_throughput", "model": "shufflenet_v2_x0_5", "batch": args.batch,
              "windows": args.windows, "steps": args.steps, "mindcv_version": VERSION if mindcv_path else None,
              "mindcv_error": error or None, "cpu": cpu, "mindspore": mindspore.__version__,
              "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "by_resolution": by_resolution}
    add_ratios(result)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "train_throughput.md").write_text(_markdown(result))
    print(_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
