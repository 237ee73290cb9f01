"""mindcv==0.3.0 for the benchmarks only: installed with --no-deps into a private folder and put
on sys.path of a child process, never a project dependency."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional, Tuple

DEFAULT_TARGET = Path(os.environ.get("MINDCV_ENV", "/tmp/mindcv_env"))
VERSION = "0.3.0"


def ensure_mindcv(target: Path = DEFAULT_TARGET) -> Tuple[Optional[Path], str]:
    """(folder to put on sys.path, '') or (None, why mindcv is not available)."""
    if not (target / "mindcv").is_dir():
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                               str(target), f"mindcv=={VERSION}"], capture_output=True, text=True)
        if proc.returncode != 0:
            return None, f"pip install mindcv=={VERSION} failed: {proc.stderr.strip().splitlines()[-1:]}"
    probe = subprocess.run([sys.executable, "-c", "import mindcv.models; print(mindcv.__version__)"],
                           env=child_env(target), capture_output=True, text=True)
    if probe.returncode != 0:
        last = [line for line in probe.stderr.splitlines() if line.strip()][-1:]
        return None, f"mindcv=={VERSION} does not import on this MindSpore: {last}"
    return target, ""


def child_env(mindcv_path: Optional[Path]) -> Dict[str, str]:
    root = str(Path(__file__).resolve().parent.parent)
    paths = [root] + ([str(mindcv_path)] if mindcv_path else [])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "GLOG_v": "3"}
