"""Run logging: one line per event on stdout, a JSON-lines file for plots, a TTY progress bar.

Only the main rank prints and writes; the other ranks' RunLog is silent. The file is
``<ckpt_save_dir>/train_log.jsonl``: one object per event, ``{"event": "step"|"epoch"|
"compile"|"note"|"end", ...}``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Optional, TextIO

LOG_FILE = "train_log.jsonl"


class RunLog:
    def __init__(self, folder: Optional[Path], enabled: bool = True, stream: TextIO = sys.stdout) -> None:
        self.enabled = enabled
        self.stream = stream
        self.tty = enabled and hasattr(stream, "isatty") and stream.isatty()
        self._folder = folder if enabled else None
        self._file = None
        self._bar_open = False

    def _line(self, text: str) -> None:
        if self._bar_open:
            self.stream.write("\n")
            self._bar_open = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def event(self, kind: str, message: str, **fields: Any) -> None:
        """Print ``message`` and append ``fields`` to the JSON-lines file."""
        if not self.enabled:
            return
        self._line(message)
        if self._file is None and self._folder is not None:  # opened late: a bad input leaves no folder
            self._folder.mkdir(parents=True, exist_ok=True)
            self._file = open(self._folder / LOG_FILE, "a", encoding="utf-8")
        if self._file is not None:
            record = {"event": kind, "time": round(time.time(), 3), **fields}
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()

    def note(self, text: str) -> None:
        self.event("note", text, text=text)

    def progress(self, epoch: int, step: int, total: int) -> None:
        """A one-line bar rewritten in place, only on a terminal."""
        if not self.tty:
            return
        width = 30
        done = int(width * step / max(total, 1))
        self.stream.write(f"\repoch {epoch} [{'#' * done}{'.' * (width - done)}] {step}/{total}")
        self.stream.flush()
        self._bar_open = True

    def close(self) -> None:
        if self._bar_open:
            self.stream.write("\n")
            self._bar_open = False
        if self._file is not None:
            self._file.close()
            self._file = None
