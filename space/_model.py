"""Resolve what a user names (a reference, a YAML file, an Arch) and create a model from it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Dict, Optional, Union

from ._arch import Arch
from common.errors import UserError
from ._reference import REFERENCES, is_reference_name, reference

if TYPE_CHECKING:  # the network imports MindSpore: loaded only where a model is built
    from ._network import ShuffleNetV2

ArchLike = Union[str, Path, Arch]

# Top-level cell names of the network; checkpoint keys starting elsewhere (optimizer
# moments, learning_rate, global_step, loss scale) are training state, not weights.
_NETWORK_PREFIXES = ("first_conv.", "features.", "conv_last.", "classifier.")


def resolve_arch(name_or_arch: ArchLike) -> Arch:
    """An Arch from an Arch, a reference name (``x0_5`` or ``shufflenet_v2_x0_5``) or a YAML path."""
    if isinstance(name_or_arch, Arch):
        return name_or_arch
    if isinstance(name_or_arch, str) and is_reference_name(name_or_arch):
        return reference(name_or_arch)
    path = Path(name_or_arch)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise UserError(f"arch file {path} does not exist; give a reference name or an arch YAML file")
        return Arch.from_yaml(path)
    known = ", ".join(REFERENCES)
    raise UserError(f"{name_or_arch!r} is neither a reference model ({known}) nor an arch YAML file")


def checkpoint_params(path: Union[str, Path]) -> Dict[str, "object"]:
    """Read a MindSpore checkpoint's parameters, with a clear error when it is not one."""
    import mindspore as ms

    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        return ms.load_checkpoint(str(path))
    except (RuntimeError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read checkpoint {path}: {first}") from None


def load_weights(net: "ShuffleNetV2", path: Union[str, Path], strict: bool = True) -> None:
    """Load network weights from a checkpoint, refusing missing, unexpected or misshapen keys.

    Training state in the file (optimizer moments, step counters) is ignored. With
    ``strict=False`` the classifier may be absent or of another size (fine-tuning).
    """
    import mindspore as ms

    params = checkpoint_params(path)
    own = {p.name: p for p in net.get_parameters()}
    weights = {k: v for k, v in params.items() if k.startswith(_NETWORK_PREFIXES)}
    unexpected = sorted(set(weights) - set(own))
    missing = sorted(set(own) - set(weights))
    misshapen = sorted(k for k in set(own) & set(weights) if tuple(own[k].shape) != tuple(weights[k].shape))
    if not strict:
        missing = [k for k in missing if not k.startswith("classifier.")]
        dropped = [k for k in misshapen if k.startswith("classifier.")]
        misshapen = [k for k in misshapen if k not in dropped]
        for k in dropped:
            del weights[k]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if misshapen:
        k = misshapen[0]
        problems.append(f"{len(misshapen)} of another shape (e.g. {k}: "
                        f"{tuple(weights[k].shape)} in file, {tuple(own[k].shape)} in {net.arch.name})")
    if problems:
        raise UserError(f"checkpoint {path} does not fit arch {net.arch.name}: " + "; ".join(problems)
                        + "; check --model/--arch and --num_classes")
    ms.load_param_into_net(net, weights, strict_load=True)


def create_model(name_or_arch: ArchLike, num_classes: int = 1000, checkpoint: Optional[Union[str, Path]] = None,
                 in_channels: int = 3, strict: bool = True, fast_cpu: Union[bool, str] = False) -> "ShuffleNetV2":
    """Build a model from a reference name, an arch YAML path or an Arch; optionally load weights.

    ``fast_cpu`` as in `build` (default: the stock network)."""
    from ._network import build

    net = build(resolve_arch(name_or_arch), num_classes=num_classes, in_channels=in_channels, fast_cpu=fast_cpu)
    if checkpoint:
        load_weights(net, checkpoint, strict=strict)
    return net
