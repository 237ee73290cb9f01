"""The training recipe's keys: defaults, help, YAML + command line merge, unknown-key errors.

Key names are MindCV's (configs/shufflenetv2/*.yaml load as they are) plus a few of ours
(``arch``, ``device_id``, ``subset``, ``val_subset``, ``resume_opt``, ``auto_resume``, ``max_steps``,
``export``, ``diverge_loss``, ``fast_cpu``). Each key is described once, on its `TrainConfig` field
(`space._settings.setting`); every key is a command-line flag of the same name, the command
line wins over the YAML file, which wins over the defaults here.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from common import UserError
from common.cli import load_yaml_mapping
from common.settings import add_flags, check_choices, coerce_all, given, keys, setting
from space import fast_cpu_mode

EXPORT_FORMATS = ("MINDIR", "ONNX")
AMP_LEVELS = ("O0", "O1", "O2", "O3", "auto")
SCHEDULERS = ("cosine_decay", "warmup_cosine_decay", "constant")
_SEE = "train.py --help"


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Field names are the YAML keys and the CLI flags."""

    # system
    mode: int = setting(0, "MindSpore execution mode: 0 graph, 1 PyNative")
    distribute: bool = setting(False, "data-parallel over the devices msrun started")
    device_target: str = setting("auto", "CPU, GPU, Ascend, or auto (this MindSpore build's default)")
    device_id: Optional[int] = setting(None, "device number; none: 0, or the rank's own under msrun")
    num_parallel_workers: int = setting(8, "data pipeline worker threads")
    val_while_train: bool = setting(True, "evaluate on the val split during training")
    val_interval: int = setting(1, "evaluate every this many epochs", unit="epochs")
    log_interval: int = setting(100, "log a training line every this many steps", unit="steps")
    seed: int = setting(42, "seed of initialisation, data order and augmentation")
    fast_cpu: str = setting("auto", "fast CPU path (custom depthwise kernel, rewritten stem): auto uses it on CPU "
                                    "when it builds and checks, on demands it, off never; auto follows "
                                    "$SHUFFLENAS_FAST_CPU when set", convert=fast_cpu_mode)
    # dataset (the DataConfig fields of training/data.py)
    dataset: str = setting("imagenet", "imagenet (an ImageNet-style folder in data_dir) or fashion_mnist (built in)")
    data_dir: Optional[str] = setting(None, "folder holding train/<class>/* and val/<class>/*", metavar="DIR")
    train_split: str = setting("train", "subfolder of data_dir with the training images")
    val_split: str = setting("val", "subfolder of data_dir with the validation images")
    dataset_download: bool = setting(False, "download the dataset (not supported: give a local data_dir)")
    shuffle: bool = setting(True, "shuffle the training images every epoch")
    subset: Optional[int] = setting(None, "use only this many images of each split (class-balanced); none: all",
                                    unit="images")
    val_subset: Optional[int] = setting(None, "val images to use; none: as subset", unit="images")
    batch_size: int = setting(64, "images per step on each device", unit="images")
    drop_remainder: bool = setting(True, "drop the last incomplete training batch of an epoch")
    # augmentation
    image_resize: int = setting(224, "input side of the network", unit="px")
    scale: Tuple[float, float] = setting((0.08, 1.0), "random-resized-crop area range, as fractions of the image")
    ratio: Tuple[float, float] = setting((0.75, 1.333), "random-resized-crop aspect-ratio range")
    hflip: float = setting(0.5, "probability of a horizontal flip")
    color_jitter: Optional[float] = setting(0.4, "brightness, contrast and saturation jitter; none: off")
    interpolation: str = setting("bilinear", "resize interpolation: bilinear, bicubic, ...")
    crop_pct: float = setting(0.875, "val: centre crop as a fraction of the resized side")
    re_prob: float = setting(0.0, "probability of random erasing")
    # model
    model: str = setting("shufflenet_v2_x0_5", "reference model: shufflenet_v2_x0_5, _x1_0, _x1_5, _x2_0")
    arch: Optional[str] = setting(None, "arch YAML file of a searched arch (wins over model)", metavar="PATH")
    num_classes: Optional[int] = setting(None, "classifier outputs; none: the classes of the data")
    pretrained: bool = setting(False, "download pretrained weights (not supported: give ckpt_path)")
    ckpt_path: str = setting("", "checkpoint to start from (with resume_opt: to resume)", metavar="PATH")
    resume_opt: bool = setting(False, "also restore optimizer state, epoch and step from ckpt_path")
    auto_resume: bool = setting(False, "continue from the newest whole checkpoint in ckpt_save_dir, if any "
                                       "(run the same command again after a kill)")
    keep_checkpoint_max: int = setting(10, "epoch checkpoints kept (the newest)")
    ckpt_save_dir: str = setting("./ckpt", "where checkpoints, logs and exports go", metavar="DIR")
    ckpt_save_interval: int = setting(1, "save a checkpoint every this many epochs", unit="epochs")
    epoch_size: int = setting(90, "epochs to train (0 with export: only export ckpt_path)", unit="epochs")
    max_steps: Optional[int] = setting(None, "stop after this many steps in total; none: no limit", unit="steps")
    dataset_sink_mode: bool = setting(True, "MindCV's sink mode (steps are fed from Python here either way)")
    amp_level: str = setting("O0", "mixed precision: O0 float32, O1/O2/O3 more float16, auto", choices=AMP_LEVELS)
    export: Optional[str] = setting(None, "after training, export the network as MINDIR or ONNX")
    # loss
    loss: str = setting("CE", "loss: CE (cross-entropy, the only one supported)")
    label_smoothing: float = setting(0.0, "label smoothing of the cross-entropy")
    diverge_loss: Optional[float] = setting(None, "stop when the loss exceeds this; none: 10 x ln(num_classes)")
    # lr scheduler
    scheduler: str = setting("cosine_decay", "learning-rate schedule", choices=SCHEDULERS)
    lr: float = setting(0.001, "peak learning rate")
    min_lr: float = setting(0.0, "learning rate at the end of the cosine decay")
    warmup_epochs: int = setting(0, "linear warm-up before the decay", unit="epochs")
    warmup_factor: float = setting(0.0, "warm-up starts at this fraction of lr")
    decay_epochs: int = setting(90, "length of the cosine decay", unit="epochs")
    lr_epoch_stair: bool = setting(False, "change the learning rate once per epoch, not every step")
    # optimizer
    opt: str = setting("momentum", "optimizer: momentum (SGD with momentum, the only one supported)")
    momentum: float = setting(0.9, "SGD momentum")
    weight_decay: float = setting(1e-4, "L2 weight decay")
    weight_decay_filter: str = setting("auto", "auto: no decay on BatchNorm and biases; disable: decay all",
                                       choices=("auto", "disable"))
    use_nesterov: bool = setting(False, "Nesterov momentum")
    loss_scale: float = setting(1.0, "fixed loss scale (float16 training)")
    loss_scale_type: str = setting("fixed", "loss scaling: fixed (the only one supported)", choices=("fixed",))

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


