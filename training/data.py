"""The training data pipeline: ImageNet-style folders or built-in Fashion-MNIST, as batched
mindspore.dataset pipelines with MindCV's transforms, subsets for proxies and per-rank shards.

    cfg = DataConfig(dataset="fashion_mnist", image_resize=64, batch_size=128, subset=20000)
    train = create_loader(cfg, "train", training=True)
    for image, label in train.dataset.create_tuple_iterator(num_epochs=1): ...
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple, Union

import numpy as np

from common import UserError

from . import _fashion_mnist, _folder, _transforms
from ._sampling import ShardSampler, balanced_subset
from ._sources import DecodedImages, EncodedFiles

if TYPE_CHECKING:
    import mindspore.dataset

DATASETS = ("imagenet", "fashion_mnist")
SPLITS = ("train", "val")


@dataclass(frozen=True)
class DataConfig:
    """Data options; the names of MindCV's recipe keys where MindCV has one.

    Fashion-MNIST uses the same transforms as folders, minus decoding: train is
    random-resized-crop (cfg.scale / cfg.ratio, the ImageNet defaults unless set) from the
    28x28 image to image_resize, flip, color jitter; val resizes the whole image to
    image_resize (no center crop: the objects fill the 28x28 frame).
    """

    dataset: str = "imagenet"
    data_dir: Optional[str] = None
    image_resize: int = 224
    batch_size: int = 64
    drop_remainder: bool = True
    shuffle: bool = True
    num_parallel_workers: int = 8
    hflip: float = 0.5
    color_jitter: Union[float, Tuple[float, ...], None] = 0.4
    interpolation: str = "bilinear"
    crop_pct: float = 0.875
    re_prob: float = 0.0
    scale: Tuple[float, float] = (0.08, 1.0)
    ratio: Tuple[float, float] = (0.75, 1.333)
    subset: Optional[int] = None
    val_subset: Optional[int] = None  # images of the val split; None: the same as subset
    seed: int = 0
    train_split: str = "train"
    val_split: str = "val"
    verify_images: bool = True  # pre-scan folder images so a corrupt one is skipped, not fatal

    def __post_init__(self) -> None:
        fix = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        fix("dataset", str(self.dataset).lower().replace("-", "_"))
        if self.dataset not in DATASETS:
            raise UserError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        for name in ("image_resize", "batch_size", "num_parallel_workers"):
            _require(isinstance(getattr(self, name), int) and getattr(self, name) > 0,
                     f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("subset", "val_subset"):
            value = getattr(self, name)
            _require(value is None or (isinstance(value, int) and value > 0),
                     f"{name} must be a positive integer or None, got {value!r}")
        for name in ("hflip", "re_prob"):
            _require(0.0 <= float(getattr(self, name)) <= 1.0, f"{name} is a probability in [0, 1], "
                     f"got {getattr(self, name)!r}")
        _require(0.0 < float(self.crop_pct) <= 1.0, f"crop_pct must be in (0, 1], got {self.crop_pct!r}")
        for name in ("scale", "ratio"):
            pair = tuple(float(x) for x in getattr(self, name))
            _require(len(pair) == 2 and 0 < pair[0] <= pair[1], f"{name} must be (min, max) with "
                     f"0 < min <= max, got {getattr(self, name)!r}")
            fix(name, pair)
        if isinstance(self.color_jitter, (list, tuple)):
            fix("color_jitter", tuple(float(x) for x in self.color_jitter))
            _require(len(self.color_jitter) in (3, 4), "color_jitter is one number or 3-4 numbers "
                     f"(brightness, contrast, saturation[, hue]), got {self.color_jitter!r}")
        _require(self.color_jitter is None or all(x >= 0 for x in _transforms.color_factors(self.color_jitter)),
                 f"color_jitter must be >= 0, got {self.color_jitter!r}")
        _transforms.interpolation(self.interpolation)


@dataclass
class Loader:
    """A batched pipeline (columns "image" float32 NCHW normalized, "label" int32) and its sizes."""

    dataset: "mindspore.dataset.Dataset"
    num_classes: int
    num_samples: int
    num_batches: int
    class_names: List[str]
    skipped: Tuple[str, ...] = ()     # image files left out because they cannot be decoded
    sampler: Optional[ShardSampler] = field(default=None, repr=False)

    seed: int = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass use ``epoch``'s shuffle (for a resumed run); no effect unshuffled."""
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)

    def epoch_iterator(self, epoch: int):
        """A one-pass tuple iterator over epoch ``epoch`` (0-based) whose order and augmentation
        depend only on (seed, epoch): epoch 5 of a resumed run sees exactly what epoch 5 of an
        uninterrupted run saw."""
        import mindspore.dataset as ds

        epoch_seed = int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0])
        ds.config.set_seed(epoch_seed)  # the random vision ops take their seeds when the iterator starts
        np.random.seed(epoch_seed)      # random erasing is a Python op drawing from NumPy's global RNG
        self.set_epoch(epoch)
        return self.dataset.create_tuple_iterator(num_epochs=1)


def num_classes_of(cfg: DataConfig) -> int:
    """How many classes ``cfg`` holds, from the folder names alone (no pipeline, no image reads)."""
    if cfg.dataset == "fashion_mnist":
        return len(_fashion_mnist.CLASSES)
    return len(_class_names(cfg))


