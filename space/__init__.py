"""What an architecture is: the Arch spec, references, the network builder, cost model, search space."""

from ._arch import Arch, ArchError
from ._cost import Cost, LayerCost, cost
from ._errors import UserError
from ._model import create_model, load_weights, resolve_arch
from ._fast_cpu import use_fast_cpu
from ._network import ShuffleNetV2, ShuffleV2Block, block_args, build, stock_network
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
