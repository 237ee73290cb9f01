"""How candidates are chosen: the Optuna study, objectives, storage, outputs, export."""

from ._config import KEYS, SearchConfig, load_config
from ._driver import open_study, run_search, work
from ._export import export_configs
from ._objective import CandidateFailed, Objective
from ._outputs import chosen_trials, verdict, write_outputs
from ._storage import open_storage, redact

__all__ = [
    "KEYS",
    "CandidateFailed",
    "Objective",
    "SearchConfig",
    "chosen_trials",
    "export_configs",
    "load_config",
    "open_storage",
    "open_study",
    "redact",
    "run_search",
    "verdict",
    "work",
    "write_outputs",
]