def create_loader(cfg: DataConfig, split: str, *, training: bool,
                  num_shards: int = 1, shard_id: int = 0) -> Loader:
    """The batched pipeline of ``split`` ("train" or "val") for rank ``shard_id`` of ``num_shards``.

    training=True: train augmentation, shuffled per epoch (cfg.shuffle), last partial batch
    dropped when cfg.drop_remainder, equal-length disjoint shards. training=False: the eval
    transform, file order, every image of the shard once, no drop; shards are disjoint and
    together cover every image once.
    """
    import mindspore.dataset as ds

    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; use 'train' or 'val'")
    if not (isinstance(num_shards, int) and num_shards >= 1 and isinstance(shard_id, int)
            and 0 <= shard_id < num_shards):
        raise UserError(f"shard_id must be in [0, num_shards), got shard_id={shard_id}, num_shards={num_shards}")
    workers = max(1, min(cfg.num_parallel_workers, os.cpu_count() or 1))
    ds.config.set_seed(cfg.seed)

    if cfg.dataset == "fashion_mnist":
        source, class_names, skipped = _fashion_source(cfg, split)
        ops = (_transforms.train_ops(cfg, decode=False) if training
               else _transforms.eval_ops(cfg, decode=False, center_crop=False))
    else:
        source, class_names, skipped = _folder_source(cfg, split, workers)
        ops = (_transforms.train_ops(cfg, decode=True) if training
               else _transforms.eval_ops(cfg, decode=True))

    sampler = ShardSampler(len(source), num_shards, shard_id, shuffle=training and cfg.shuffle,
                           equal=training, seed=cfg.seed)
    num_samples = len(sampler)
    drop = training and cfg.drop_remainder
    num_batches = num_samples // cfg.batch_size if drop else -(-num_samples // cfg.batch_size)
    if num_samples == 0 or num_batches == 0:
        raise UserError(f"{split} split ({cfg.dataset}, {len(source)} images) gives shard {shard_id} of "
                        f"{num_shards} {num_samples} images, less than one batch of {cfg.batch_size}; "
                        "lower batch_size or num_shards, raise subset, or set drop_remainder False")

    # The source is Python (GIL-bound): measured on 2 cores, one reader thread feeds in-memory
    # images 2-3x faster than two; files get half the workers (reads wait on the disk).
    readers = 1 if cfg.dataset == "fashion_mnist" else max(1, workers // 2)
    pipeline = ds.GeneratorDataset(source, column_names=["image", "label"], sampler=sampler,
                                   num_parallel_workers=readers, python_multiprocessing=False)
    pipeline = pipeline.map(operations=ops, input_columns="image", num_parallel_workers=workers)
    erasing = _transforms.erasing_ops(cfg) if training else []
    if erasing:
        pipeline = pipeline.map(operations=erasing, input_columns="image", num_parallel_workers=1)
    pipeline = pipeline.batch(cfg.batch_size, drop_remainder=drop)
    return Loader(dataset=pipeline, num_classes=len(class_names), num_samples=num_samples,
                  num_batches=num_batches, class_names=list(class_names), skipped=skipped,
                  sampler=sampler, seed=cfg.seed)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def _class_names(cfg: DataConfig) -> Tuple[str, ...]:
    """The label map: train's class folders; val's own when train/ is absent (validation only)."""
    from pathlib import Path

    root = Path(cfg.data_dir).expanduser() if cfg.data_dir else None
    if root is not None and root.is_dir() and not (root / cfg.train_split).is_dir() \
            and (root / cfg.val_split).is_dir():
        warnings.warn(f"{root / cfg.train_split} is missing; taking the class list from "
                      f"{root / cfg.val_split} (sorted folder names)", UserWarning, stacklevel=3)
        return _folder.class_names_in(root / cfg.val_split)
    return _folder.class_names_in(_folder.split_dir(cfg.data_dir, cfg.train_split))


def _subset_of(cfg: DataConfig, split: str) -> Optional[int]:
    return cfg.val_subset if split == "val" and cfg.val_subset is not None else cfg.subset


def _folder_source(cfg: DataConfig, split: str, workers: int):
    folder = _folder.split_dir(cfg.data_dir, cfg.train_split if split == "train" else cfg.val_split)
    class_names = _class_names(cfg)
    index = _folder.scan_split(folder, class_names, verify=cfg.verify_images, workers=2 * workers)
    chosen = balanced_subset(index.labels, _subset_of(cfg, split), cfg.seed)
    paths: Sequence[str] = [index.paths[i] for i in chosen]
    return EncodedFiles(paths, index.labels[chosen]), class_names, index.skipped


@functools.lru_cache(maxsize=4)
def _fashion_arrays(split: str, root: Optional[str]) -> Tuple[np.ndarray, np.ndarray]:
    # A proxy builds a loader per candidate: read (and gunzip) the IDX files once per process.
    images, labels = _fashion_mnist.load_fashion_mnist(split, root)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _fashion_source(cfg: DataConfig, split: str):
    images, labels = _fashion_arrays(split, cfg.data_dir)
    chosen = balanced_subset(labels, _subset_of(cfg, split), cfg.seed)
    rgb = np.repeat(images[chosen][..., None], 3, axis=-1)  # grayscale -> 3 equal channels, HWC
    return DecodedImages(rgb, labels[chosen]), _fashion_mnist.CLASSES, ()


__all__ = ["DataConfig", "Loader", "create_loader", "num_classes_of", "DATASETS"]
