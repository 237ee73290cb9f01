"""Run `evaluator._worker` in a fresh process with a time limit; turn any failure into a reason."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
# Test hook read by the worker: "abort" (a native crash), "kill" (what the OOM killer does),
# "hang" (never returns). Lets tests exercise the failure paths with the real worker.
FAULT_VAR = "SHUFFLENAS_WORKER_FAULT"
_POLL_S = 0.2


def _signal_reason(code: int) -> str:
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    if -code == signal.SIGKILL:
        return f"worker killed by {name} (out of memory? the kernel's OOM killer sends it)"
    return f"worker crashed: killed by {name}"


def _last_error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "error" in line:
            return line[:300]
    return lines[-1][:300] if lines else "no output"


def run_worker(request: Dict[str, Any], timeout: float,
               on_record: Optional[Callable[[Dict[str, Any]], None]] = None) -> Tuple[List[Dict[str, Any]], Optional[str]]:
    """Run one worker on ``request``; returns the JSON records it wrote and an error reason
    (None when it finished cleanly). Records arrive through ``on_record`` as they are written."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("GLOG_v", "3")
    with tempfile.TemporaryDirectory(prefix="shufflenas-latency-") as tmp:
        req_path, out_path, err_path = (os.path.join(tmp, n) for n in ("request.json", "out.jsonl", "stderr"))
        Path(req_path).write_text(json.dumps(request))
        Path(out_path).touch()
        records: List[Dict[str, Any]] = []
        with open(err_path, "w") as err, open(out_path) as out:
            proc = subprocess.Popen([sys.executable, "-m", "evaluator._worker", req_path, out_path],
                                    cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
            start = time.monotonic()
            timed_out = False
            pending = ""

            def drain() -> None:
                nonlocal pending
                pending += out.read()
                *complete, pending = pending.split("\n")
                for line in complete:
                    if line.strip():
                        records.append(json.loads(line))
                        if on_record is not None:
                            on_record(records[-1])

            while True:
                try:
                    proc.wait(timeout=_POLL_S)
                    break
                except subprocess.TimeoutExpired:
                    drain()
                    if time.monotonic() - start > timeout:
                        timed_out = True
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()
                        break
            drain()
        if timed_out:
            return records, f"timed out after {timeout:g} s (worker killed)"
        if proc.returncode < 0:
            return records, _signal_reason(proc.returncode)
        if proc.returncode != 0:
            failed = [r["error"] for r in records if r.get("error") and r.get("fatal")]
            return records, failed[-1] if failed else f"worker exited with status {proc.returncode}: " \
                                                      f"{_last_error_line(Path(err_path).read_text())}"
        return records, None
