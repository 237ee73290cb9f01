"""Fashion-MNIST from its IDX files (Debian package `dataset-fashion-mnist`), as NumPy arrays."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Tuple, Union

import numpy as np

from common import UserError

DEFAULT_DIR = Path(os.environ.get("SHUFFLENAS_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot")
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "val": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_IDX_UBYTE = 0x08


def _find(root: Path, stem: str) -> Path:
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.is_file():
            return candidate
    raise UserError(f"Fashion-MNIST file {stem}(.gz) not found in {root}; "
                    "install it with `apt-get install -y dataset-fashion-mnist` or pass --data_dir")


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise UserError(f"cannot read Fashion-MNIST file {path}: {exc}") from None
    if len(raw) < 4 + 4 * ndim or raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE or raw[3] != ndim:
        raise UserError(f"{path} is not an IDX file of {ndim}-d unsigned bytes")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise UserError(f"{path} is truncated: expected {int(np.prod(shape))} values, found {data.size}")
    return data.reshape(shape)


def load_fashion_mnist(split: str, root: Union[str, Path, None] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) int32 of ``split`` ('train': 60k, 'val': 10k)."""
    if split not in _FILES:
        raise UserError(f"unknown Fashion-MNIST split {split!r}; use 'train' or 'val'")
    root = Path(root) if root else DEFAULT_DIR
    if not root.is_dir():
        raise UserError(f"Fashion-MNIST folder {root} does not exist; "
                        "install it with `apt-get install -y dataset-fashion-mnist` or pass --data_dir")
    image_file, label_file = _FILES[split]
    images = _read_idx(_find(root, image_file), 3)
    labels = _read_idx(_find(root, label_file), 1).astype(np.int32)
    if len(images) != len(labels):
        raise UserError(f"Fashion-MNIST {split} in {root}: {len(images)} images but {len(labels)} labels")
    return images, labels
