"""Measuring parts on the target (latency tables and predictors): batches of parts, one
worker each, and the resumable .jsonl file that keeps every finished part."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Union

from common import UserError

from ._parts import Part, part_key
from ._spawn import run_worker

Record = Dict[str, Any]


class PartsFile:
    """A build's finished parts: the first line holds the build's settings (``header``), then
    one measured part per line, appended as it arrives (a kill loses only the part in flight),
    plus the builder's notes (lines without ``key``). Reopening with other settings is an error."""

    def __init__(self, path: Union[str, Path, None], header: Dict[str, Any]) -> None:
        self.path = Path(path) if path else None
        self.measured: Dict[str, Record] = {}
        self.notes: List[Dict[str, Any]] = []
        if self.path is None:
            return
        if self.path.is_file():
            lines = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
            if not lines or lines[0].get("header") != header:
                raise UserError(f"{self.path} holds parts of a build with other settings; delete it or choose "
                                f"another --out")
            for record in lines[1:]:
                if "key" not in record:
                    self.notes.append(record)
                elif "error" not in record:
                    self.measured[record["key"]] = record
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"header": header}) + "\n")

    def _append(self, line: Dict[str, Any]) -> None:
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps(line) + "\n")

    def add(self, record: Record) -> None:
        """Keep a measured part (records with ``error`` are not kept: a rerun retries them)."""
        if "error" in record:
            return
        self.measured[record["key"]] = record
        self._append(record)

    def note(self, **fields: Any) -> None:
        self.notes.append(fields)
        self._append(fields)


def measure_parts(todo: List[Part], request: Dict[str, Any], timeout_per_part: float, chunk: int,
                  report: Callable[[Record], None], environment: Dict[str, Any]) -> Dict[str, str]:
    """Measure parts in workers of ``chunk`` parts each; ``report`` gets every part's record as
    it arrives and ``environment`` the workers' environment record. Returns the parts that
    failed, with reasons."""
    failed: Dict[str, str] = {}
    queue = list(todo)
    while queue:
        batch, queue = queue[:chunk], queue[chunk:]
        done: set = set()

        def on_record(record: Record) -> None:
            if "environment" in record:
                environment.update(record["environment"])
            if "key" not in record:
                return
            done.add(record["key"])
            if "error" in record:
                failed[record["key"]] = record["error"]
            report(record)

        records, error = run_worker({**request, "kind": "parts", "parts": batch},
                                    60.0 + timeout_per_part * len(batch), on_record)
        fatal = [r["error"] for r in records if r.get("fatal")]
        if fatal:  # the worker could not even start measuring (device, backend): no point retrying
            raise UserError(f"measuring parts failed: {fatal[0]}")
        if error is not None:
            rest = [p for p in batch if part_key(p) not in done]
            if rest:  # the part in flight gets the blame; the others go back in the queue
                failed[part_key(rest[0])] = error
                queue = rest[1:] + queue
    return failed


def failure_summary(failed: Dict[str, str], total: int) -> str:
    listed = "; ".join(f"{k}: {v}" for k, v in list(failed.items())[:3])
    return f"{len(failed)} of {total} parts could not be measured ({listed}); rerun the build to retry them"


__all__ = ["PartsFile", "failure_summary", "measure_parts"]
