"""`search.py export`: turn a run's chosen archs into training configs that train.py runs as they are.

The exported config trains on the data the search used: its folder (or Fashion-MNIST), with
``num_classes`` counted from the folder, at the resolution the latency was measured at (the
input size the arch was chosen for; the proxy's smaller one only made scoring cheap). With no
``--recipe``, the recipe is the one the search's train proxy shortened for that data.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional

from common import UserError
from common.cli import config_path, load_yaml_mapping, read_yaml

from ._record import SelectionEntry

DEFAULT_RECIPE = "configs/shufflenetv2/shufflenet_v2_0.5_ascend.yaml"  # ImageNet: for selections with no data
_ROOT = Path(__file__).resolve().parent.parent


class Exported(NamedTuple):
    config: Path  # the training config written
    command: str  # the command that trains it, as printed


def load_selection(run_dir: Path) -> Dict[str, Any]:
    """best.yaml or pareto.yaml of a run: ``archs`` (chosen, best first) and ``data`` (what the search used)."""
    for name in ("best.yaml", "pareto.yaml"):
        path = run_dir / name
        if path.is_file():
            data = read_yaml(path, "selection file")
            if not isinstance(data, dict) or not isinstance(data.get("archs") or [], list):
                raise UserError(f"{path} is not a selection written by `search.py search`; run `search.py report`")
            return {"archs": list(data.get("archs") or []), "data": dict(data.get("data") or {})}
    raise UserError(f"{run_dir} holds no best.yaml or pareto.yaml; run `search.py search` (or `report`) first")


def data_keys(data: Dict[str, Any]) -> Dict[str, Any]:
    """Recipe keys for the data a search used: dataset, data_dir, num_classes (from the folder), image_resize."""
    from training.data import DataConfig, num_classes_of

    source = data.get("proxy_data")
    if source is None:
        return {}
    if str(source).lower().replace("-", "_") == "fashion_mnist":
        keys: Dict[str, Any] = {"dataset": "fashion_mnist", "data_dir": None}
    else:
        folder = Path(source).expanduser().resolve()
        if not folder.is_dir():
            raise UserError(f"the search's data folder {folder} no longer exists; give it back or use --recipe "
                            "with your own data_dir")
        keys = {"dataset": "imagenet", "data_dir": str(folder)}
    keys["num_classes"] = num_classes_of(DataConfig(dataset=keys["dataset"], data_dir=keys["data_dir"]))
    if data.get("resolution"):
        keys["image_resize"] = int(data["resolution"])
    return keys


def default_recipe(data: Dict[str, Any]) -> str:
    """The recipe the search's train proxy shortened for its data (x0_5's for that data)."""
    from evaluator.proxy import PROXY_RECIPES

    if data.get("proxy_recipe"):
        return str(data["proxy_recipe"])
    if data.get("proxy_data") is None:
        return DEFAULT_RECIPE
    fashion = str(data["proxy_data"]).lower().replace("-", "_") == "fashion_mnist"
    return str(PROXY_RECIPES["fashion_mnist" if fashion else "imagenet"])


def train_command(config: Path, distribute: bool) -> str:
    """The command that trains ``config`` as printed (one process; the msrun form is in the file)."""
    script = _ROOT / "train.py"
    try:
        script = script.relative_to(Path.cwd())
    except ValueError:
        pass
    command = ["python", str(script), "-c", str(config)]
    if distribute:
        command += ["--distribute", "False"]
    return " ".join(shlex.quote(part) for part in command)


def export_configs(run_dir: Path, top: int = 1, recipe: Optional[str] = None,
                   out_dir: Optional[Path] = None) -> List[Exported]:
    """Write ``<name>.arch.yaml`` and ``<name>.yaml`` (the recipe for the search's data, ``arch:`` set)."""
    from common.settings import yaml_with_help
    from training import TrainConfig, read_recipe

    if top < 1:
        raise UserError(f"--top must be at least 1, got {top}")
    selection = load_selection(run_dir)
    entries, data = [SelectionEntry.from_yaml(e) for e in selection["archs"]], selection["data"]
    recipe = recipe or default_recipe(data)
    base = load_yaml_mapping(recipe, "recipe")
    distribute = bool(read_recipe(recipe).get("distribute"))  # a recipe train.py refuses fails here
    if not entries:
        raise UserError(f"{run_dir}: the search found no feasible arch to export")
    if len(entries) > 1 and not any(e.final for e in entries):  # Pareto front by proxy: the most accurate first
        entries.sort(key=lambda e: -(e.record.proxy_value if e.record.proxy_value is not None else float("-inf")))
    # (with a final round the selection is already ordered by final top-1, the winner first)
    data_values = data_keys(data)
    out_dir = (out_dir or run_dir / "export").resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in entries[:top]:
        arch, final = entry.record.arch_obj(), entry.final
        arch_path = out_dir / f"{arch.name}.arch.yaml"
        arch.save(arch_path)
        config = {k: v for k, v in base.items() if k != "model"}
        config.update(data_values)
        config["arch"] = str(arch_path)
        config["ckpt_save_dir"] = str(out_dir / "ckpt" / arch.name)
        path = out_dir / f"{arch.name}.yaml"
        command = train_command(path, distribute)
        used = (f"data: {data_values.get('data_dir') or data_values.get('dataset')}, "
                f"{data_values.get('num_classes')} classes, {data_values.get('image_resize')} px"
                if data_values else "data: the recipe's (this selection does not say what the search used)")
        chosen_by = (f"final round top-1 {final['top1_mean']} ({final['budget']})" if final
                     else f"proxy {entry.record.proxy_value}")
        header = (f"# Exported by `search.py export` from {run_dir} (trial {entry.trial}): "
                  f"{arch.name}, latency {entry.record.latency_ms} ms, {chosen_by}.\n"
                  f"# Recipe: {config_path(recipe)}; {used}.\n"
                  f"# Run: {command}\n"
                  + (f"# On N devices: msrun --worker_num N python train.py -c {path}\n" if distribute else ""))
        path.write_text(header + yaml_with_help(TrainConfig, config))
        written.append(Exported(path, command))
    return written
