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


def _msrun(tmp_path: Path, save: Path, name: str, *extra: str) -> None:
    arch = tmp_path / "tiny.yaml"
    arch.write_text("arch:\n  stem: 8\n  widths: [16, 32, 64]\n  depths: [1, 2, 1]\n  last: 64\n")
    logs = tmp_path / f"logs_{name}"
    cmd = ["msrun", "--worker_num", "2", "--local_worker_num", "2", "--master_port", str(_free_port()),
           "--log_dir", str(logs), "--join", "True",
           str(ROOT / "train.py"), "-c", str(DEMO), "--distribute", "True", "--arch", str(arch),
           "--subset", "400", "--image_resize", "32", "--batch_size", "20", "--epoch_size", "2",
           "--num_parallel_workers", "1", "--log_interval", "5", "--ckpt_save_dir", str(save), *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GLOG_v": "2"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    worker = {r: (logs / f"worker_{r}.log").read_text() for r in (0, 1)}
    assert proc.returncode == 0, proc.stdout[-1500:] + worker[0][-2000:] + worker[1][-2000:]
    assert "done:" in worker[0] and "done:" not in worker[1]  # rank 0 alone prints and writes


def _events(save: Path):
    return [json.loads(line) for line in (save / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("msrun") is None, reason="msrun (ships with mindspore) is not on PATH")
def test_msrun_two_workers_data_parallel_and_resume(tmp_path):
    """2 ranks on disjoint shards; a run stopped after epoch 1 and resumed on both ranks ends with
    the weights of the uninterrupted 2-epoch run."""
    import mindspore as ms
    import numpy as np

    full = tmp_path / "full"
    _msrun(tmp_path, full, "full")
    events = _events(full)
    starts = [e for e in events if e["event"] == "start"]
    assert len(starts) == 1 and starts[0]["ranks"] == 2  # one writer: rank 0
    (shards,) = [e for e in events if e["event"] == "shards"]
    assert shards["ranks"] == 2 and shards["per_rank"] == 200 and shards["overlap"] == 0
    steps = [e for e in events if e["event"] == "step"]
    assert steps[-1]["global_step"] == 20  # 200 images per rank / batch 20 = 10 steps per epoch
    assert all(e["top1"] is not None for e in events if e["event"] == "epoch")
    assert sorted(p.name for p in full.glob("*.ckpt")) == [
        "best.ckpt", "s8-w16.32.64-d1.2.1-l64-1_10.ckpt", "s8-w16.32.64-d1.2.1-l64-2_10.ckpt"]

    parts = tmp_path / "parts"
    _msrun(tmp_path, parts, "first", "--max_steps", "10")          # stops after epoch 1
    assert not (parts / "s8-w16.32.64-d1.2.1-l64-2_10.ckpt").exists()
    _msrun(tmp_path, parts, "resumed", "--auto_resume", "True")    # both ranks pick up epoch 1
    (resume,) = [e for e in _events(parts) if e["event"] == "resume"]
    assert resume["epoch"] == 1 and resume["global_step"] == 10
    expected = ms.load_checkpoint(str(full / "s8-w16.32.64-d1.2.1-l64-2_10.ckpt"))
    got = ms.load_checkpoint(str(parts / "s8-w16.32.64-d1.2.1-l64-2_10.ckpt"))
    for key, value in expected.items():
        if hasattr(value, "asnumpy"):
            np.testing.assert_allclose(got[key].asnumpy(), value.asnumpy(), rtol=1e-5, atol=1e-6, err_msg=key)
