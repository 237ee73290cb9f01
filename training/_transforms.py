"""MindCV's ImageNet transforms as mindspore.dataset.vision op lists (one place for both
the folder pipeline and the built-in Fashion-MNIST one)."""

from __future__ import annotations

import math
from typing import List, Sequence, Tuple, Union

from mindspore.dataset import vision

from common import UserError

# MindCV's constants: ImageNet mean/std in 0-255 scale (Normalize runs on uint8 HWC).
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
INTERPOLATIONS = {"bilinear": vision.Inter.BILINEAR, "bicubic": vision.Inter.BICUBIC,
                  "nearest": vision.Inter.NEAREST, "area": vision.Inter.AREA}
RE_SCALE = (0.02, 1 / 3)
RE_RATIO = (0.3, 3.3)


def interpolation(name: str) -> vision.Inter:
    try:
        return INTERPOLATIONS[str(name).lower()]
    except KeyError:
        raise UserError(f"unknown interpolation {name!r}; choose one of {', '.join(INTERPOLATIONS)}") from None


def color_factors(color_jitter: Union[float, Sequence[float], None]) -> Tuple[float, ...]:
    """brightness, contrast, saturation (and hue) ranges; () when there is no jitter."""
    if color_jitter is None:
        return ()
    factors = ((float(color_jitter),) * 3 if isinstance(color_jitter, (int, float))
               else tuple(float(x) for x in color_jitter))
    return factors if any(factors) else ()


def eval_resize(image_resize: int, crop_pct: float) -> int:
    """Shorter side before the center crop, as MindCV computes it."""
    return int(math.floor(image_resize / crop_pct))


def train_ops(cfg, *, decode: bool) -> List:
    """Random-resized-crop (fused with decode when ``decode``), flip, color, normalize, CHW.
    ``cfg`` is a DataConfig. Random erasing comes separately: `erasing_ops`."""
    inter = interpolation(cfg.interpolation)
    crop = vision.RandomCropDecodeResize if decode else vision.RandomResizedCrop
    ops = [crop(cfg.image_resize, scale=tuple(cfg.scale), ratio=tuple(cfg.ratio), interpolation=inter)]
    if cfg.hflip > 0:
        ops.append(vision.RandomHorizontalFlip(prob=cfg.hflip))
    factors = color_factors(cfg.color_jitter)
    if factors:
        ops.append(vision.RandomColorAdjust(*factors))
    return ops + [vision.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD), vision.HWC2CHW()]


def erasing_ops(cfg) -> List:
    """Random erasing on the normalized CHW image with per-pixel N(0, 1) fill (MindSpore's
    value='random', timm's mode 'pixel'); [] when re_prob is 0. It is a Python op drawing from
    the global NumPy RNG: run it with one worker so a seeded run repeats exactly."""
    if cfg.re_prob <= 0:
        return []
    return [vision.RandomErasing(prob=cfg.re_prob, scale=RE_SCALE, ratio=RE_RATIO, value="random")]


def eval_ops(cfg, *, decode: bool, center_crop: bool = True) -> List:
    """Resize the shorter side to image_resize / crop_pct, center-crop image_resize, normalize,
    CHW. ``center_crop=False`` resizes straight to image_resize (square inputs: Fashion-MNIST)."""
    inter = interpolation(cfg.interpolation)
    ops = [vision.Decode()] if decode else []
    if center_crop:
        ops += [vision.Resize(eval_resize(cfg.image_resize, cfg.crop_pct), interpolation=inter),
                vision.CenterCrop(cfg.image_resize)]
    else:
        ops.append(vision.Resize((cfg.image_resize, cfg.image_resize), interpolation=inter))
    return ops + [vision.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD), vision.HWC2CHW()]
