"""msrun --worker_num 2 on CPU: a short data-parallel run; rank 0 alone writes; disjoint shards."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "configs" / "shufflenetv2" / "shufflenet_v2_0.5_fashion_mnist_cpu.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("msrun") is None, reason="msrun (ships with mindspore) is not on PATH")
def test_msrun_two_workers_data_parallel(tmp_path):
    arch = tmp_path / "tiny.yaml"
    arch.write_text("arch:\n  stem: 8\n  widths: [16, 32, 64]\n  depths: [1, 2, 1]\n  last: 64\n")
    save, logs = tmp_path / "ckpt", tmp_path / "logs"
    cmd = ["msrun", "--worker_num", "2", "--local_worker_num", "2", "--master_port", str(_free_port()),
           "--log_dir", str(logs), "--join", "True",
           str(ROOT / "train.py"), "-c", str(DEMO), "--distribute", "True", "--arch", str(arch),
           "--subset", "400", "--image_resize", "32", "--batch_size", "20", "--epoch_size", "1",
           "--num_parallel_workers", "1", "--log_interval", "5", "--ckpt_save_dir", str(save)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GLOG_v": "2"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    worker = {r: (logs / f"worker_{r}.log").read_text() for r in (0, 1)}
    assert proc.returncode == 0, proc.stdout[-1500:] + worker[0][-2000:] + worker[1][-2000:]

    events = [json.loads(line) for line in (save / "train_log.jsonl").read_text().splitlines()]
    starts = [e for e in events if e["event"] == "start"]
    assert len(starts) == 1 and starts[0]["ranks"] == 2  # one writer: rank 0
    (shards,) = [e for e in events if e["event"] == "shards"]
    assert shards["ranks"] == 2 and shards["per_rank"] == 200 and shards["overlap"] == 0
    steps = [e for e in events if e["event"] == "step"]
    assert steps[-1]["global_step"] == 10  # 200 images per rank / batch 20: each rank did half the data
    (epoch,) = [e for e in events if e["event"] == "epoch"]
    assert epoch["top1"] is not None
    assert sorted(p.name for p in save.glob("*.ckpt")) == ["best.ckpt", "s8-w16.32.64-d1.2.1-l64-1_10.ckpt"]
    assert "epoch 1/1 done" in worker[0] and "epoch 1/1 done" not in worker[1]
    val_images = [e for e in events if e["event"] == "end"][0]
    assert val_images["epochs"] == 1
