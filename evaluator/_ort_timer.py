"""The ONNX Runtime timing process: ``python -m evaluator._ort_timer``, driven by the worker.

It imports ONNX Runtime and NumPy only (never MindSpore), so the files the worker exported are
timed as a standalone program runs them. Protocol, one JSON object per line: the first line
on stdin holds the settings (threads, warmup, repeats, clock) and is answered with
``{"ready": true, "mindspore_loaded": false}``; then each line is a command, answered with
one record:

* ``{"measure": [{"path": P, "shape": S}, ...]}``: the candidate and the optional reference,
  timed interleaved (`_timing.measure_record`);
* ``{"part": {"key": K, "path": P, "shape": S}}``: one part alone (`_timing.part_record`).

A command that fails is answered with ``{"error": ...}``; the process ends at end of input.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Dict

from ._backend_onnxruntime import session_runner
from ._timing import example_input, measure_record, part_record


def _answer(command: Dict[str, Any], settings: Dict[str, Any]) -> Dict[str, Any]:
    timing = (settings["warmup"], settings["repeats"], settings["clock"])
    if "measure" in command:
        runners, first = [], []
        for net in command["measure"]:
            run, seconds = session_runner(net["path"], example_input(net["shape"]), settings["threads"])
            runners.append(run)
            first.append(seconds)
        return measure_record(runners, first, *timing)
    part = command["part"]
    run, seconds = session_runner(part["path"], example_input(part["shape"]), settings["threads"])
    return part_record(part["key"], run, seconds, *timing)


def main() -> int:
    settings = json.loads(sys.stdin.readline())
    print(json.dumps({"ready": True, "mindspore_loaded": "mindspore" in sys.modules}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            record = _answer(json.loads(line), settings)
        except Exception as exc:  # one bad file must not end the process; the worker reports it
            text = " ".join(str(exc).split())[:400]
            record = {"error": f"{type(exc).__name__}: {text}" if text else type(exc).__name__}
        print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
