"""Proxy accuracy: what a candidate is likely worth, for a fraction of full training.

    from evaluator.proxy import score
    result = score(arch, "naswot", "fashion_mnist", seed=0, resolution=32)
    result.value, result.seconds

Proxies (higher is better for all):
    naswot, synflow, grad_norm, snip   zero-cost, on one batch of real data at initialisation
    params, flops                      baselines from the analytic cost model (`space.cost`)

Data is ``"fashion_mnist"`` (the built-in real dataset), a path to an ImageNet-style folder,
or a `training.data.DataConfig`; the batch comes from the training data pipeline with the
evaluation transform, so every proxy sees the same images for a given seed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Tuple, Union

from space import Arch, UserError, build, cost

from ._zero_cost import NETWORK_PROXIES

ZERO_COST = tuple(NETWORK_PROXIES)
BASELINES = ("params", "flops")
PROXIES = ZERO_COST + BASELINES

DataLike = Union[str, Path, "DataConfig"]  # noqa: F821 (training.data.DataConfig)


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


def score(arch: Arch, proxy: str, data: DataLike = "fashion_mnist", *, seed: int = 0, resolution: int = 32,
          batch_size: int = 64) -> ProxyResult:
    """Score ``arch`` with a zero-cost ``proxy`` (or a cost-model baseline) on real data."""
    if proxy not in PROXIES:
        raise UserError(f"unknown proxy {proxy!r}; choose one of {', '.join(PROXIES)}")
    if resolution < 32:
        raise UserError(f"proxy resolution must be at least 32 px, got {resolution}")
    settings = {"data": str(data) if not hasattr(data, "dataset") else data.dataset, "seed": seed,
                "resolution": resolution, "batch_size": batch_size}
    start = time.perf_counter()
    if proxy in BASELINES:
        c = cost(arch, resolution)
        value = float(c.params if proxy == "params" else c.flops)
        return ProxyResult(proxy, value, time.perf_counter() - start, arch.name, settings)

    import mindspore as ms

    images, labels, num_classes = _batch(data_config(data, resolution=resolution, batch_size=batch_size,
                                                     seed=seed))
    previous_mode = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        ms.set_seed(seed)
        net = build(arch, num_classes=num_classes)
        value = NETWORK_PROXIES[proxy](net, images, labels)
    finally:
        ms.set_context(mode=previous_mode)
    return ProxyResult(proxy, value, time.perf_counter() - start, arch.name, settings)
