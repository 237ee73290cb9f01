"""How candidates are chosen: the Optuna study, objectives, storage, outputs, export.

The names below load on first use (PEP 562), so the command line imports no Optuna or
MindSpore until a subcommand needs them.
"""

from importlib import import_module
from typing import Any

_WHERE = {
    "SearchConfig": "._config", "load_config": "._config",
    "run_search": "._driver",
    "export_configs": "._export",
    "TrialRecord": "._record",
    "chosen_trials": "._trials",
    "verdict": "._outputs", "write_outputs": "._outputs",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'search' has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
