"""Proxy accuracy: what a candidate is likely worth, for a fraction of full training.

    from evaluator.proxy import score
    result = score(arch, "naswot", "fashion_mnist", seed=0, resolution=64)
    result.value, result.seconds

Proxies (higher is better for all):
    naswot, synflow, grad_norm, snip   zero-cost, on one batch of real data at initialisation
    params, flops                      baselines from the analytic cost model (`space.cost`)
    train                              short training with the recipe (`training.train`): val top-1
    tse                                the same short training: minus the mean training loss over all
                                       its steps (the training-speed estimate, TSE, of Ru et al. 2021);
                                       the default (DEFAULT_PROXY, TRAIN_DEFAULTS), by calibration

Every training proxy records all signals of its run in ``settings``: val top-1 and top-5, the
val curve, ``tse`` (summed step losses), ``tse_per_step`` and ``final_train_loss`` (mean loss
of the last tenth of the steps).

Data is ``"fashion_mnist"`` (the built-in real dataset), a path to an ImageNet-style folder,
or a `training.data.DataConfig`; the batch comes from the training data pipeline with the
evaluation transform, so every proxy sees the same images for a given seed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple, Union

from common import UserError
from space import Arch, cost

from ._zero_cost import NETWORK_PROXIES

# The default proxy and its budget, chosen by the calibration against a long-training truth
# (bench/proxy_calibration.py; BENCHMARKS.md "Defaults (item 6)"): one epoch of 1,600 images at
# 64 px; its TSE ranked latency-matched archs better than its val top-1 on both seeds measured,
# at the same cost, and the demo's TSE winner held after 75x the images. Every zero-cost proxy
# ranked them backwards on Fashion-MNIST.
DEFAULT_PROXY = "tse"
TRAIN_DEFAULTS: Dict[str, Any] = {"epochs": 1, "subset": 1600, "val_subset": 2000, "batch_size": 32,
                                  "resolution": 64, "warmup_epochs": 0}
ZERO_COST = tuple(NETWORK_PROXIES)
BASELINES = ("params", "flops")
TRAINING_PROXIES = ("train", "tse")  # one short training; val top-1 or minus the mean training loss
PROXIES = ZERO_COST + BASELINES + TRAINING_PROXIES
_RECIPES = Path(__file__).resolve().parent.parent / "configs" / "shufflenetv2"
# The recipe the train proxy shortens unless told: x0_5's, in the form made for the data.
PROXY_RECIPES = {"imagenet": _RECIPES / "shufflenet_v2_0.5_ascend.yaml",
                 "fashion_mnist": _RECIPES / "shufflenet_v2_0.5_fashion_mnist_cpu.yaml"}
RECIPE_DEVICES_IF_DISTRIBUTED = 8  # MindCV's distributed recipes: lr set for 8 devices x batch_size

DataLike = Union[str, Path, Any]  # a name, a folder, or a training.data.DataConfig


@dataclass(frozen=True)
class ProxyResult:
    proxy: str
    value: float
    seconds: float
    arch: str
    settings: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"proxy": self.proxy, "value": self.value, "seconds": self.seconds, "arch": self.arch,
                "settings": dict(self.settings)}


def data_config(data: DataLike, *, resolution: int, batch_size: int, seed: int):
    """The `DataConfig` for a proxy batch: ``"fashion_mnist"``, an ImageNet-style folder or a DataConfig."""
    from training.data import DataConfig

    if isinstance(data, DataConfig):
        base = data
    elif str(data).lower().replace("-", "_") == "fashion_mnist":
        base = DataConfig(dataset="fashion_mnist")
    else:
        path = Path(data)
        if not path.is_dir():
            raise UserError(f"proxy data {data!r} is neither 'fashion_mnist' nor an existing folder")
        base = DataConfig(dataset="imagenet", data_dir=str(path))
    return replace(base, image_resize=resolution, batch_size=batch_size, seed=seed, subset=batch_size,
                   shuffle=False, drop_remainder=False, num_parallel_workers=1)


@lru_cache(maxsize=4)
def _batch(cfg) -> Tuple[Any, Any, int]:
    """One evaluation-transform batch (images, labels, num_classes), cached per DataConfig."""
    from training.data import create_loader

    loader = create_loader(cfg, "train", training=False)
    images, labels = next(loader.dataset.create_tuple_iterator(num_epochs=1))
    return images, labels, loader.num_classes


def score(arch: Arch, proxy: str, data: DataLike = "fashion_mnist", *, seed: int = 0, resolution: int = 64,
          batch_size: int = 64) -> ProxyResult:
    """Score ``arch`` with a zero-cost ``proxy`` (or a cost-model baseline) on real data.

    ``proxy="train"`` runs `train_score` with this resolution and batch size and its budget defaults."""
    if proxy not in PROXIES:
        raise UserError(f"unknown proxy {proxy!r}; choose one of {', '.join(PROXIES)}")
    if resolution < 32:
        raise UserError(f"proxy resolution must be at least 32 px, got {resolution}")
    settings = {"data": str(data) if not hasattr(data, "dataset") else data.dataset, "seed": seed,
                "resolution": resolution, "batch_size": batch_size}
    if proxy in TRAINING_PROXIES:
        return train_score(arch, data, resolution=resolution, batch_size=batch_size, seed=seed, signal=proxy)
    start = time.perf_counter()
    if proxy in BASELINES:
        c = cost(arch, resolution)
        value = float(c.params if proxy == "params" else c.flops)
        return ProxyResult(proxy, value, time.perf_counter() - start, arch.name, settings)

    import mindspore as ms

    from space import build  # the network (MindSpore) loads here, not when the CLI imports this module

    images, labels, num_classes = _batch(data_config(data, resolution=resolution, batch_size=batch_size,
                                                     seed=seed))
    previous_mode = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        ms.set_seed(seed)
        net = build(arch, num_classes=num_classes, fast_cpu="auto")
        value = NETWORK_PROXIES[proxy](net, images, labels)
    finally:
        ms.set_context(mode=previous_mode)
    return ProxyResult(proxy, value, time.perf_counter() - start, arch.name, settings)


def recipe_global_batch(recipe: Dict[str, Any]) -> int:
    """The global batch a recipe's lr was set for: batch_size, times 8 devices when distributed."""
    devices = RECIPE_DEVICES_IF_DISTRIBUTED if recipe.get("distribute", False) else 1
    return int(recipe.get("batch_size", 64)) * devices


