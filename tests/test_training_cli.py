"""train.py / validate.py end to end on real Fashion-MNIST images (ImageNet-style folder, PNG+JPEG).

One 3-epoch run feeds several checks (loss falls, validate.py reproduces the logged top-1,
ONNX export matches MindSpore); a killed run resumes; bad inputs exit 2 with one line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "configs" / "shufflenetv2" / "shufflenet_v2_0.5_fashion_mnist_cpu.yaml"
TINY_YAML = "arch:\n  stem: 8\n  widths: [16, 32, 64]\n  depths: [1, 2, 1]\n  last: 64\n"
STEPS_PER_EPOCH = 10  # 200 training images / batch 20


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "GLOG_v": "3"}


def _common(folder: Path, arch_yaml: Path, save_dir: Path):
    return ["-c", str(DEMO), "--dataset", "imagenet", "--data_dir", str(folder), "--arch", str(arch_yaml),
            "--subset", "None", "--num_classes", "None", "--image_resize", "32", "--batch_size", "20",
            "--num_parallel_workers", "2", "--log_interval", "5", "--lr", "0.2", "--warmup_epochs", "1",
            "--decay_epochs", "2", "--ckpt_save_dir", str(save_dir)]


def _run(script: str, args, timeout=240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def _events(save_dir: Path, kind: str):
    lines = (save_dir / "train_log.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == kind]


@pytest.fixture(scope="module")
def arch_yaml(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("arch") / "tiny.yaml"
    path.write_text(TINY_YAML)
    return path


@pytest.fixture(scope="module")
def trained(fashion_mnist_folder, arch_yaml, tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("train")
    proc = _run("train.py", _common(fashion_mnist_folder, arch_yaml, save_dir)
                + ["--epoch_size", "3", "--export", "ONNX"])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return save_dir, proc


@pytest.mark.slow
def test_train_end_to_end_loss_falls(trained):
    save_dir, proc = trained
    epochs = _events(save_dir, "epoch")
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    losses = [e["train_loss"] for e in epochs]
    assert losses[-1] < losses[0] - 0.1, losses
    assert all(e["top1"] is not None and 0 <= e["top1"] <= 100 for e in epochs)
    names = sorted(p.name for p in save_dir.glob("*.ckpt"))
    assert names == ["best.ckpt"] + [f"s8-w16.32.64-d1.2.1-l64-{e}_{STEPS_PER_EPOCH}.ckpt" for e in (1, 2, 3)]
    out = proc.stdout
    assert "first step (graph compile + step)" in out and "ms/step" in out and "img/s" in out
    assert "val top1" in out and "epoch time" in out
    assert "\r" not in out  # no progress bar when stdout is not a terminal
    end = _events(save_dir, "end")[-1]
    assert end["epochs"] == 3 and end["global_step"] == 3 * STEPS_PER_EPOCH and end["compile_s"] > 0


@pytest.mark.slow
def test_validate_reproduces_logged_best_top1(trained, fashion_mnist_folder, arch_yaml):
    save_dir, _ = trained
    end = _events(save_dir, "end")[-1]
    proc = _run("validate.py", _common(fashion_mnist_folder, arch_yaml, save_dir)
                + ["--ckpt_path", save_dir / "best.ckpt"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["count"] == 60  # every val image once (6 per class x 10; batch 20 would drop none anyway)
    assert result["top1"] == pytest.approx(end["best_top1"], abs=1e-6)


@pytest.mark.slow
def test_onnx_export_matches_mindspore(trained, tiny_arch):
    import mindspore as ms
    import onnxruntime as ort

    from space import build, load_weights

    save_dir, _ = trained
    onnx_file = save_dir / "s8-w16.32.64-d1.2.1-l64.onnx"
    net = build(tiny_arch, num_classes=10)
    load_weights(net, save_dir / f"s8-w16.32.64-d1.2.1-l64-3_{STEPS_PER_EPOCH}.ckpt")  # the exported (final) net
    net.set_train(False)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    session = ort.InferenceSession(str(onnx_file))
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, net(ms.Tensor(x)).asnumpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_sigkill_after_epoch_1_then_auto_resume_matches_the_uninterrupted_run(
        trained, fashion_mnist_folder, arch_yaml, tmp_path):
    """The same command run again with --auto_resume True after a SIGKILL ends where `trained` ended."""
    import mindspore as ms

    from training import lr_schedule

    args = _common(fashion_mnist_folder, arch_yaml, tmp_path) + ["--epoch_size", "3", "--auto_resume", "True"]
    first = tmp_path / f"s8-w16.32.64-d1.2.1-l64-1_{STEPS_PER_EPOCH}.ckpt"
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *map(str, args)], cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 180
        while not first.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert first.exists(), "epoch 1 checkpoint never appeared"
    assert not (tmp_path / f"s8-w16.32.64-d1.2.1-l64-2_{STEPS_PER_EPOCH}.ckpt").exists(), "run was not killed in time"

    resumed = _run("train.py", args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (resume,) = _events(tmp_path, "resume")
    assert resume["epoch"] == 1 and resume["global_step"] == STEPS_PER_EPOCH and resume["path"] == str(first)
    assert [e["epoch"] for e in _events(tmp_path, "epoch") if e["time"] > resume["time"]] == [2, 3]
    lrs = lr_schedule(0.2, STEPS_PER_EPOCH, 3, warmup_epochs=1, decay_epochs=2)
    steps = [e for e in _events(tmp_path, "step") if e["time"] > resume["time"]]
    assert steps[0]["global_step"] == STEPS_PER_EPOCH + 5
    for e in steps:  # the LR continued from the resumed position, not from 0
        assert e["lr"] == pytest.approx(lrs[e["global_step"] - 1])

    # The outcome: the same epoch losses and the same final weights as the uninterrupted run.
    save_dir, _ = trained
    full = {e["epoch"]: e for e in _events(save_dir, "epoch")}
    for e in _events(tmp_path, "epoch"):
        if e["time"] > resume["time"]:
            assert e["train_loss"] == pytest.approx(full[e["epoch"]]["train_loss"], rel=1e-5)
            assert e["top1"] == pytest.approx(full[e["epoch"]]["top1"], abs=1e-9)
    final = f"s8-w16.32.64-d1.2.1-l64-3_{STEPS_PER_EPOCH}.ckpt"
    expected, got = ms.load_checkpoint(str(save_dir / final)), ms.load_checkpoint(str(tmp_path / final))
    for key, value in expected.items():
        if hasattr(value, "asnumpy"):
            np.testing.assert_allclose(got[key].asnumpy(), value.asnumpy(), rtol=1e-5, atol=1e-7, err_msg=key)
    assert not list(tmp_path.glob(".*tmp*"))


def _one_line_exit_2(proc: subprocess.CompletedProcess, *needles: str) -> None:
    errors = [line for line in proc.stderr.splitlines() if line.strip() and "WARNING" not in line]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_unknown_config_key_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEMO.read_text() + "\nwarmup_epoch: 3\n")
    _one_line_exit_2(_run("train.py", ["-c", bad]), "warmup_epoch", str(bad))


def test_missing_data_dir_exits_2(tmp_path):
    _one_line_exit_2(_run("train.py", ["-c", ROOT / "configs/shufflenetv2/shufflenet_v2_0.5_ascend.yaml",
                                       "--data_dir", tmp_path / "nowhere", "--distribute", "False"]), "nowhere")


def test_empty_class_folder_exits_2(fashion_mnist_folder, arch_yaml, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(fashion_mnist_folder, data)
    for f in (data / "train" / "class_03").iterdir():
        f.unlink()
    _one_line_exit_2(_run("train.py", _common(data, arch_yaml, tmp_path / "ck") + ["--epoch_size", "1"]),
                     "class_03")


@pytest.mark.slow
def test_wrong_checkpoint_exits_2(trained, fashion_mnist_folder, arch_yaml):
    save_dir, _ = trained
    args = _common(fashion_mnist_folder, arch_yaml, save_dir)
    args[args.index("--arch"):args.index("--arch") + 2] = ["--model", "shufflenet_v2_x0_5"]
    _one_line_exit_2(_run("validate.py", args + ["--ckpt_path", save_dir / "best.ckpt"]),
                     "best.ckpt", "does not fit")


@pytest.mark.slow
def test_resume_from_another_arch_exits_2(trained, fashion_mnist_folder, arch_yaml, tmp_path):
    save_dir, _ = trained
    args = _common(fashion_mnist_folder, arch_yaml, tmp_path)
    args[args.index("--arch"):args.index("--arch") + 2] = ["--model", "shufflenet_v2_x0_5"]
    _one_line_exit_2(_run("train.py", args + ["--ckpt_path", save_dir / "best.ckpt", "--resume_opt", "True"]),
                     "best.ckpt", "saved from arch s8-w16.32.64-d1.2.1-l64")


@pytest.mark.slow
def test_export_only_from_checkpoint(trained, arch_yaml, tmp_path):
    import mindspore as ms

    save_dir, _ = trained
    proc = _run("train.py", ["--arch", arch_yaml, "--dataset", "fashion_mnist", "--num_classes", "10",
                             "--epoch_size", "0", "--ckpt_path", save_dir / "best.ckpt", "--export", "MINDIR",
                             "--image_resize", "32", "--ckpt_save_dir", tmp_path, "--device_target", "CPU"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    graph = ms.nn.GraphCell(ms.load(str(tmp_path / "s8-w16.32.64-d1.2.1-l64.mindir")))
    assert graph(ms.Tensor(np.zeros((1, 3, 32, 32), np.float32))).shape == (1, 10)


def test_progress_bar_only_on_a_terminal(tmp_path):
    import io

    from training._logging import RunLog

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for stream, bar in ((io.StringIO(), False), (Terminal(), True)):
        log = RunLog(tmp_path, stream=stream)
        log.progress(1, 3, 10)
        log.event("step", "a line", loss=1.0)
        log.close()
        assert ("\r" in stream.getvalue()) is bar and stream.getvalue().endswith("a line\n")
    records = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["event"] for r in records] == ["step", "step"] and records[0]["loss"] == 1.0