KEYS: Tuple[str, ...] = keys(TrainConfig)


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
    if c.opt.lower() != "momentum":
        raise UserError(f"opt {c.opt!r} is not supported; the ShuffleNetV2 recipe uses momentum")
    if c.loss.upper() != "CE":
        raise UserError(f"loss {c.loss!r} is not supported; the ShuffleNetV2 recipe uses CE")
    check_choices(c)
    if c.loss_scale <= 0:
        raise UserError(f"loss_scale must be positive, got {c.loss_scale}")
    if c.device_target != "auto":
        from common.runtime import normalize_device

        object.__setattr__(c, "device_target", normalize_device(c.device_target))
    object.__setattr__(c, "fast_cpu", fast_cpu_mode(c.fast_cpu))
    if c.export is not None:
        object.__setattr__(c, "export", str(c.export).upper())
    if c.export is not None and c.export not in EXPORT_FORMATS:
        raise UserError(f"export must be one of {', '.join(EXPORT_FORMATS)}, got {c.export!r}")
    if c.pretrained:
        raise UserError("pretrained True would download weights; pass a local checkpoint with --ckpt_path instead")
    if c.dataset_download:
        raise UserError("dataset_download True is not supported; give a local --data_dir")
    if c.resume_opt and not c.ckpt_path and not c.auto_resume:
        raise UserError("resume_opt True needs --ckpt_path (the checkpoint to resume from), "
                        "or --auto_resume True to take the newest one in ckpt_save_dir")
    if c.num_classes is not None and c.num_classes < 1:
        raise UserError(f"num_classes must be positive, got {c.num_classes}")


def coerce(values: Mapping[str, Any], where: str = "") -> Dict[str, Any]:
    """Type-converted values; unknown keys are a UserError naming them all."""
    return coerce_all(TrainConfig, values, where=where, see=_SEE)


def read_recipe(path: Union[str, Path]) -> Dict[str, Any]:
    return coerce(load_yaml_mapping(path, "config file"), where=str(path))


def make_config(config: Union[TrainConfig, Mapping[str, Any], None] = None, **overrides: Any) -> TrainConfig:
    """A TrainConfig from a TrainConfig or a dict (unknown keys refused), with overrides on top."""
    if isinstance(config, TrainConfig):
        return config.replace(**overrides) if overrides else config
    values = coerce(dict(config or {}))
    values.update(coerce(overrides))
    return TrainConfig(**values)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``-c/--config`` and one flag per recipe key, with its help line from the field (default: not given)."""
    parser.add_argument("-c", "--config", default=None, help="recipe YAML (keys as below; flags override it)")
    add_flags(parser, TrainConfig, "recipe keys")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults < YAML file (``--config``) < command-line flags."""
    values: Dict[str, Any] = read_recipe(args.config) if getattr(args, "config", None) else {}
    values.update(coerce(given(args, TrainConfig), where="flags"))
    return TrainConfig(**values)


def parse_config(argv: Optional[Sequence[str]], prog: str, description: str) -> TrainConfig:
    from common.cli import ArgumentParser

    parser = ArgumentParser(prog=prog, description=description)
    add_config_arguments(parser)
    return config_from_args(parser.parse_args(argv))


__all__ = ["TrainConfig", "KEYS", "make_config", "read_recipe", "add_config_arguments", "config_from_args",
           "parse_config", "EXPORT_FORMATS"]
