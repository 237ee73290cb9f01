#!/usr/bin/env python
"""Top-1 / top-5 / loss of a checkpoint on the val split, every image counted once.

    python validate.py -c configs/shufflenetv2/shufflenet_v2_0.5_ascend.yaml --data_dir DIR --ckpt_path X.ckpt
"""

from __future__ import annotations

import json
import os
import sys
from typing import Optional, Sequence

os.environ.setdefault("GLOG_v", "2")  # MindSpore: warnings and errors only

from common.cli import run_main  # noqa: E402


def main(argv: Optional[Sequence[str]] = None) -> int:
    from training import parse_config, validate

    config = parse_config(argv, prog="validate.py", description=__doc__.splitlines()[0])
    m = validate(config)
    print(f"validate {config.ckpt_path}: top1 {m.top1:.2f} top5 {m.top5:.2f} loss {m.loss:.4f} "
          f"({m.count} images of {config.data_dir or config.dataset} {config.val_split})")
    print(json.dumps({"top1": m.top1, "top5": m.top5, "loss": m.loss, "count": m.count}))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    run_main(main)