def train_score(arch: Arch, data: DataLike = "fashion_mnist", *, epochs: int = TRAIN_DEFAULTS["epochs"],
                resolution: int = TRAIN_DEFAULTS["resolution"], batch_size: int = TRAIN_DEFAULTS["batch_size"],
                subset: Optional[int] = TRAIN_DEFAULTS["subset"],
                val_subset: Optional[int] = TRAIN_DEFAULTS["val_subset"], seed: int = 0, lr: Optional[float] = None,
                warmup_epochs: int = TRAIN_DEFAULTS["warmup_epochs"], recipe: Union[str, Path, None] = None,
                on_epoch: Optional[Callable[[int, float], bool]] = None, signal: str = "train",
                ckpt_dir: Union[str, Path, None] = None) -> ProxyResult:
    """Short training with the recipe (one recipe: `training.train`), shortened; value = last val top-1.

    The recipe's schedule is kept in shape: linear warm-up (``warmup_epochs``, per step) then
    cosine decay to 0 over the remaining epochs; ``lr`` defaults to the recipe's, scaled
    linearly from its global batch (`recipe_global_batch`) to ``batch_size``. ``subset``
    training images and ``val_subset`` val images (None: as many as ``subset``), class-balanced
    and seeded; a fixed, larger val set makes top-1 less noisy at little cost. ``signal`` picks the value:
    ``"train"`` the last val top-1, ``"tse"`` minus the mean training loss over all steps;
    ``on_epoch(epoch, value)``, with the signal's value so far, returning True stops after that
    epoch (an Optuna pruner);
    `training.TrainingDiverged` is raised on a NaN or diverging loss.
    ``ckpt_dir``: keep epoch checkpoints there and resume from the newest one, so a long
    training that was killed continues where it stopped (default: a temporary folder, no resume).
    ``recipe`` defaults to x0_5's recipe for the data (`PROXY_RECIPES`): its lr, optimizer, loss
    and augmentation; the ImageNet one's crops down to 8 % of the image, which on Fashion-MNIST's
    28 px objects leaves a short run near chance.
    """
    import io
    import tempfile

    from common.cli import load_yaml_mapping
    from training import make_config, train

    if signal not in TRAINING_PROXIES:
        raise UserError(f"unknown training-proxy signal {signal!r}; choose one of {', '.join(TRAINING_PROXIES)}")
    if epochs < 1:
        raise UserError(f"proxy epochs must be at least 1, got {epochs}")
    if warmup_epochs < 0:
        raise UserError(f"proxy warmup_epochs must be at least 0, got {warmup_epochs}")
    data_cfg = data_config(data, resolution=resolution, batch_size=batch_size, seed=seed)
    recipe = PROXY_RECIPES[data_cfg.dataset] if recipe is None else recipe
    base = load_yaml_mapping(recipe, "proxy recipe")
    warmup = min(warmup_epochs, epochs - 1)
    scaled_lr = lr if lr is not None else float(base["lr"]) * batch_size / recipe_global_batch(base)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shufflenas-proxy-") as tmp:
        config = make_config(
            base, distribute=False, dataset=data_cfg.dataset, data_dir=data_cfg.data_dir, image_resize=resolution,
            batch_size=batch_size, subset=subset, val_subset=val_subset, seed=seed, epoch_size=epochs,
            warmup_epochs=warmup, decay_epochs=epochs - warmup, lr=scaled_lr, num_classes=None,
            num_parallel_workers=2, ckpt_save_dir=str(ckpt_dir or tmp), keep_checkpoint_max=1,
            auto_resume=ckpt_dir is not None, ckpt_path="", resume_opt=False, dataset_sink_mode=False,
            log_interval=10**9, val_while_train=True, val_interval=1)
        epoch_losses = []

        def report(epoch: int, metrics: Dict[str, float]) -> bool:
            # The pruner sees the signal the trial is valued by: val top-1, or TSE so far (the
            # epochs have equal steps, so the mean of their mean losses is the mean step loss).
            epoch_losses.append(metrics["train_loss"])
            value = -sum(epoch_losses) / len(epoch_losses) if signal == "tse" else metrics["top1"]
            return bool(on_epoch(epoch, value))

        callbacks = [] if on_epoch is None else [report]
        result = train(config, arch=arch, callbacks=callbacks, stream=io.StringIO())
    settings = {"data": data_cfg.dataset if data_cfg.data_dir is None else data_cfg.data_dir, "seed": seed,
                "resolution": resolution, "batch_size": batch_size, "epochs": epochs, "subset": subset,
                "val_subset": val_subset, "lr": scaled_lr, "warmup_epochs": warmup, "recipe": str(recipe),
                "top5": result.top5, "loss": result.loss, "img_per_s": result.img_per_s,
                "compile_s": result.compile_s, "stopped_by_callback": result.stopped_by_callback,
                "top1": result.top1, "tse": result.loss_sum, "steps": result.loss_steps,
                "tse_per_step": result.loss_sum / result.loss_steps if result.loss_steps else None,
                "final_train_loss": result.final_train_loss,
                "fast_cpu": bool(getattr(result.network, "fast_cpu", False)),
                "curve": [{"epoch": r.epoch, "top1": r.top1, "top5": r.top5, "val_loss": r.val_loss,
                           "train_loss": r.train_loss} for r in result.curve]}
    if signal == "tse":
        if settings["tse_per_step"] is None:
            raise UserError("the tse proxy needs at least one training step; raise subset or epochs")
        value = -float(settings["tse_per_step"])
    else:
        value = float(result.top1)
    return ProxyResult(signal, value, time.perf_counter() - start, arch.name, settings)
