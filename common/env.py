"""The environment a latency was measured in: software versions, host, CPU, threads, time."""

from __future__ import annotations

import os
import platform
import socket
import sys
from datetime import datetime, timezone
from typing import Any, Dict, Optional


def cpu_model() -> str:
    """The host CPU's model name (``/proc/cpuinfo``, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def host_name() -> str:
    return socket.gethostname()


def mindspore_version() -> str:
    """MindSpore's version, read from package metadata (importing it costs seconds)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mindspore")
    except PackageNotFoundError:
        return "not installed"


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def environment(backend: str, backend_version: Optional[str], device: str, threads: Optional[int]) -> Dict[str, Any]:
    """The record stored with every result and table; ``load_average`` shows a busy host."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "mindspore": mindspore_version(),
        "backend": backend,
        "backend_version": backend_version,
        "device": device,
        "host": host_name(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "python": platform.python_version(),
        "platform": sys.platform,
        "load_average": None if load is None else [round(v, 2) for v in load],
        "time_utc": utc_now(),
    }
