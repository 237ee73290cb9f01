"""The measuring process: ``python -m evaluator._worker REQUEST.json OUT.jsonl``.

Configures MindSpore, builds the networks of the request and times them (see `_timing`),
writing one JSON record per line to OUT as soon as it is known. Exit status 0 when every
record was written; 3 when setup failed (the last record holds ``error`` and ``fatal``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from typing import Any, Dict, TextIO

import numpy as np


def _error_text(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    first = text.split(" - C++ Call Stack")[0][:400] if text else ""
    from space import UserError

    if isinstance(exc, UserError) and first:
        return first
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _emit(out: TextIO, record: Dict[str, Any]) -> None:
    out.write(json.dumps(record) + "\n")
    out.flush()


def _fault() -> None:
    fault = os.environ.get("SHUFFLENAS_WORKER_FAULT", "")
    if fault == "abort":
        os.abort()
    elif fault == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif fault == "hang":
        while True:
            time.sleep(1)


def _setup(req: Dict[str, Any]):
    from space._runtime import configure

    from .latency import backend_module

    backend = backend_module(req["backend"])
    configure(req["device"], "graph", req["device_id"])
    threads = backend.set_threads(req.get("threads"))
    _fault()
    return backend, threads


def _input(shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _measure(req: Dict[str, Any], backend, out: TextIO) -> None:
    from space import Arch, build

    from ._timing import paired_ratio, stats_ms, time_interleaved

    batch, res = req["batch_size"], req["resolution"]
    example = _input((batch, 3, res, res))
    archs = [Arch.from_dict(req["arch"])] + ([Arch.from_dict(req["reference"])] if req.get("reference") else [])
    runners, compile_s = [], []
    for arch in archs:
        run, first = backend.prepare(build(arch, num_classes=req["num_classes"]), example, req["device"], req["dtype"])
        runners.append(run)
        compile_s.append(first)
    timings = time_interleaved(runners, req["warmup"], req["repeats"], clock=req.get("clock", "wall"))
    record: Dict[str, Any] = {**stats_ms(timings.runs[0]), "compile_s": compile_s[0],
                              "warmup_runs": timings.warmup_runs, "stable": timings.stable}
    if len(runners) > 1:
        record["reference_median_ms"] = stats_ms(timings.runs[1])["median_ms"]
        record["reference_compile_s"] = compile_s[1]
        record["ratio_to_reference"] = paired_ratio(timings.runs[0], timings.runs[1])
    _emit(out, record)


def _parts(req: Dict[str, Any], backend, out: TextIO) -> None:
    from ._cells import part_cell
    from ._parts import input_shape, part_key
    from ._timing import stats_ms, time_interleaved

    for part in req["parts"]:
        key = part_key(part)
        try:
            example = _input(input_shape(part, req["batch_size"]))
            run, first = backend.prepare(part_cell(part, req["num_classes"]), example, req["device"], req["dtype"])
            timings = time_interleaved([run], req["warmup"], req["repeats"], clock=req.get("clock", "wall"))
            _emit(out, {"key": key, **stats_ms(timings.runs[0]), "compile_s": first,
                        "warmup_runs": timings.warmup_runs, "stable": timings.stable})
        except Exception as exc:  # one bad part must not lose the others
            _emit(out, {"key": key, "error": _error_text(exc)})


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    req_path, out_path = argv
    with open(req_path) as f:
        req = json.load(f)
    with open(out_path, "a") as out:
        try:
            backend, threads = _setup(req)
            from ._env import environment

            _emit(out, {"environment": environment(backend.NAME, backend.version(), req["device"], threads)})
            (_measure if req["kind"] == "measure" else _parts)(req, backend, out)
        except Exception as exc:
            _emit(out, {"error": _error_text(exc), "fatal": True})
            traceback.print_exc()
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
