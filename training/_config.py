"""The training recipe's keys: defaults, YAML + command line merge, unknown-key errors.

Key names are MindCV's (configs/shufflenetv2/*.yaml load as they are) plus a few of ours
(``arch``, ``device_id``, ``subset``, ``val_subset``, ``resume_opt``, ``max_steps``, ``export``,
``diverge_loss``, ``fast_cpu``). Every key is a command-line flag of the same name; the command
line wins over the YAML file, which wins over the defaults here.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union


from space import UserError
from space._cli import load_yaml_mapping, str2bool
from space._fast_cpu import normalize_mode

EXPORT_FORMATS = ("MINDIR", "ONNX")
AMP_LEVELS = ("O0", "O1", "O2", "O3", "auto")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Field names are the YAML keys and the CLI flags."""

    # system
    mode: int = 0
    distribute: bool = False
    device_target: str = "auto"
    device_id: Optional[int] = None
    num_parallel_workers: int = 8
    val_while_train: bool = True
    val_interval: int = 1
    log_interval: int = 100
    seed: int = 42
    fast_cpu: str = "auto"  # auto|on|off: the fast CPU path (space._fast_cpu); auto defers to $SHUFFLENAS_FAST_CPU
    # dataset (the DataConfig fields of training/data.py)
    dataset: str = "imagenet"
    data_dir: Optional[str] = None
    train_split: str = "train"
    val_split: str = "val"
    dataset_download: bool = False
    shuffle: bool = True
    subset: Optional[int] = None
    val_subset: Optional[int] = None
    batch_size: int = 64
    drop_remainder: bool = True
    # augmentation
    image_resize: int = 224
    scale: Tuple[float, float] = (0.08, 1.0)
    ratio: Tuple[float, float] = (0.75, 1.333)
    hflip: float = 0.5
    color_jitter: Optional[float] = 0.4
    interpolation: str = "bilinear"
    crop_pct: float = 0.875
    re_prob: float = 0.0
    # model
    model: str = "shufflenet_v2_x0_5"
    arch: Optional[str] = None
    num_classes: Optional[int] = None
    pretrained: bool = False
    ckpt_path: str = ""
    resume_opt: bool = False
    keep_checkpoint_max: int = 10
    ckpt_save_dir: str = "./ckpt"
    ckpt_save_interval: int = 1
    epoch_size: int = 90
    max_steps: Optional[int] = None
    dataset_sink_mode: bool = True
    amp_level: str = "O0"
    export: Optional[str] = None
    # loss
    loss: str = "CE"
    label_smoothing: float = 0.0
    diverge_loss: Optional[float] = None
    # lr scheduler
    scheduler: str = "cosine_decay"
    lr: float = 0.001
    min_lr: float = 0.0
    warmup_epochs: int = 0
    warmup_factor: float = 0.0
    decay_epochs: int = 90
    lr_epoch_stair: bool = False
    # optimizer
    opt: str = "momentum"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    weight_decay_filter: str = "auto"
    use_nesterov: bool = False
    loss_scale: float = 1.0
    loss_scale_type: str = "fixed"

    def __post_init__(self) -> None:
        _validate(self)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **coerce(changes))

    def to_dict(self) -> Dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}

    def data_config(self):
        """The training/data.py DataConfig these keys describe."""
        from .data import DataConfig

        names = {f.name for f in fields(DataConfig)}
        return DataConfig(**{f.name: getattr(self, f.name) for f in fields(self) if f.name in names})


KEYS: Tuple[str, ...] = tuple(f.name for f in fields(TrainConfig))
_HINTS = typing.get_type_hints(TrainConfig)


