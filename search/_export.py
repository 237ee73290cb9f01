"""`search.py export`: turn a run's chosen archs into training configs that train.py runs as they are."""

from __future__ import annotations

from pathlib import Path
from typing import List

import yaml

from space import Arch, UserError

DEFAULT_RECIPE = "configs/shufflenetv2/shufflenet_v2_0.5_ascend.yaml"


def load_selection(run_dir: Path) -> List[dict]:
    for name in ("best.yaml", "pareto.yaml"):
        path = run_dir / name
        if path.is_file():
            data = yaml.safe_load(path.read_text()) or {}
            return list(data.get("archs") or [])
    raise UserError(f"{run_dir} holds no best.yaml or pareto.yaml; run `search.py search` (or `report`) first")


def export_configs(run_dir: Path, top: int = 1, recipe: str = DEFAULT_RECIPE, out_dir: Path = None) -> List[Path]:
    """Write ``<name>.arch.yaml`` and ``<name>.yaml`` (the recipe with ``arch:`` set) per chosen arch."""
    if top < 1:
        raise UserError(f"--top must be at least 1, got {top}")
    recipe_path = Path(recipe)
    if not recipe_path.is_file():
        raise UserError(f"recipe {recipe} does not exist; give a configs/shufflenetv2/*.yaml file")
    base = yaml.safe_load(recipe_path.read_text()) or {}
    if not isinstance(base, dict):
        raise UserError(f"recipe {recipe} is not a mapping of keys to values")
    entries = load_selection(run_dir)
    if not entries:
        raise UserError(f"{run_dir}: the search found no feasible arch to export")
    if len(entries) > 1 and not any(e.get("final") for e in entries):  # Pareto front: the most accurate first
        entries = sorted(entries, key=lambda e: -(e.get("proxy") or float("-inf")))
    # (with a final round the selection is already ordered by final top-1, the winner first)
    out_dir = (out_dir or run_dir / "export").resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in entries[:top]:
        arch = Arch.from_dict(entry["arch"])
        arch_path = out_dir / f"{arch.name}.arch.yaml"
        arch.save(arch_path)
        config = dict(base)
        config.pop("model", None)
        config["arch"] = str(arch_path)
        config["ckpt_save_dir"] = f"./ckpt/{arch.name}"
        header = (f"# Exported by `search.py export` from {run_dir} (trial {entry.get('trial')}): "
                  f"{arch.name}, latency {entry.get('latency_ms')} ms, proxy {entry.get('proxy')}.\n"
                  f"# Recipe: {recipe}. Run: python train.py -c THIS_FILE --data_dir /path/to/imagenet\n")
        path = out_dir / f"{arch.name}.yaml"
        path.write_text(header + yaml.safe_dump(config, sort_keys=False))
        written.append(path)
    return written
