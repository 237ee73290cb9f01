"""The search configuration: YAML keys, defaults, validation; every key is also a CLI flag."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import yaml

from space import UserError
from space._cli import load_yaml_mapping, str2bool

MODES = ("constrained", "pareto")
SAMPLERS = ("tpe", "nsga2", "random", "gp")
PRUNERS = ("median", "sha", "none")
LATENCY_SOURCES = ("measure", "lut", "lut+verify", "predictor", "predictor+verify")


@dataclass(frozen=True)
class SearchConfig:
    """One search. Keys are YAML keys and ``--flags`` (``-`` or ``_`` both accepted on the CLI)."""

    # study
    study_name: str = "shufflenas"
    storage: Optional[str] = None  # SQLAlchemy URL, journal file (*.journal / journal:PATH); None: run_dir/study.db
    run_dir: str = "runs/shufflenas"
    n_trials: int = 50  # total for the study; re-running continues up to this count
    timeout: Optional[float] = None  # seconds per worker
    workers: int = 1
    seed: Optional[int] = 0
    sampler: str = "tpe"
    mode: str = "constrained"
    pruner: str = "median"  # used with the short-training proxy in constrained mode
    quiet: bool = False
    heartbeat_interval: int = 10  # seconds; database storages only
    grace_period: int = 30  # seconds without a heartbeat before a running trial is failed and retried
    # space
    space: str = "configs/spaces/shufflenetv2.yaml"
    enqueue_references: bool = True
    # latency
    latency_source: str = "measure"
    latency_table: Optional[str] = None
    latency_predictor: Optional[str] = None  # file of `search.py predictor build`, for the predictor sources
    backend: str = "mindspore"
    device: str = "CPU"
    device_id: int = 0
    batch_size: int = 1
    resolution: int = 224
    dtype: str = "float32"
    threads: Optional[int] = 1
    clock: str = "wall"  # wall, or cpu (process CPU time, 1 thread: steadier on a busy shared host)
    latency_warmup: int = 10
    latency_repeats: int = 50
    latency_timeout: float = 900.0
    latency_cache: Optional[str] = "default"  # SQLite path, "default" (~/.cache/shufflenas) or null
    budget_ms: Optional[float] = None  # absolute: latency <= budget_ms
    budget_ratio: Optional[float] = None  # relative: latency <= budget_ratio x reference (measured alongside)
    reference: str = "x0_5"
    prefilter_margin: float = 1.5  # skip a candidate whose estimate exceeds margin x budget
    # proxy
    # proxy: the default is the calibrated one (evaluator.proxy.DEFAULT_PROXY and TRAIN_DEFAULTS)
    proxy: str = "train"
    proxy_data: str = "fashion_mnist"
    proxy_resolution: int = 64
    proxy_batch_size: int = 32
    proxy_seed: int = 0
    proxy_epochs: int = 1  # short-training proxy ("train")
    proxy_subset: Optional[int] = 1600
    proxy_val_subset: Optional[int] = 2000  # val images for the train proxy; None: proxy_subset
    proxy_warmup_epochs: int = 0
    proxy_lr: Optional[float] = None
    proxy_recipe: Optional[str] = None  # the recipe the train proxy shortens; None: x0_5's for the data

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


KEYS = tuple(f.name for f in fields(SearchConfig))
_TYPES = {f.name: f.type for f in fields(SearchConfig)}


def _coerce(key: str, value: Any) -> Any:
    """Check a YAML value against the field's type; ints become floats where floats are expected."""
    kind = str(_TYPES[key])
    if value is None:
        if "Optional" not in kind:
            raise UserError(f"config key {key}: must not be null")
        return None
    if "bool" in kind:
        if isinstance(value, str):
            return str2bool(value)
        if not isinstance(value, bool):
            raise UserError(f"config key {key}: expected true or false, got {value!r}")
        return value
    if "int" in kind and "float" not in kind:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"config key {key}: expected an integer, got {value!r}")
        return value
    if "float" in kind:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"config key {key}: expected a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise UserError(f"config key {key}: expected a string, got {value!r}")
    return value


