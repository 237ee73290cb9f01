#!/usr/bin/env python
"""Throughput of the data pipeline alone (decode + augment + batch), no network.

Writes a temporary ImageNet-style folder of real Fashion-MNIST images upscaled to 256x256 JPEG
(so decoding costs what a real photo folder costs), then times full passes of
training.data.create_loader: the folder with the train transform at 224 and 64 px and the
eval transform at 224 px, and the built-in Fashion-MNIST at 32 and 64 px. Each pass makes a
fresh iterator, so pipeline start-up counts. Reports the median of the passes.

    python bench/bench_data.py            # -> bench/results/data_pipeline.{json,md}
"""

from __future__ import annotations

import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common.env import cpu_model  # noqa: E402
from common.cli import ArgumentParser, run_main  # noqa: E402
from training._fashion_mnist import load_fashion_mnist  # noqa: E402
from training.data import DataConfig, create_loader  # noqa: E402


def write_jpeg_folder(root: Path, count: int, side: int = 256) -> None:
    """``count`` Fashion-MNIST training images as side x side RGB JPEGs in root/train/<class>/."""
    from PIL import Image

    images, labels = load_fashion_mnist("train")
    per_class = count // 10
    for cls in range(10):
        folder = root / "train" / f"class_{cls:02d}"
        folder.mkdir(parents=True)
        for idx in np.flatnonzero(labels == cls)[:per_class]:
            img = Image.fromarray(images[idx]).convert("RGB").resize((side, side), Image.BILINEAR)
            img.save(folder / f"{idx}.JPEG", quality=90)


def time_passes(cfg: DataConfig, training: bool, passes: int) -> Dict:
    start = time.perf_counter()
    loader = create_loader(cfg, "train", training=training)
    build_s = time.perf_counter() - start
    seconds: List[float] = []
    for _ in range(passes):
        start = time.perf_counter()
        seen = sum(int(image.shape[0]) for image, _ in loader.dataset.create_tuple_iterator(num_epochs=1,
                                                                                           output_numpy=True))
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    return {"dataset": cfg.dataset, "transform": "train" if training else "eval", "image_resize": cfg.image_resize,
            "batch_size": cfg.batch_size, "images_per_pass": seen, "build_s": round(build_s, 3),
            "pass_s": [round(s, 3) for s in seconds], "median_s": round(median, 3),
            "img_per_s": round(seen / median, 1)}


def time_scan(folder: Path, passes: int) -> Dict:
    """Building the folder index with and without the corrupt-image pre-scan."""
    from training import _folder

    out = {}
    for verify in (True, False):
        seconds = []
        for _ in range(passes):
            start = time.perf_counter()
            index = _folder.scan_split(folder / "train", _folder.class_names_in(folder / "train"),
                                       verify=verify, workers=2)
            seconds.append(time.perf_counter() - start)
        out["verify" if verify else "no_verify"] = {"images": len(index.paths),
                                                     "median_s": round(statistics.median(seconds), 4)}
    return out




def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = ArgumentParser(prog="bench_data.py", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="JPEG images in the temporary folder")
    parser.add_argument("--fashion-subset", type=int, default=20000,
                        help="Fashion-MNIST training images per pass (the proxy's size)")
    parser.add_argument("--workers", type=int, default=2, help="num_parallel_workers")
    parser.add_argument("--passes", type=int, default=3, help="timed passes per case (median reported)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "data_pipeline.json"))
    args = parser.parse_args(argv)

    import mindspore

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        write_jpeg_folder(folder, args.images)
        print(f"wrote {args.images} 256x256 JPEGs in {time.perf_counter() - start:.1f} s", flush=True)
        scan = time_scan(folder, args.passes)
        print(f"folder index of {args.images} files: {scan['verify']['median_s']} s with the pre-scan, "
              f"{scan['no_verify']['median_s']} s without", flush=True)
        common = dict(num_parallel_workers=args.workers, batch_size=64, drop_remainder=False)
        cases = [(DataConfig(data_dir=str(folder), image_resize=224, **common), True),
                 (DataConfig(data_dir=str(folder), image_resize=64, **common), True),
                 (DataConfig(data_dir=str(folder), image_resize=224, **common), False),
                 (DataConfig(dataset="fashion_mnist", image_resize=32, subset=args.fashion_subset, **common), True),
                 (DataConfig(dataset="fashion_mnist", image_resize=64, subset=args.fashion_subset, **common), True),
                 (DataConfig(dataset="fashion_mnist", image_resize=64, subset=args.fashion_subset, **common), False)]
        for cfg, training in cases:
            row = time_passes(cfg, training, args.passes)
            row["source"] = "jpeg folder 256px" if cfg.dataset == "imagenet" else "built-in (IDX in memory)"
            rows.append(row)
            print(f"{row['source']:26s} {row['transform']:5s} {row['image_resize']:4d}px "
                  f"{row['img_per_s']:9.1f} img/s  (passes {row['pass_s']} s, build {row['build_s']} s)", flush=True)

    result = {
        "benchmark": "data_pipeline",
        "command": "python bench/bench_data.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(), "cpu_count": os.cpu_count(), "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        "mindspore": mindspore.__version__, "workers": args.workers, "passes": args.passes, "rows": rows,
        "folder_index_s": scan,
        "note": "machine shared with other jobs while measuring; compare rows of one run",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| source | transform | px | images/pass | median s | img/s | build s |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['source']} | {r['transform']} | {r['image_resize']} | {r['images_per_pass']} | {r['median_s']} "
              f"| {r['img_per_s']} | {r['build_s']} |" for r in rows]
    out.with_suffix(".md").write_text(
        f"# data_pipeline ({result['date_utc']}, {result['cpu']}, MindSpore {result['mindspore']}, "
        f"{args.workers} workers, median of {args.passes})\n\n" + "\n".join(lines) + "\n\n"
        f"Folder index of {args.images} JPEGs: {scan['verify']['median_s']} s with the corrupt-image "
        f"pre-scan, {scan['no_verify']['median_s']} s without.\n")
    print("\n".join(lines))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    run_main(main)
