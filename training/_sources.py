"""Random-access row sources for mindspore.dataset.GeneratorDataset: (image, label) rows."""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np


class EncodedFiles:
    """Rows of (file bytes as uint8, int32 label); decoding happens in the MindSpore ops."""

    def __init__(self, paths: Sequence[str], labels: np.ndarray):
        self.paths, self.labels = list(paths), np.asarray(labels, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        return np.fromfile(self.paths[index], dtype=np.uint8), self.labels[index:index + 1].reshape(())


class DecodedImages:
    """Rows of (HWC uint8 image, int32 label) from arrays already in memory."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, np.asarray(labels, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        return self.images[index], self.labels[index:index + 1].reshape(())