def _validate(cfg: SearchConfig) -> SearchConfig:
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise UserError(message)

    need(cfg.mode in MODES, f"mode: choose one of {', '.join(MODES)}, got {cfg.mode!r}")
    need(cfg.sampler in SAMPLERS, f"sampler: choose one of {', '.join(SAMPLERS)}, got {cfg.sampler!r}")
    need(cfg.pruner in PRUNERS, f"pruner: choose one of {', '.join(PRUNERS)}, got {cfg.pruner!r}")
    need(cfg.latency_source in LATENCY_SOURCES,
         f"latency_source: choose one of {', '.join(LATENCY_SOURCES)}, got {cfg.latency_source!r}")
    need(cfg.n_trials >= 1, f"n_trials must be at least 1, got {cfg.n_trials}")
    need(cfg.workers >= 1, f"workers must be at least 1, got {cfg.workers}")
    need(cfg.timeout is None or cfg.timeout > 0, f"timeout must be positive seconds, got {cfg.timeout}")
    need(cfg.budget_ms is None or cfg.budget_ms > 0, f"budget_ms must be positive, got {cfg.budget_ms}")
    need(cfg.budget_ratio is None or cfg.budget_ratio > 0, f"budget_ratio must be positive, got {cfg.budget_ratio}")
    need(not (cfg.budget_ms is not None and cfg.budget_ratio is not None),
         "give either budget_ms or budget_ratio, not both")
    need(cfg.mode == "pareto" or cfg.budget_ms is not None or cfg.budget_ratio is not None,
         "constrained mode needs a latency budget: set budget_ms (absolute) or budget_ratio (x the reference)")
    need(cfg.prefilter_margin >= 1.0, f"prefilter_margin must be at least 1, got {cfg.prefilter_margin}")
    for source, key, build in (("lut", "latency_table", "lut build"), ("predictor", "latency_predictor",
                                                                        "predictor build")):
        if cfg.latency_source.startswith(source):
            path = getattr(cfg, key)
            need(path is not None, f"latency_source {cfg.latency_source} needs {key}: a file built with "
                                   f"`search.py {build}`")
            need(Path(path).is_file(), f"{key} {path} does not exist; build it with `search.py {build}`")
    need(Path(cfg.space).is_file(), f"space file {cfg.space} does not exist")
    need(str(cfg.proxy_data).lower().replace("-", "_") == "fashion_mnist" or Path(cfg.proxy_data).is_dir(),
         f"proxy_data {cfg.proxy_data}: use fashion_mnist or an ImageNet-style folder that exists")
    need(cfg.proxy_epochs >= 1, f"proxy_epochs must be at least 1, got {cfg.proxy_epochs}")
    need(cfg.proxy_warmup_epochs >= 0, f"proxy_warmup_epochs must be at least 0, got {cfg.proxy_warmup_epochs}")
    need(cfg.proxy_recipe is None or Path(cfg.proxy_recipe).is_file(),
         f"proxy_recipe {cfg.proxy_recipe} does not exist; give a training recipe YAML (configs/shufflenetv2/)")
    need(cfg.study_name.strip() != "", "study_name must not be empty")
    need(0 < cfg.heartbeat_interval < cfg.grace_period,
         f"need 0 < heartbeat_interval < grace_period, got {cfg.heartbeat_interval} and {cfg.grace_period}")
    return cfg


def load_config(path: Optional[str], overrides: Mapping[str, Any] = ()) -> SearchConfig:
    """Defaults, then the YAML file, then ``overrides`` (the CLI's flags that were given)."""
    data: Dict[str, Any] = {}
    if path is not None:
        loaded = load_yaml_mapping(path, "search config")
        unknown = sorted(set(map(str, loaded)) - set(KEYS))
        if unknown:
            raise UserError(f"{path}: unknown config key(s) {', '.join(unknown)}; see `search.py search --help`")
        data.update(loaded)
    data.update(dict(overrides))
    cfg = SearchConfig(**{k: _coerce(k, v) for k, v in data.items()})
    return _validate(cfg)


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per config key; values given on the command line are parsed as YAML scalars."""
    defaults = SearchConfig()
    for key in KEYS:
        flag = "--" + key.replace("_", "-")
        alias = "--" + key
        names = [flag] if flag == alias else [flag, alias]
        parser.add_argument(*names, dest=key, metavar="V", default=argparse.SUPPRESS,
                            type=_yaml_scalar, help=f"(default: {getattr(defaults, key)!r})")


def _yaml_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def with_overrides(cfg: SearchConfig, **changes: Any) -> SearchConfig:
    return _validate(replace(cfg, **changes))
