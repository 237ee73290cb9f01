"""Shared fixtures. MindSpore compiles cost seconds: build small nets, few shapes, share them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GLOG_v", "3")  # MindSpore: errors only

# A small valid arch that compiles and runs fast at 32 px.
TINY_ARCH = dict(stem=8, widths=(16, 32, 64), depths=(1, 2, 1), last=64)


@pytest.fixture(scope="session", autouse=True)
def mindspore_cpu_graph():
    """Every test runs on CPU in graph mode unless it switches itself."""
    from common.runtime import configure

    configure("CPU", "graph")


@pytest.fixture(scope="session")
def tiny_arch():
    from space import Arch

    return Arch(**TINY_ARCH)


@pytest.fixture(scope="session")
def fashion_mnist_folder(tmp_path_factory) -> Path:
    """A small ImageNet-style folder of real Fashion-MNIST images: train/ and val/, 10 classes,
    20 train and 6 val images per class, alternately PNG and JPEG, RGB, 28x28."""
    from PIL import Image

    from training._fashion_mnist import load_fashion_mnist

    root = tmp_path_factory.mktemp("fmnist_folder")
    for split, per_class in (("train", 20), ("val", 6)):
        images, labels = load_fashion_mnist(split)
        for cls in range(10):
            folder = root / split / f"class_{cls:02d}"
            folder.mkdir(parents=True)
            for i, idx in enumerate(np.flatnonzero(labels == cls)[:per_class]):
                img = Image.fromarray(images[idx]).convert("RGB")
                ext = "png" if i % 2 == 0 else "jpg"
                img.save(folder / f"{split}_{idx}.{ext}")
    return root


@pytest.fixture(scope="session")
def latency_cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("latency") / "cache.sqlite")


@pytest.fixture(scope="session")
def micro_table(tmp_path_factory) -> str:
    """A real latency table of tests/data/micro_space.yaml, measured here with ONNX Runtime at 32 px."""
    from evaluator.lut import build_table

    path = tmp_path_factory.mktemp("lut") / "micro.json"
    build_table(str(ROOT / "tests" / "data" / "micro_space.yaml"), backend="onnxruntime", resolution=32,
                fit_archs=3, warmup=5, repeats=10, cache=None).save(path)
    return str(path)
