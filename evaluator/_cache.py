"""Persistent latency results in SQLite, safe for several processes (WAL, busy timeout)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

ENV_VAR = "SHUFFLENAS_LATENCY_CACHE"
_SCHEMA = """CREATE TABLE IF NOT EXISTS latency (
    key TEXT PRIMARY KEY,
    created_utc TEXT NOT NULL,
    result TEXT NOT NULL
)"""


def default_path() -> Path:
    """``$SHUFFLENAS_LATENCY_CACHE`` or ``~/.cache/shufflenas/latency.sqlite``."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else Path.home() / ".cache" / "shufflenas" / "latency.sqlite"


def cache_key(parts: Sequence[Any]) -> str:
    return json.dumps(list(parts), separators=(",", ":"))


class LatencyCache:
    """A key → result-dict store. Each call opens its own connection: cheap, fork-safe."""

    def __init__(self, path: Union[str, Path, None] = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), timeout=60.0)
        db.execute("PRAGMA busy_timeout=60000")
        return db

    def get(self, key: str) -> Optional[Dict[str, Any]]:
        db = self._connect()
        try:
            row = db.execute("SELECT result FROM latency WHERE key = ?", (key,)).fetchone()
        finally:
            db.close()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, result: Dict[str, Any], created_utc: str) -> None:
        db = self._connect()
        try:
            with db:
                db.execute("INSERT OR REPLACE INTO latency (key, created_utc, result) VALUES (?, ?, ?)",
                           (key, created_utc, json.dumps(result)))
        finally:
            db.close()

    def __len__(self) -> int:
        db = self._connect()
        try:
            return int(db.execute("SELECT COUNT(*) FROM latency").fetchone()[0])
        finally:
            db.close()
