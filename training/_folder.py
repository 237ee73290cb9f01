"""The index of an ImageNet-style folder: ``root/<split>/<class>/<image>``.

Every candidate file is checked once while the index is built, cheaply (header, PNG chunk
CRCs, JPEG end marker; a full decode only for files that fail the cheap check or are
neither JPEG nor PNG), so a corrupt image is skipped with a warning instead of stopping the
MindSpore pipeline mid-epoch. A file that cannot be opened at all is an error.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from common import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
# Formats MindSpore's vision.Decode reads (measured on 2.10: WEBP and GIF fail).
DECODABLE_FORMATS = ("JPEG", "MPO", "PNG", "BMP", "TIFF")
_JPEG_END = b"\xff\xd9"


class CorruptImageWarning(UserWarning):
    """Some images of a folder could not be decoded and were left out."""


@dataclass(frozen=True)
class FolderIndex:
    """Readable images of one split, in class then file-name order."""

    paths: Tuple[str, ...]
    labels: np.ndarray            # int32, index into class_names
    class_names: Tuple[str, ...]
    skipped: Tuple[str, ...]      # corrupt or undecodable image files left out
    ignored: Tuple[str, ...]      # files without an image extension


def split_dir(data_dir: Optional[str], split: str) -> Path:
    """``data_dir/split`` or a UserError naming what is missing."""
    if not data_dir:
        raise UserError("data_dir is not set; pass the folder that holds train/ and val/ (--data_dir)")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise UserError(f"data_dir {root} does not exist or is not a folder; "
                        "pass the folder that holds train/ and val/ (--data_dir)")
    folder = root / split
    if not folder.is_dir():
        raise UserError(f"{folder} is missing; an ImageNet-style data_dir holds {split}/<class>/<images>")
    return folder


def class_names_in(folder: Path) -> Tuple[str, ...]:
    """Sorted names of the class sub-folders of ``folder`` (a UserError when there are none)."""
    names = tuple(sorted(entry.name for entry in os.scandir(folder)
                         if entry.is_dir() and not entry.name.startswith(".")))
    if not names:
        raise UserError(f"{folder} is empty: expected one sub-folder of images per class")
    return names


def count_images(folder: Path) -> int:
    """Image files in ``folder/<class>/`` (by extension, without opening them)."""
    return sum(1 for name in class_names_in(folder) for entry in os.scandir(folder / name)
               if not entry.is_dir() and not entry.name.startswith(".") and entry.name.lower().endswith(IMAGE_EXTENSIONS))


def _problem(path: str) -> Optional[str]:
    """None when ``path`` will decode in the pipeline, else why not. OSError: unreadable."""
    from PIL import Image, UnidentifiedImageError

    with open(path, "rb") as f:  # an OSError here (permissions, broken link) propagates
        try:
            with Image.open(f) as img:
                fmt = img.format
                if fmt == "PNG":
                    img.verify()  # walks all chunks, checks CRCs: catches truncation
        except Image.DecompressionBombError:
            return None  # PIL's own size limit, not MindSpore's: a huge image is still an image
        except (UnidentifiedImageError, SyntaxError, ValueError, EOFError, OSError) as exc:
            return f"not a readable image ({type(exc).__name__}: {exc})"
        if fmt not in DECODABLE_FORMATS:
            return f"{fmt} images are not supported by MindSpore's decoder; convert to JPEG or PNG"
        if fmt == "PNG":
            return None
        if fmt in ("JPEG", "MPO"):
            f.seek(-2, os.SEEK_END)
            if f.read(2) == _JPEG_END:
                return None
        f.seek(0)
        data = np.frombuffer(f.read(), dtype=np.uint8)
    return _decode_problem(data)


def _decode_problem(data: np.ndarray) -> Optional[str]:
    """Decode with the pipeline's own decoder; None when it works."""
    from mindspore.dataset import vision

    try:
        vision.Decode()(data)
    except RuntimeError as exc:
        return f"MindSpore cannot decode it ({str(exc).strip().splitlines()[0]})"
    return None


def _check(path: str) -> Optional[str]:
    try:
        return _problem(path)
    except OSError as exc:
        raise UserError(f"cannot read image {path}: {exc.strerror or exc}; fix its permissions "
                        "or remove it") from None


def scan_split(folder: Path, class_names: Sequence[str], *, verify: bool = True,
               workers: int = 1) -> FolderIndex:
    """Index ``folder/<class>/*`` with labels from ``class_names`` (the train split's order)."""
    present = class_names_in(folder)
    unknown = sorted(set(present) - set(class_names))
    if unknown:
        raise UserError(f"{folder} has class folders that the train split lacks: "
                        f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}; "
                        "train/ and val/ must use the same class folder names")
    label_of = {name: i for i, name in enumerate(class_names)}
    candidates: List[Tuple[str, int]] = []
    ignored: List[str] = []
    for name in present:
        class_dir = folder / name
        files = sorted(e.name for e in os.scandir(class_dir) if not e.is_dir() and not e.name.startswith("."))
        images = [f for f in files if f.lower().endswith(IMAGE_EXTENSIONS)]
        ignored += [str(class_dir / f) for f in files if not f.lower().endswith(IMAGE_EXTENSIONS)]
        if not images:
            raise UserError(f"class folder {class_dir} has no images ({', '.join(IMAGE_EXTENSIONS)}); "
                            "add images or remove the folder")
        candidates += [(str(class_dir / f), label_of[name]) for f in images]

    problems: List[Optional[str]] = [None] * len(candidates)
    if verify:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            problems = list(pool.map(_check, [p for p, _ in candidates]))
    kept = [c for c, why in zip(candidates, problems) if why is None]
    skipped = tuple(c[0] for c, why in zip(candidates, problems) if why is not None)
    if skipped:
        first = next(why for why in problems if why is not None)
        warnings.warn(f"{folder}: skipped {len(skipped)} of {len(candidates)} image files that cannot be "
                      f"decoded, e.g. {skipped[0]}: {first}", CorruptImageWarning, stacklevel=4)
    if ignored:
        warnings.warn(f"{folder}: ignored {len(ignored)} files without an image extension, e.g. {ignored[0]}",
                      UserWarning, stacklevel=4)
    empty = sorted(set(present) - {class_names[label] for _, label in kept})
    if empty:
        raise UserError(f"class folder {folder / empty[0]} has no decodable images; "
                        "replace the corrupt files or remove the folder")
    return FolderIndex(paths=tuple(p for p, _ in kept),
                       labels=np.array([label for _, label in kept], dtype=np.int32),
                       class_names=tuple(class_names), skipped=skipped, ignored=tuple(ignored))