def _validate(c: TrainConfig) -> None:
    positive = ("batch_size", "log_interval", "val_interval", "ckpt_save_interval", "num_parallel_workers")
    for key in positive:
        if getattr(c, key) < 1:
            raise UserError(f"{key} must be at least 1, got {getattr(c, key)}")
    for key in ("epoch_size", "warmup_epochs", "decay_epochs", "keep_checkpoint_max"):
        if getattr(c, key) < 0:
            raise UserError(f"{key} must not be negative, got {getattr(c, key)}")
    if c.max_steps is not None and c.max_steps < 1:
        raise UserError(f"max_steps must be at least 1 (or None), got {c.max_steps}")
    if c.lr <= 0 or c.min_lr < 0 or c.min_lr > c.lr:
        raise UserError(f"need 0 <= min_lr <= lr and lr > 0, got lr {c.lr}, min_lr {c.min_lr}")
    if not 0.0 <= c.label_smoothing < 1.0:
        raise UserError(f"label_smoothing must be in [0, 1), got {c.label_smoothing}")
    if c.scheduler not in ("cosine_decay", "warmup_cosine_decay", "constant"):
        raise UserError(f"scheduler {c.scheduler!r} is not supported; use cosine_decay or constant")
    if c.opt.lower() != "momentum":
        raise UserError(f"opt {c.opt!r} is not supported; the ShuffleNetV2 recipe uses momentum")
    if c.loss.upper() != "CE":
        raise UserError(f"loss {c.loss!r} is not supported; the ShuffleNetV2 recipe uses CE")
    if c.weight_decay_filter not in ("auto", "disable"):
        raise UserError(f"weight_decay_filter must be 'auto' or 'disable', got {c.weight_decay_filter!r}")
    if c.loss_scale_type != "fixed" or c.loss_scale <= 0:
        raise UserError(f"only a fixed positive loss scale is supported, got {c.loss_scale_type} {c.loss_scale}")
    if c.amp_level not in AMP_LEVELS:
        raise UserError(f"amp_level must be one of {', '.join(AMP_LEVELS)}, got {c.amp_level!r}")
    if c.device_target != "auto":
        from space._runtime import normalize_device

        object.__setattr__(c, "device_target", normalize_device(c.device_target))
    object.__setattr__(c, "fast_cpu", normalize_mode(c.fast_cpu))
    if c.export is not None:
        object.__setattr__(c, "export", str(c.export).upper())
    if c.export is not None and c.export not in EXPORT_FORMATS:
        raise UserError(f"export must be one of {', '.join(EXPORT_FORMATS)}, got {c.export!r}")
    if c.pretrained:
        raise UserError("pretrained True would download weights; pass a local checkpoint with --ckpt_path instead")
    if c.dataset_download:
        raise UserError("dataset_download True is not supported; give a local --data_dir")
    if c.resume_opt and not c.ckpt_path:
        raise UserError("resume_opt True needs --ckpt_path (the checkpoint to resume from)")
    if c.num_classes is not None and c.num_classes < 1:
        raise UserError(f"num_classes must be positive, got {c.num_classes}")


def _coerce_one(key: str, value: Any) -> Any:
    hint = _HINTS[key]
    optional = type(None) in typing.get_args(hint)
    base = next((a for a in typing.get_args(hint) if a is not type(None)), hint) if optional else hint
    if value is None or (optional and isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
        if optional:
            return None
        raise UserError(f"{key} needs a value")
    try:
        if base is bool:
            return value if isinstance(value, bool) else str2bool(str(value))
        if typing.get_origin(base) is tuple:
            if isinstance(value, str):
                value = [v for v in value.strip("()[] ").split(",") if v.strip()]
            items = tuple(float(v) for v in value)
            if len(items) != 2:
                raise ValueError("expected two numbers")
            return items
        if base is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError("expected an integer")
            return int(value)
        if base is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
        raise UserError(f"bad value for {key}: {value!r} ({exc})") from None


def coerce(values: Mapping[str, Any], source: str = "config") -> Dict[str, Any]:
    """Type-converted values; unknown keys are a UserError naming them all."""
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise UserError(f"unknown {source} key(s): {', '.join(unknown)}; see train.py --help for the known keys")
    return {k: _coerce_one(k, v) for k, v in values.items()}


def read_yaml(path: Union[str, Path]) -> Dict[str, Any]:
    data = load_yaml_mapping(path, "config file")
    return coerce(data, source=f"key in {path}")


def make_config(config: Union[TrainConfig, Mapping[str, Any], None] = None, **overrides: Any) -> TrainConfig:
    """A TrainConfig from a TrainConfig or a dict (unknown keys refused), with overrides on top."""
    if isinstance(config, TrainConfig):
        return config.replace(**overrides) if overrides else config
    values = coerce(dict(config or {}))
    values.update(coerce(overrides))
    return TrainConfig(**values)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``-c/--config`` and one ``--<key>`` flag per recipe key (default: not given)."""
    parser.add_argument("-c", "--config", default=None, help="recipe YAML (keys as below; flags override it)")
    group = parser.add_argument_group("recipe keys (YAML keys of the same name)")
    defaults = TrainConfig.__dataclass_fields__
    for key in KEYS:
        default = defaults[key].default
        group.add_argument(f"--{key}", default=argparse.SUPPRESS, metavar=key.upper(),
                           help=f"default {list(default) if isinstance(default, tuple) else default!r}")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults < YAML file (``--config``) < command-line flags."""
    values: Dict[str, Any] = read_yaml(args.config) if getattr(args, "config", None) else {}
    values.update(coerce({k: getattr(args, k) for k in KEYS if hasattr(args, k)}, source="flag"))
    return TrainConfig(**values)


def parse_config(argv: Optional[Sequence[str]], prog: str, description: str) -> TrainConfig:
    from space._cli import ArgumentParser

    parser = ArgumentParser(prog=prog, description=description)
    add_config_arguments(parser)
    return config_from_args(parser.parse_args(argv))


__all__ = ["TrainConfig", "KEYS", "make_config", "read_yaml", "add_config_arguments", "config_from_args",
           "parse_config", "EXPORT_FORMATS"]
