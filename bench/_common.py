"""Shared bits of the latency benchmarks: paths, sampling, the machine record."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"


def sample_archs(n: int, seed: int, space_path: str = None) -> List[Any]:
    """``n`` distinct archs drawn uniformly from a space (default: the default space)."""
    import numpy as np

    from space import SearchSpace

    space = SearchSpace.from_yaml(space_path) if space_path else SearchSpace.default()
    rng = np.random.default_rng(seed)
    archs, keys = [], set()
    while len(archs) < n:
        arch = space.sample(rng)
        if arch.key not in keys:
            keys.add(arch.key)
            archs.append(arch)
    return archs


def latency_parser(doc: str) -> "argparse.ArgumentParser":
    """The arguments every latency benchmark shares: which backend, resolution and clock."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--backend", default="mindspore")
    parser.add_argument("--resolution", type=int, default=112)
    parser.add_argument("--clock", default="wall", choices=("wall", "cpu"))
    return parser


def machine() -> Dict[str, Any]:
    import os

    from common.env import cpu_model, mindspore_version, utc_now

    return {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "mindspore": mindspore_version(),
            "load_average": [round(v, 2) for v in os.getloadavg()], "date_utc": utc_now(),
            "command": " ".join([Path(sys.executable).name] + sys.argv)}


def write(name: str, data: Dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=1))
    print(f"wrote {path}", file=sys.stderr)
    return path
