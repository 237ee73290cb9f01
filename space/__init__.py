"""What an architecture is: the Arch spec, references, the network builder, cost model, search space.

Importing `space` does not import MindSpore: the network names (`build`, `stock_network`,
`ShuffleNetV2`, `ShuffleV2Block`) load it on first use, so the CLI answers ``--help``, ``info``
and bad input at once.
"""

from typing import Any

from ._arch import Arch, ArchError, block_args
from ._cost import Cost, LayerCost, cost, head_layers, stem_layers, unit_layers
from ._model import checkpoint_params, create_model, load_weights, resolve_arch
from ._fast_cpu import fast_cpu_mode, use_fast_cpu
from ._reference import DEFAULT_REFERENCE, REFERENCES, ReferenceModel, reference, reference_model, reference_name
from ._search_space import DEFAULT_SPACE, SearchSpace, SpaceError

__all__ = [
    "Arch",
    "ArchError",
    "Cost",
    "LayerCost",
    "REFERENCES",
    "ReferenceModel",
    "ShuffleNetV2",
    "SearchSpace",
    "ShuffleV2Block",
    "SpaceError",
    "DEFAULT_REFERENCE",
    "DEFAULT_SPACE",
    "block_args",
    "build",
    "checkpoint_params",
    "cost",
    "create_model",
    "fast_cpu_mode",
    "head_layers",
    "load_weights",
    "reference",
    "reference_model",
    "reference_name",
    "resolve_arch",
    "stem_layers",
    "stock_network",
    "unit_layers",
    "use_fast_cpu",
]

_NETWORK = ("ShuffleNetV2", "ShuffleV2Block", "build", "stock_network")


def __getattr__(name: str) -> Any:
    if name in _NETWORK:
        from . import _network

        return getattr(_network, name)
    raise AttributeError(f"module 'space' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
