"""What an architecture is: the Arch spec, references, the network builder, cost model, search space.

Importing `space` does not import MindSpore: the network names (`build`, `stock_network`,
`ShuffleNetV2`, `ShuffleV2Block`) load it on first use, so the CLI answers ``--help``, ``info``
and bad input at once.
"""

from typing import Any

from ._arch import Arch, ArchError, block_args
from ._cost import Cost, LayerCost, cost
from ._errors import UserError
from ._model import create_model, load_weights, resolve_arch
from ._fast_cpu import use_fast_cpu
from ._reference import REFERENCES, ReferenceModel, reference, reference_model, reference_name
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
    "DEFAULT_SPACE",
    "UserError",
    "block_args",
    "build",
    "cost",
    "create_model",
    "load_weights",
    "reference",
    "reference_model",
    "reference_name",
    "resolve_arch",
    "stock_network",
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
