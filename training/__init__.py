"""The training recipe as a library: train.py, validate.py and the short-training proxy call it.

Public surface:

- `TrainConfig` (the recipe keys, MindCV names), `make_config(dict_or_config, **overrides)`,
  `read_recipe(path)`, `parse_config(argv)` (train.py's command line).
- `train(config, *, arch=None, callbacks=(), **overrides) -> TrainResult`: one run in this
  process; callbacks ``(epoch, metrics) -> bool`` after each evaluated epoch (True stops);
  ``max_steps`` / ``epoch_size`` bound the budget; raises `TrainingDiverged` on NaN/inf or a
  diverging loss. `TrainResult` holds top1/top5/loss, the per-epoch curve (`EpochMetrics`),
  img/s after compile, compile time, best top-1, epochs and steps done.
- `validate(config, *, arch=None) -> EvalMetrics`; `evaluate(network, dataset)`.
- `lr_schedule(...)` (MindCV cosine_decay with per-step warmup), `export_network(net, path,
  "MINDIR"|"ONNX")` (always the stock graph), `BEST` (the best checkpoint's file name).
- The data pipeline is `training.data` (`DataConfig`, `create_loader`).
"""

from ._checkpoint import BEST
from ._config import KEYS, TrainConfig, make_config, parse_config, read_recipe
from ._export import export_network
from ._loop import EpochMetrics, EvalMetrics, TrainingDiverged, TrainResult, evaluate, train, validate
from ._schedule import lr_schedule

__all__ = [
    "BEST", "EpochMetrics", "EvalMetrics", "KEYS", "TrainConfig", "TrainResult", "TrainingDiverged", "evaluate",
    "export_network", "lr_schedule", "make_config", "parse_config", "read_recipe", "train", "validate",
]
