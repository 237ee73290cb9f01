"""The measuring process: ``python -m evaluator._worker REQUEST.json OUT.jsonl``.

Configures MindSpore, builds the networks of the request and times them (see `_timing`),
writing one JSON record per line to OUT as soon as it is known. A backend with a ``TIMER``
(ONNX Runtime) only exports here; its files are timed in that clean process, fed over a pipe.
Exit status 0 when every record was written; 3 when setup failed (the last record holds
``error`` and ``fatal``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any, Dict, TextIO

from evaluator._spawn import FAULT_VAR


def _error_text(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    first = text.split(" - C++ Call Stack")[0][:400] if text else ""
    from common import UserError

    if isinstance(exc, UserError) and first:
        return first
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _emit(out: TextIO, record: Dict[str, Any]) -> None:
    out.write(json.dumps(record) + "\n")
    out.flush()


def _fault() -> None:
    fault = os.environ.get(FAULT_VAR, "")
    if fault == "abort":
        os.abort()
    elif fault == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif fault == "hang":
        while True:
            time.sleep(1)


def _one_core() -> None:
    """Keep this process (and the threads it starts) on one core (see ONE_CORE_FOR_CPU_CLOCK in
    `_backend_mindspore`)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def _setup(req: Dict[str, Any]):
    from common.runtime import configure

    from .latency import backend_module

    backend = backend_module(req["backend"])
    if getattr(backend, "ONE_CORE_FOR_CPU_CLOCK", False) and req.get("clock") == "cpu" and req.get("threads") == 1 \
            and req["device"] == "CPU":
        _one_core()
    configure(req["device"], "graph", req["device_id"])
    threads = backend.set_threads(req.get("threads"))
    _fault()
    return backend, threads


class _Timer:
    """The backend's clean timing process (`TIMER`), fed one command per line (see `_ort_timer`)."""

    def __init__(self, module: str, req: Dict[str, Any]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", module], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        settings = {"threads": req.get("threads") or 1, "warmup": req["warmup"], "repeats": req["repeats"],
                    "clock": req.get("clock", "wall")}
        hello = self.ask(settings)
        if hello.get("mindspore_loaded"):
            raise RuntimeError(f"the timing process {module} loaded MindSpore; it must time without it")

    def ask(self, command: Dict[str, Any]) -> Dict[str, Any]:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise RuntimeError(f"the timing process ended (exit status {code})")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def _networks(req: Dict[str, Any]):
    from space import Arch, build

    archs = [Arch.from_dict(req["arch"])] + ([Arch.from_dict(req["reference"])] if req.get("reference") else [])
    return [build(arch, num_classes=req["num_classes"]) for arch in archs]


def _measure(req: Dict[str, Any], backend, out: TextIO) -> None:
    from ._timing import example_input, measure_record

    shape = (req["batch_size"], 3, req["resolution"], req["resolution"])
    example = example_input(shape)
    timing = (req["warmup"], req["repeats"], req.get("clock", "wall"))
    if getattr(backend, "TIMER", None):
        with tempfile.TemporaryDirectory(prefix="shufflenas-export-") as tmp:
            files = [os.path.join(tmp, f"net{i}.onnx") for i in range(2)]
            exported = [backend.export(cell, example, path) for cell, path in zip(_networks(req), files)]
            timer = _Timer(backend.TIMER, req)
            record = timer.ask({"measure": [{"path": path, "shape": shape} for path in files[:len(exported)]]})
            timer.close()
        if "error" in record:
            raise RuntimeError(record["error"])
        record["compile_s"] += exported[0]
        if len(exported) > 1:
            record["reference_compile_s"] += exported[1]
    else:
        runners, compile_s = [], []
        for cell in _networks(req):
            run, first = backend.prepare(cell, example, req["device"], req["dtype"])
            runners.append(run)
            compile_s.append(first)
        record = measure_record(runners, compile_s, *timing)
    _emit(out, record)


def _parts(req: Dict[str, Any], backend, out: TextIO) -> None:
    from ._cells import part_cell
    from ._parts import input_shape, part_key
    from ._timing import example_input, part_record

    timing = (req["warmup"], req["repeats"], req.get("clock", "wall"))
    timer = _Timer(backend.TIMER, req) if getattr(backend, "TIMER", None) else None
    with tempfile.TemporaryDirectory(prefix="shufflenas-export-") as tmp:
        for part in req["parts"]:
            key = part_key(part)
            try:
                shape = input_shape(part, req["batch_size"])
                cell = part_cell(part, req["num_classes"])
                if timer is None:
                    run, first = backend.prepare(cell, example_input(shape), req["device"], req["dtype"])
                    record = part_record(key, run, first, *timing)
                else:
                    path = os.path.join(tmp, "part.onnx")
                    exported = backend.export(cell, example_input(shape), path)
                    record = timer.ask({"part": {"key": key, "path": path, "shape": shape}})
                    if "compile_s" in record:
                        record["compile_s"] += exported
                _emit(out, record if "error" not in record else {"key": key, "error": record["error"]})
            except Exception as exc:  # one bad part must not lose the others
                _emit(out, {"key": key, "error": _error_text(exc)})
    if timer is not None:
        timer.close()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    req_path, out_path = argv
    with open(req_path) as f:
        req = json.load(f)
    with open(out_path, "a") as out:
        try:
            backend, threads = _setup(req)
            from common.env import environment

            _emit(out, {"environment": environment(backend.NAME, backend.version(), req["device"], threads)})
            (_measure if req["kind"] == "measure" else _parts)(req, backend, out)
        except Exception as exc:
            _emit(out, {"error": _error_text(exc), "fatal": True})
            traceback.print_exc()
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
