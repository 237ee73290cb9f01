"""training.data on real Fashion-MNIST images: shapes, normalisation, coverage, shards, errors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from common import UserError
from training import _transforms
from training._fashion_mnist import load_fashion_mnist
from training._folder import CorruptImageWarning
from training._sampling import balanced_subset
from training.data import DataConfig, create_loader, num_classes_of

PIXEL0 = -np.array(_transforms.IMAGENET_MEAN) / np.array(_transforms.IMAGENET_STD)  # a black pixel
PIXEL255 = (255 - np.array(_transforms.IMAGENET_MEAN)) / np.array(_transforms.IMAGENET_STD)


def batches(loader, num_epochs=1):
    it = loader.dataset.create_dict_iterator(num_epochs=num_epochs, output_numpy=True)
    return [(b["image"], b["label"]) for _ in range(num_epochs) for b in it]


def fingerprints(images: np.ndarray) -> list:
    return [np.round(img, 3).tobytes() for img in images]


def folder_cfg(root, **kw) -> DataConfig:
    return DataConfig(data_dir=str(root), **{"image_resize": 32, "batch_size": 16, "num_parallel_workers": 2, **kw})


@pytest.fixture()
def small_folder(fashion_mnist_folder, tmp_path) -> Path:
    """A writable copy of three classes (train and val) of the shared folder."""
    for split in ("train", "val"):
        for cls in ("class_00", "class_01", "class_02"):
            shutil.copytree(fashion_mnist_folder / split / cls, tmp_path / split / cls)
    return tmp_path


def test_train_batches(fashion_mnist_folder):
    loader = create_loader(folder_cfg(fashion_mnist_folder), "train", training=True)
    got = batches(loader)
    assert (loader.num_samples, loader.num_batches, loader.num_classes) == (200, 12, 10)
    assert len(got) == 12  # 200 // 16, the partial batch dropped
    for image, label in got:
        assert image.shape == (16, 3, 32, 32) and image.dtype == np.float32
        assert label.shape == (16,) and label.dtype == np.int32
        assert 0 <= label.min() and label.max() < 10


def test_val_covers_every_image_once_and_is_normalized(fashion_mnist_folder):
    cfg = folder_cfg(fashion_mnist_folder)
    loader = create_loader(cfg, "val", training=False)
    got = batches(loader)
    assert (loader.num_samples, loader.num_batches) == (60, 4)
    assert [len(label) for _, label in got] == [16, 16, 16, 12]  # 16 does not divide 60: nothing dropped
    images = np.concatenate([image for image, _ in got])
    labels = np.concatenate([label for _, label in got])

    # The same eval ops, applied eagerly to every file in class/file order, give the same images.
    from mindspore.dataset.transforms import Compose

    eval_ops = Compose(_transforms.eval_ops(cfg, decode=True))
    files = sorted((fashion_mnist_folder / "val").glob("*/*"))
    expected = [eval_ops(np.fromfile(f, dtype=np.uint8)) for f in files]
    assert fingerprints(images) == fingerprints(np.stack(expected))
    assert labels.tolist() == [int(f.parent.name[-2:]) for f in files]

    # Normalized with ImageNet mean/std in 0-255 scale: black background maps to -mean/std.
    assert images.shape == (60, 3, 32, 32)
    np.testing.assert_allclose(images.min(axis=(0, 2, 3)), PIXEL0, atol=1e-4)
    assert np.all(images.max(axis=(0, 2, 3)) <= PIXEL255 + 1e-4)
    assert -1.5 < images.mean() < 0.0 and 0.7 < images.std() < 2.0


def test_val_shards_disjoint_and_complete(fashion_mnist_folder):
    cfg = folder_cfg(fashion_mnist_folder, batch_size=7)
    whole = fingerprints(np.concatenate([i for i, _ in batches(create_loader(cfg, "val", training=False))]))
    parts = []
    for shard in range(3):
        loader = create_loader(cfg, "val", training=False, num_shards=3, shard_id=shard)
        part = fingerprints(np.concatenate([i for i, _ in batches(loader)]))
        assert loader.num_samples == len(part) == 20
        parts.append(part)
    merged = [fp for part in parts for fp in part]
    assert len(set(merged)) == len(merged) == 60 and set(merged) == set(whole)


def test_train_shards_disjoint_equal_and_reshuffled_each_epoch():
    cfg = DataConfig(dataset="fashion_mnist", image_resize=32, batch_size=10, subset=101, hflip=0.0,
                     color_jitter=None, scale=(1.0, 1.0), ratio=(1.0, 1.0), num_parallel_workers=2)
    images, labels = load_fashion_mnist("train")
    chosen = balanced_subset(labels, 101, cfg.seed)
    shards = [create_loader(cfg, "train", training=True, num_shards=2, shard_id=s) for s in (0, 1)]
    assert [s.num_samples for s in shards] == [50, 50]
    first = [set(s.sampler.indices(0).tolist()) for s in shards]
    assert not first[0] & first[1] and len(first[0] | first[1]) == 100
    # The pipeline really reads the sampler's rows, and epoch 2 comes in a new order.
    got = batches(shards[0], num_epochs=2)
    epoch0 = np.concatenate([label for _, label in got[:5]])
    epoch1 = np.concatenate([label for _, label in got[5:]])
    assert epoch0.tolist() == labels[chosen][shards[0].sampler.indices(0)].tolist()
    assert epoch1.tolist() == labels[chosen][shards[0].sampler.indices(1)].tolist()
    assert shards[0].sampler.indices(0).tolist() != shards[0].sampler.indices(1).tolist()
    # A trainer that makes a fresh iterator per epoch still gets the next epoch's order.
    again = np.concatenate([label for _, label in batches(shards[0])])
    assert again.tolist() == labels[chosen][shards[0].sampler.indices(2)].tolist()


def test_label_map_is_train_order_for_val(small_folder):
    shutil.rmtree(small_folder / "val" / "class_01")  # val lacks a class: labels keep train's numbering
    cfg = folder_cfg(small_folder, batch_size=4)
    train = create_loader(cfg, "train", training=True)
    val = create_loader(cfg, "val", training=False)
    assert train.class_names == val.class_names == ["class_00", "class_01", "class_02"]
    assert num_classes_of(cfg) == val.num_classes == 3
    labels = np.concatenate([label for _, label in batches(val)])
    assert sorted(set(labels.tolist())) == [0, 2]

    (small_folder / "val" / "class_99").mkdir()
    shutil.copy(next((small_folder / "val" / "class_00").iterdir()), small_folder / "val" / "class_99")
    with pytest.raises(UserError, match="class_99"):
        create_loader(cfg, "val", training=False)


def test_val_without_train_takes_its_own_classes(small_folder):
    shutil.rmtree(small_folder / "train")
    cfg = folder_cfg(small_folder)
    with pytest.warns(UserWarning, match="train is missing"):
        assert num_classes_of(cfg) == 3
    with pytest.warns(UserWarning, match="train is missing"):
        val = create_loader(cfg, "val", training=False)
    assert val.class_names == ["class_00", "class_01", "class_02"] and val.num_samples == 18
    with pytest.raises(UserError, match="train is missing"):
        create_loader(cfg, "train", training=True)


def test_fashion_mnist_builtin_shapes_subset_and_seed():
    cfg = DataConfig(dataset="fashion_mnist", image_resize=32, batch_size=50, subset=200,
                     num_parallel_workers=2, re_prob=0.5)
    assert num_classes_of(cfg) == 10
    train = create_loader(cfg, "train", training=True)
    val = create_loader(cfg, "val", training=False)
    assert (train.num_samples, train.num_batches, val.num_samples) == (200, 4, 200)
    assert train.class_names[0] == "T-shirt/top"
    a, v = batches(train), batches(val)
    for image, label in a + v:
        assert image.shape == (50, 3, 32, 32) and image.dtype == np.float32 and label.dtype == np.int32
    val_images = np.concatenate([image for image, _ in v])
    # Grayscale replicated: channel c = (x - mean_c) / std_c of one x, so the channels agree in 0-255.
    raw = val_images * np.array(_transforms.IMAGENET_STD)[None, :, None, None] \
        + np.array(_transforms.IMAGENET_MEAN)[None, :, None, None]
    np.testing.assert_allclose(raw[:, 0], raw[:, 2], atol=1e-3)
    assert np.bincount(np.concatenate([label for _, label in a]), minlength=10).tolist() == [20] * 10
    assert np.bincount(np.concatenate([label for _, label in v]), minlength=10).tolist() == [20] * 10

    same = batches(create_loader(cfg, "train", training=True))
    assert all(np.array_equal(x, y) and np.array_equal(lx, ly) for (x, lx), (y, ly) in zip(a, same))
    other = batches(create_loader(DataConfig(**{**cfg.__dict__, "seed": 1}), "train", training=True))
    assert not all(np.array_equal(lx, ly) for (_, lx), (_, ly) in zip(a, other))


def test_val_subset_sizes_the_val_split_only():
    cfg = DataConfig(dataset="fashion_mnist", image_resize=32, batch_size=50, subset=100, val_subset=300)
    assert create_loader(cfg, "train", training=True).num_samples == 100
    assert create_loader(cfg, "val", training=False).num_samples == 300
    with pytest.raises(UserError, match="val_subset must be a positive integer"):
        DataConfig(dataset="fashion_mnist", val_subset=0)


def test_fashion_mnist_val_is_whole_test_set_resized():
    cfg = DataConfig(dataset="fashion_mnist", image_resize=28, batch_size=1000, interpolation="nearest")
    val = create_loader(cfg, "val", training=False)
    assert (val.num_samples, val.num_batches) == (10000, 10)
    image, label = batches(val)[3]
    images, labels = load_fashion_mnist("val")
    # 28 -> 28 px is the identity: the pipeline gives exactly the normalized test images 3000..3999.
    expected = (images[3000:4000, None].astype(np.float32) - _transforms.IMAGENET_MEAN[1]) / _transforms.IMAGENET_STD[1]
    np.testing.assert_allclose(image[:, 1:2], expected, atol=1e-4)
    assert label.tolist() == labels[3000:4000].tolist()


def test_random_erasing_fills_a_rectangle_with_normal_noise():
    base = dict(dataset="fashion_mnist", image_resize=64, batch_size=32, subset=32, hflip=0.0,
                color_jitter=None, scale=(1.0, 1.0), ratio=(1.0, 1.0), num_parallel_workers=1)
    plain = batches(create_loader(DataConfig(**base), "train", training=True))[0][0]
    erased = batches(create_loader(DataConfig(**base, re_prob=1.0), "train", training=True))[0][0]
    fractions, noise = [], []
    for p, e in zip(plain, erased):
        changed = np.any(p != e, axis=0)
        rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
        if rows.size == 0:
            continue
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        fractions.append(rows.size * cols.size / 64 ** 2)
        noise.append(e[:, box[0], box[1]].ravel())
    assert len(fractions) >= 28  # prob 1: nearly every image gets a rectangle
    assert 0.015 <= min(fractions) and max(fractions) <= 0.34
    noise = np.concatenate(noise)
    assert abs(noise.mean()) < 0.05 and 0.95 < noise.std() < 1.05


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_corrupt_and_non_image_files_are_skipped_with_a_count(small_folder):
    cls = small_folder / "train" / "class_01"
    jpgs, pngs = sorted(cls.glob("*.jpg")), sorted(cls.glob("*.png"))
    _truncate(jpgs[0])
    _truncate(pngs[0])
    (cls / "fake.jpg").write_text("not an image")
    (cls / "notes.txt").write_text("not an image either")
    with pytest.warns(CorruptImageWarning, match=r"skipped 3 of 61"), pytest.warns(UserWarning, match="notes.txt"):
        loader = create_loader(folder_cfg(small_folder, batch_size=8), "train", training=True)
    assert loader.num_samples == 58 and loader.num_batches == 7
    assert sorted(Path(p).name for p in loader.skipped) == sorted([jpgs[0].name, pngs[0].name, "fake.jpg"])
    assert sum(len(label) for _, label in batches(loader)) == 56  # the pipeline runs through


def test_class_with_only_corrupt_images_is_an_error(small_folder):
    cls = small_folder / "val" / "class_02"
    for f in cls.iterdir():
        f.write_bytes(b"\xff\xd8garbage")
    with pytest.warns(CorruptImageWarning), pytest.raises(UserError, match="class_02.*no decodable images"):
        create_loader(folder_cfg(small_folder), "val", training=False)


def test_unreadable_image_is_an_error(small_folder):
    link = small_folder / "train" / "class_00" / "gone.jpg"
    os.symlink(small_folder / "does_not_exist.jpg", link)
    with pytest.raises(UserError, match="cannot read image .*gone.jpg"):
        create_loader(folder_cfg(small_folder), "train", training=True)


@pytest.mark.parametrize("breakage, message", [
    ("no_data_dir", "does not exist"),
    ("no_val", r"val is missing"),
    ("empty_train", r"train is empty"),
    ("empty_val", r"val is empty"),
    ("empty_class", r"class_01 has no images"),
])
def test_folder_errors_name_the_path(small_folder, breakage, message):
    data_dir = small_folder
    if breakage == "no_data_dir":
        data_dir = small_folder / "nope"
    elif breakage == "no_val":
        shutil.rmtree(small_folder / "val")
    elif breakage == "empty_train":
        shutil.rmtree(small_folder / "train")
        (small_folder / "train").mkdir()
    elif breakage == "empty_val":
        shutil.rmtree(small_folder / "val")
        (small_folder / "val").mkdir()
    elif breakage == "empty_class":
        for f in (small_folder / "val" / "class_01").iterdir():
            f.unlink()
    split = "train" if breakage == "empty_train" else "val"
    with pytest.raises(UserError, match=message) as err:
        create_loader(folder_cfg(data_dir), split, training=split == "train")
    assert str(small_folder) in str(err.value)


def test_bad_options_are_user_errors(fashion_mnist_folder):
    for bad in (dict(interpolation="lanczos"), dict(hflip=1.5), dict(dataset="cifar"), dict(batch_size=0),
                dict(crop_pct=0.0), dict(scale=(0.5, 0.1)), dict(color_jitter=(0.1, 0.2))):
        with pytest.raises(UserError):
            DataConfig(**bad)
    with pytest.raises(UserError, match="data_dir is not set"):
        create_loader(DataConfig(), "train", training=True)
    with pytest.raises(UserError, match="less than one batch"):
        create_loader(folder_cfg(fashion_mnist_folder, batch_size=256), "train", training=True)
    with pytest.raises(UserError, match="shard_id"):
        create_loader(folder_cfg(fashion_mnist_folder), "val", training=False, num_shards=2, shard_id=2)
    with pytest.raises(UserError, match="unknown split"):
        create_loader(folder_cfg(fashion_mnist_folder), "test", training=False)


def test_train_transform_with_augmentation_off_is_the_flipped_eval_image(fashion_mnist_folder):
    """hflip=1, whole-image crop, no jitter: the train output is the eval output mirrored."""
    cfg = folder_cfg(fashion_mnist_folder, crop_pct=1.0, hflip=1.0, color_jitter=None, scale=(1.0, 1.0),
                     ratio=(1.0, 1.0), shuffle=False, batch_size=20)
    train = np.concatenate([image for image, _ in batches(create_loader(cfg, "val", training=True))])
    val = np.concatenate([image for image, _ in batches(create_loader(cfg, "val", training=False))])
    np.testing.assert_allclose(train, val[..., ::-1], atol=1e-5)
    jittered = batches(create_loader(DataConfig(**{**cfg.__dict__, "color_jitter": 0.4}), "val", training=True))
    assert not np.allclose(np.concatenate([image for image, _ in jittered]), train, atol=1e-3)


def test_eval_resize_is_mindcv_rule():
    assert _transforms.eval_resize(224, 0.875) == 256 and _transforms.eval_resize(64, 0.875) == 73
