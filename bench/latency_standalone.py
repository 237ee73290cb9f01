"""Absolute milliseconds: x0_5 as `measure` times it against the same exported network timed by a
plain standalone script, and the variants that explain a gap (issue 12, item 3). Each round runs
every variant once, in alternating order, each in its own process; medians over rounds, ratios
to the standalone run. Resumable: rounds are appended to the result file.

    python bench/latency_standalone.py --backend onnxruntime --resolution 224 --rounds 8
    python bench/latency_standalone.py --backend mindspore --resolution 224 --rounds 6

Variants (onnxruntime): ``measure`` (the product: worker, x0_5 interleaved as the reference),
``measure_alone`` (no reference), ``standalone`` (ONNX Runtime alone, 1 thread),
``beside_mindspore`` (ONNX Runtime in a process that imported MindSpore and exported with it:
where the worker used to time), ``strict_alternation`` (ONNX Runtime alone, x0_5 alternating run
by run with a second x0_5 session: the old timing loop). mindspore: ``measure``,
``measure_alone``, ``standalone`` (a plain MindSpore script; with ``--clock cpu`` kept on one
core, as the worker keeps itself).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from _common import RESULTS, ROOT, latency_parser, machine, write

VARIANTS = {"onnxruntime": ("measure", "measure_alone", "standalone", "beside_mindspore", "strict_alternation"),
            "mindspore": ("measure", "measure_alone", "standalone")}
RUNS = 200


def _child(mode: str, backend: str, resolution: int, clock: str, model: str) -> float:
    """One variant in this (fresh) process; the median ms."""
    import os
    import time

    now = time.process_time if clock == "cpu" else time.perf_counter
    x = np.random.default_rng(0).standard_normal((1, 3, resolution, resolution)).astype(np.float32)
    if backend == "mindspore":
        if clock == "cpu":  # as the worker does: MindSpore's waiting thread spins on another core
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        import mindspore as ms

        from evaluator import _backend_mindspore
        from space import build, reference

        ms.set_context(mode=ms.GRAPH_MODE)
        ms.set_device("CPU")
        _backend_mindspore.set_threads(1)
        net = build(reference("x0_5"))
        net.set_train(False)
        tensor = ms.Tensor(x)
        runs = [lambda: net(tensor).asnumpy()]
    else:
        if mode == "beside_mindspore":
            from evaluator import _backend_onnxruntime
            from space import build, reference
            from common.runtime import configure

            configure("CPU", "graph")
            _backend_onnxruntime.export(build(reference("x0_5")), x, str(Path(model).with_suffix(".again.onnx")))
        import onnxruntime as ort

        def session():
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            s = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
            feed = {s.get_inputs()[0].name: x}
            return lambda: s.run(None, feed)

        runs = [session()] + ([session()] if mode == "strict_alternation" else [])
    for _ in range(30):
        for run in runs:
            run()
    times = []
    for _ in range(RUNS if backend == "onnxruntime" else 40):
        start = now()
        runs[0]()
        times.append(now() - start)
        for run in runs[1:]:
            run()
    return float(np.median(times)) * 1e3


def _variant(mode: str, args, model: str) -> float:
    if mode.startswith("measure"):
        from evaluator import measure

        r = measure("x0_5", backend=args.backend, resolution=args.resolution, clock=args.clock, repeats=100,
                    reference="x0_5" if mode == "measure" else None, cache=None)
        if not r.ok:
            raise SystemExit(f"measure failed: {r.error}")
        return float(r.median_ms)
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--backend", args.backend, "--resolution",
                          str(args.resolution), "--clock", args.clock, "--model", model],
                         capture_output=True, text=True, cwd=ROOT, env=_env())
    if out.returncode != 0:
        raise SystemExit(f"variant {mode} failed: {out.stderr[-1500:]}")
    return float(out.stdout.strip().splitlines()[-1])


def _env() -> dict:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("GLOG_v", "3")
    return env


def main() -> int:
    parser = latency_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(_child(args.child, args.backend, args.resolution, args.clock, args.model))
        return 0

    name = f"latency_standalone-{args.backend}-{args.resolution}-{args.clock}"
    path = RESULTS / f"{name}.json"
    settings = {"backend": args.backend, "resolution": args.resolution, "clock": args.clock}
    data = json.loads(path.read_text()) if path.is_file() else {}
    if data.get("settings") != settings:
        data = {"settings": settings, "rounds": []}
    model = str(RESULTS / f"{name}.x0_5.onnx")
    if args.backend == "onnxruntime" and not Path(model).is_file():
        from evaluator import _backend_onnxruntime
        from evaluator._timing import example_input
        from space import build, reference
        from common.runtime import configure

        configure("CPU", "graph")
        _backend_onnxruntime.export(build(reference("x0_5")), example_input((1, 3, args.resolution, args.resolution)),
                                    model)
    variants = VARIANTS[args.backend]
    while len(data["rounds"]) < args.rounds:
        order = variants if len(data["rounds"]) % 2 == 0 else variants[::-1]
        before = machine()["load_average"]
        row = {mode: _variant(mode, args, model) for mode in order}
        data["rounds"].append({"ms": row, "load_before": before, "load_after": machine()["load_average"]})
        print(f"round {len(data['rounds'])}: " + ", ".join(f"{m} {row[m]:.3f}" for m in variants), file=sys.stderr,
              flush=True)
        path.write_text(json.dumps(data, indent=1))
    medians = {m: float(np.median([r["ms"][m] for r in data["rounds"]])) for m in variants}
    data.update(machine=machine(), median_ms=medians,
                ratio_to_standalone={m: medians[m] / medians["standalone"] for m in variants})
    write(name, data)
    for m in variants:
        print(f"{m:<20} {medians[m]:8.3f} ms   x{data['ratio_to_standalone'][m]:.3f} of standalone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
