"""The search configuration: YAML keys, defaults, help, validation; every key is also a CLI flag.

Each key is described once, on its `SearchConfig` field (`space._settings.setting`): the
flags, their ``--help`` lines and the type checks of YAML and flag values derive from it.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from evaluator.latency import DEFAULT_TIMEOUT_S
from evaluator.proxy import DEFAULT_PROXY, TRAIN_DEFAULTS
from common import UserError
from space import DEFAULT_REFERENCE
from common.cli import config_path, load_yaml_mapping
from common.settings import add_flags, check_choices, coerce_all, keys, setting

MODES = ("constrained", "pareto")
SAMPLERS = ("tpe", "nsga2", "random", "gp")
PRUNERS = ("median", "sha", "none")
LATENCY_SOURCES = ("measure", "lut", "lut+verify", "predictor", "predictor+verify")
DTYPES = ("float32", "float16")
CLOCKS = ("wall", "cpu")


@dataclass(frozen=True)
class SearchConfig:
    """One search. Keys are YAML keys and ``--flags`` (``-`` or ``_`` both accepted on the CLI)."""

    # study
    study_name: str = setting("shufflenas", "name of the study in the storage; the same name resumes or joins it")
    storage: Optional[str] = setting(None, "SQLAlchemy URL (postgresql://user@host/db, mysql+pymysql://...) or a "
                                           "journal file (journal:PATH); none: RUN_DIR/study.db", metavar="URL")
    run_dir: str = setting("runs/shufflenas", "directory of the study database and the outputs", metavar="DIR")
    n_trials: int = setting(50, "trials in the study in total; re-running continues up to this count")
    timeout: Optional[float] = setting(None, "stop starting new trials after this long, per worker", unit="seconds")
    workers: int = setting(1, "local worker processes evaluating trials in parallel")
    seed: Optional[int] = setting(0, "sampler seed (mixed with the study's state on resume); none: random")
    sampler: str = setting("tpe", "how archs are proposed", choices=SAMPLERS)
    mode: str = setting("constrained", "constrained: best proxy within the latency budget; pareto: proxy vs latency",
                        choices=MODES)
    pruner: str = setting("median", "stop weak trials after a proxy epoch (train proxy, constrained mode)",
                          choices=PRUNERS)
    quiet: bool = setting(False, "print only the verdict, not a line per trial")
    heartbeat_interval: int = setting(10, "how often a running trial reports it is alive (database storages)",
                                      unit="seconds")
    grace_period: int = setting(30, "silence after which a running trial is failed and retried", unit="seconds")
    # space
    space: str = setting("configs/spaces/shufflenetv2.yaml", "search space YAML file", metavar="PATH")
    enqueue_references: bool = setting(True, "evaluate the reference archs inside the space first")
    # latency
    latency_source: str = setting("measure", "measure on this host's device, or predict from a latency table "
                                             "or predictor (+verify: then measure the chosen archs)",
                                  choices=LATENCY_SOURCES)
    latency_table: Optional[str] = setting(None, "table built with `search.py lut build` (for latency_source lut)",
                                           metavar="PATH")
    latency_predictor: Optional[str] = setting(None, "predictor built with `search.py predictor build` (for "
                                                     "latency_source predictor)", metavar="PATH")
    backend: str = setting("mindspore", "runtime latency is measured with: mindspore or onnxruntime")
    device: str = setting("CPU", "device latency is measured on: CPU, GPU or Ascend")
    device_id: int = setting(0, "number of the device to measure on")
    batch_size: int = setting(1, "images per timed run", unit="images")
    resolution: int = setting(224, "input side for latency, and for training the exported archs", unit="px")
    dtype: str = setting("float32", "data type of the timed network", choices=DTYPES)
    threads: Optional[int] = setting(1, "CPU threads of the timed runtime; none: the runtime's default")
    clock: str = setting("wall", "wall: elapsed time; cpu: process CPU time (1 thread, steadier on a busy host)",
                         choices=CLOCKS)
    latency_warmup: int = setting(10, "least warm-up runs before timing (more until times settle)", unit="runs")
    latency_repeats: int = setting(50, "timed runs per arch; the median is kept", unit="runs")
    latency_timeout: float = setting(DEFAULT_TIMEOUT_S, "time limit of one measurement's worker process", unit="seconds")
    latency_cache: Optional[str] = setting("default", "SQLite cache of measured latencies; default: "
                                                      "~/.cache/shufflenas/latency.sqlite; none: no cache",
                                           metavar="PATH")
    budget_ms: Optional[float] = setting(None, "absolute budget: latency <= this", unit="ms")
    budget_ratio: Optional[float] = setting(None, "relative budget: latency <= this x the reference's, measured "
                                                  "alongside", unit="x reference")
    reference: str = setting(DEFAULT_REFERENCE, "reference arch of budget_ratio and of the verdict: x0_5, x1_0, x1_5 or x2_0")
    prefilter_margin: float = setting(1.5, "skip without measuring a candidate estimated over this x the budget",
                                      unit="x budget")
    # proxy: the default is the calibrated one (evaluator.proxy.DEFAULT_PROXY and TRAIN_DEFAULTS)
    proxy: str = setting(DEFAULT_PROXY, "proxy of accuracy: train (short training: val top-1), tse (the same training: "
                                  "minus its mean training loss), naswot, synflow, grad_norm, snip, params or flops")
    proxy_data: str = setting("fashion_mnist", "proxy data: fashion_mnist or an ImageNet-style folder "
                                               "(train/<class>/*, val/<class>/*); export trains on it", metavar="DATA")
    proxy_resolution: int = setting(TRAIN_DEFAULTS["resolution"], "input side of the proxy's images", unit="px")
    proxy_batch_size: int = setting(TRAIN_DEFAULTS["batch_size"], "proxy batch (training batch, or the zero-cost proxies' one batch)",
                                    unit="images")
    proxy_seed: int = setting(0, "initialisation and data seed of the proxy")
    proxy_epochs: int = setting(TRAIN_DEFAULTS["epochs"], "train proxy: epochs of the shortened recipe", unit="epochs")
    proxy_subset: Optional[int] = setting(TRAIN_DEFAULTS["subset"], "train proxy: training images per epoch; none: all", unit="images")
    proxy_val_subset: Optional[int] = setting(TRAIN_DEFAULTS["val_subset"], "train proxy: val images scored; none: as proxy_subset",
                                              unit="images")
    proxy_warmup_epochs: int = setting(TRAIN_DEFAULTS["warmup_epochs"], "train proxy: learning-rate warm-up", unit="epochs")
    proxy_lr: Optional[float] = setting(None, "train proxy: peak learning rate; none: the recipe's, scaled to "
                                              "proxy_batch_size")
    proxy_recipe: Optional[str] = setting(None, "train proxy: the training recipe it shortens; none: x0_5's for "
                                                "the data", metavar="PATH")
    # final round: the proxy's best final_k and the references, trained longer on final_seeds
    final_k: int = setting(3, "finalists trained longer after the proxy phase (the verdict comes from them); "
                              "0: off, the verdict rests on the proxy alone")
    # 1 epoch of 16,000 distinct images: against the long truth its 2-seed mean ranked latency-matched
    # archs better than 2 epochs of 4,000 (tau within groups 0.71 vs 0.54) with seeds 1.6x closer
    # (BENCHMARKS.md, "Defaults (item 6)"); the demo keeps 2 x 4,000 for its 10-minute budget.
    final_epochs: int = setting(1, "final round: epochs of the recipe", unit="epochs")
    final_subset: Optional[int] = setting(16000, "final round: training images per epoch; none: the whole train "
                                                 "split", unit="images")
    final_val_subset: Optional[int] = setting(None, "final round: val images scored; none: proxy_val_subset",
                                              unit="images")
    final_resolution: Optional[int] = setting(None, "final round: input side; none: proxy_resolution", unit="px")
    final_batch_size: Optional[int] = setting(None, "final round: training batch; none: proxy_batch_size",
                                              unit="images")
    final_warmup_epochs: int = setting(0, "final round: learning-rate warm-up", unit="epochs")
    final_seeds: Tuple[int, ...] = setting((0, 1), "final round: seeds, each a training of every finalist "
                                                   "(at least 2; the verdict pairs them with the reference's)")
    halving_rungs: int = setting(0, "successive-halving rungs between proxy and final round (constrained mode); "
                                    "0: none")
    halving_eta: int = setting(3, "successive halving: keep the best 1/eta of each rung; a rung trains "
                                  "1/eta^r of the final images")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


KEYS = keys(SearchConfig)


def _validate(cfg: SearchConfig) -> SearchConfig:
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise UserError(message)

    check_choices(cfg)
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
            need(config_path(path).is_file(), f"{key} {path} does not exist; build it with `search.py {build}`")
    need(config_path(cfg.space).is_file(), f"space file {cfg.space} does not exist")
    need(str(cfg.proxy_data).lower().replace("-", "_") == "fashion_mnist" or Path(cfg.proxy_data).is_dir(),
         f"proxy_data {cfg.proxy_data}: use fashion_mnist or an ImageNet-style folder that exists")
    need(cfg.proxy_epochs >= 1, f"proxy_epochs must be at least 1, got {cfg.proxy_epochs}")
    need(cfg.proxy_warmup_epochs >= 0, f"proxy_warmup_epochs must be at least 0, got {cfg.proxy_warmup_epochs}")
    need(cfg.proxy_recipe is None or config_path(cfg.proxy_recipe).is_file(),
         f"proxy_recipe {cfg.proxy_recipe} does not exist; give a training recipe YAML (configs/shufflenetv2/)")
    from ._final import validate_settings

    validate_settings(cfg)
    need(cfg.study_name.strip() != "", "study_name must not be empty")
    need(0 < cfg.heartbeat_interval < cfg.grace_period,
         f"need 0 < heartbeat_interval < grace_period, got {cfg.heartbeat_interval} and {cfg.grace_period}")
    return cfg


def load_config(path: Optional[str], overrides: Mapping[str, Any] = ()) -> SearchConfig:
    """Defaults, then the YAML file, then ``overrides`` (the CLI's flags that were given, as text)."""
    data: Dict[str, Any] = {}
    if path is not None:
        data.update(coerce_all(SearchConfig, load_yaml_mapping(path, "search config"), where=str(path),
                               see="`search.py search --help`"))
    data.update(coerce_all(SearchConfig, dict(overrides), see="`search.py search --help`"))
    return _validate(SearchConfig(**data))


def stored_config(study: Any) -> SearchConfig:
    """The config a study was created with (its ``config`` attribute), read back with the same
    coercion; keys it predates take today's defaults, keys this version does not know are ignored.
    Not validated: its files may live on another host."""
    values = {}
    for key, value in study.user_attrs.get("config", {}).items():
        if key in KEYS:
            try:
                values.update(coerce_all(SearchConfig, {key: value}))
            except UserError:  # another version's type for this key: today's default is the best we know
                pass
    return SearchConfig(**values)


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per config key, with its help line from the field."""
    add_flags(parser, SearchConfig, "search config keys")
