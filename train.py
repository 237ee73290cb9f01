#!/usr/bin/env python
"""Train a ShuffleNetV2 (a reference or a searched Arch) with the MindCV recipe.

    python train.py --config configs/shufflenetv2/shufflenet_v2_0.5_ascend.yaml --data_dir DIR --distribute False
    msrun --bind_core=True --worker_num 8 python train.py --config configs/shufflenetv2/shufflenet_v2_0.5_ascend.yaml --data_dir DIR
    python train.py -c configs/shufflenetv2/shufflenet_v2_0.5_fashion_mnist_cpu.yaml --arch found.yaml --export ONNX

Every recipe key is a flag of the same name (the flag wins over the YAML file). With
``--epoch_size 0 --ckpt_path X --export MINDIR|ONNX`` it only exports the checkpoint.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

os.environ.setdefault("GLOG_v", "2")  # MindSpore: warnings and errors only

from common.cli import run_main  # noqa: E402


def main(argv: Optional[Sequence[str]] = None) -> int:
    from training import parse_config, train

    config = parse_config(argv, prog="train.py", description=__doc__.splitlines()[0])
    train(config)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    run_main(main)
