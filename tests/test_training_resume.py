"""A resumed run continues the interrupted one: same losses, learning rates and final weights.

The outcome is compared with an uninterrupted run of the same seed (not just the epoch
counter): the data order and augmentation of every epoch, the optimizer's momentum buffers
and step, BatchNorm statistics and the best-so-far top-1 all have to come back for the
numbers to match. Also: mismatched checkpoints are clear errors; a SIGKILL in the middle of a
checkpoint write leaves the previous checkpoint whole and the resume uses it.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import training
from common import UserError
from training._checkpoint import STATE_KEY, RunState

ROOT = Path(__file__).resolve().parent.parent
# Random-resized-crop, flip and colour jitter stay on: the augmentation of epoch 2 must repeat too.
BASE = dict(dataset="fashion_mnist", subset=200, image_resize=32, batch_size=20, num_parallel_workers=2,
            lr=0.2, warmup_epochs=1, decay_epochs=1, epoch_size=2, log_interval=1, label_smoothing=0.1,
            weight_decay=4e-5, scale=(0.5, 1.0), dataset_sink_mode=False, device_target="CPU",
            keep_checkpoint_max=5, seed=7)
LABEL = "s8-w16.32.64-d1.2.1-l64"


def _steps(folder: Path):
    events = [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
    return [(e["global_step"], e["loss"], e["lr"]) for e in events if e["event"] == "step"]


def _tensors(path: Path):
    import mindspore as ms

    return {k: v.asnumpy() for k, v in ms.load_checkpoint(str(path)).items() if hasattr(v, "asnumpy")}


def _stop_after_first_epoch(epoch, metrics):
    return True  # as if killed right after the epoch-1 checkpoint was written


@pytest.fixture(scope="module")
def uninterrupted(tiny_arch, tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted")
    result = training.train(dict(BASE, ckpt_save_dir=str(folder)), arch=tiny_arch, stream=io.StringIO())
    return folder, result


@pytest.fixture(scope="module")
def interrupted(tiny_arch, tmp_path_factory):
    """Epoch 1 of the same run, stopped there (its checkpoint written), and nothing more."""
    folder = tmp_path_factory.mktemp("interrupted")
    result = training.train(dict(BASE, ckpt_save_dir=str(folder)), arch=tiny_arch,
                            callbacks=[_stop_after_first_epoch], stream=io.StringIO())
    assert result.epochs == 1 and result.global_step == 10
    return folder


@pytest.mark.slow
def test_resumed_run_matches_uninterrupted(uninterrupted, interrupted, tiny_arch, tmp_path):
    import shutil

    folder = tmp_path / "resumed"
    shutil.copytree(interrupted, folder)
    out = io.StringIO()
    resumed = training.train(dict(BASE, ckpt_save_dir=str(folder), auto_resume=True), arch=tiny_arch, stream=out)
    assert f"resumed from {folder / (LABEL + '-1_10.ckpt')}" in out.getvalue()

    full_dir, full = uninterrupted
    expected, got = _steps(full_dir), _steps(folder)
    assert [s for s, _, _ in got] == list(range(1, 21)) == [s for s, _, _ in expected]
    np.testing.assert_allclose([loss for _, loss, _ in got], [loss for _, loss, _ in expected], rtol=1e-5)
    np.testing.assert_allclose([lr for _, _, lr in got], [lr for _, _, lr in expected], rtol=1e-7)

    final_full, final_resumed = _tensors(full_dir / f"{LABEL}-2_10.ckpt"), _tensors(folder / f"{LABEL}-2_10.ckpt")
    assert set(final_full) == set(final_resumed)
    assert any(k.startswith("moments.") for k in final_full) and any("moving_mean" in k for k in final_full)
    for key, value in final_full.items():  # weights, BN statistics, momentum buffers, step
        np.testing.assert_allclose(final_resumed[key], value, rtol=1e-5, atol=1e-7, err_msg=key)

    assert resumed.top1 == pytest.approx(full.top1, abs=1e-9)
    assert (resumed.best_top1, resumed.best_epoch) == (full.best_top1, full.best_epoch)
    best_full, best_resumed = _tensors(full_dir / training.BEST), _tensors(folder / training.BEST)
    for key, value in best_full.items():  # the same epoch's model is best in both runs
        np.testing.assert_array_equal(best_resumed[key], value, err_msg=key)


def _rewrite_state(path: Path, **changes) -> None:
    """Rewrite the run state stored in checkpoint ``path`` (tensors unchanged)."""
    import dataclasses

    import mindspore as ms

    params = ms.load_checkpoint(str(path))
    state = dataclasses.replace(RunState.from_json(params.pop(STATE_KEY)), **changes)
    append = {k: int(params.pop(k).asnumpy()) for k in ("epoch_num", "step_num")}
    ms.save_checkpoint([{"name": k, "data": v} for k, v in params.items()], str(path),
                       append_dict={**append, STATE_KEY: state.to_json()})


@pytest.mark.slow
def test_best_checkpoint_is_not_replaced_by_a_worse_epoch_after_resume(interrupted, tiny_arch, tmp_path):
    import shutil

    folder = tmp_path / "resumed"
    shutil.copytree(interrupted, folder)
    # The run so far reached 100 % at epoch 1 (written into the epoch checkpoint's state):
    # epoch 2 cannot beat that, so best.ckpt must stay the file it is.
    _rewrite_state(folder / f"{LABEL}-1_10.ckpt", best_top1=100.0, best_epoch=1)
    best_before = (folder / training.BEST).read_bytes()
    result = training.train(dict(BASE, ckpt_save_dir=str(folder), auto_resume=True), arch=tiny_arch,
                            stream=io.StringIO())
    assert result.epochs == 2 and result.top1 < 100.0
    assert (result.best_top1, result.best_epoch) == (100.0, 1)
    assert (folder / training.BEST).read_bytes() == best_before
    saved = RunState.from_json(_raw_state(folder / f"{LABEL}-2_10.ckpt"))
    assert (saved.best_top1, saved.best_epoch) == (100.0, 1)  # carried on for the next resume


def _raw_state(path: Path) -> str:
    import mindspore as ms

    return ms.load_checkpoint(str(path))[STATE_KEY]


def _resume_error(interrupted: Path, tmp_path: Path, **overrides) -> str:
    arch = overrides.pop("arch", None)
    with pytest.raises(UserError) as exc:
        training.train(dict(BASE, ckpt_save_dir=str(tmp_path), ckpt_path=str(interrupted / f"{LABEL}-1_10.ckpt"),
                            resume_opt=True, **overrides), arch=arch, stream=io.StringIO())
    return str(exc.value)


@pytest.mark.slow
def test_mismatched_checkpoints_are_clear_errors(interrupted, tiny_arch, tmp_path):
    import mindspore as ms

    from space import Arch

    other = Arch(stem=8, widths=(16, 32, 64), depths=(1, 1, 1), last=64)
    assert "saved from arch s8-w16.32.64-d1.2.1-l64, not s8-w16.32.64-d1.1.1-l64" in \
        _resume_error(interrupted, tmp_path, arch=other)
    assert "has 10 classes, this run 12" in _resume_error(interrupted, tmp_path, arch=tiny_arch, num_classes=12)
    assert "optimizer momentum, this run uses momentum+nesterov" in \
        _resume_error(interrupted, tmp_path, arch=tiny_arch, use_nesterov=True)

    # A checkpoint holding another optimizer's state (Adam's buffers, no momentum).
    params = ms.load_checkpoint(str(interrupted / f"{LABEL}-1_10.ckpt"))
    adam = [{"name": k.replace("moments.", "adam_m."), "data": v} for k, v in params.items()
            if hasattr(v, "asnumpy") and k not in ("epoch_num", "step_num")]
    adam_file = tmp_path / "adam.ckpt"
    ms.save_checkpoint(adam, str(adam_file), append_dict={"epoch_num": 1, "step_num": 10})
    with pytest.raises(UserError, match="another optimizer \\(adam_m\\)"):
        training.train(dict(BASE, ckpt_save_dir=str(tmp_path), ckpt_path=str(adam_file), resume_opt=True),
                       arch=tiny_arch, stream=io.StringIO())


@pytest.mark.slow
def test_weights_only_checkpoint_resumes_weights_with_a_notice(interrupted, tiny_arch, tmp_path):
    """A MindCV-style checkpoint (weights only, no optimizer state) starts a new run from its weights."""
    import mindspore as ms

    from space import build, load_weights

    net = build(tiny_arch, num_classes=10)
    load_weights(net, interrupted / f"{LABEL}-1_10.ckpt")
    weights_only = tmp_path / "weights.ckpt"
    ms.save_checkpoint(net, str(weights_only))
    out = io.StringIO()
    result = training.train(dict(BASE, ckpt_save_dir=str(tmp_path / "run"), ckpt_path=str(weights_only),
                                 resume_opt=True, max_steps=2), arch=tiny_arch, stream=out)
    notes = [line for line in out.getvalue().splitlines() if "holds weights only" in line]
    assert len(notes) == 1 and "from epoch 0" in notes[0]
    assert result.epochs == 1 and result.global_step == 2


_WRITER = """
import sys
from space import build, reference
from training._checkpoint import CheckpointManager, RunState
from training._config import TrainConfig
from training._optim import create_optimizer

net = build(reference("x2_0"), num_classes=1000)     # ~90 MB with its moments: writes take a while
opt = create_optimizer(net.trainable_params(), TrainConfig(), [0.1] * 1000)
manager = CheckpointManager(sys.argv[1], "shufflenet_v2_x2_0", keep=0)
for epoch in range(1, 1000):
    manager.save_epoch(net, opt, RunState(epoch=epoch, global_step=10 * epoch, steps_per_epoch=10,
                       arch_key=net.arch.key, arch_name=net.arch.name, num_classes=1000, optimizer="momentum",
                       loss_scale=1.0, seed=0))
    print(epoch, flush=True)
"""


@pytest.mark.slow
def test_sigkill_during_a_checkpoint_write_leaves_the_previous_one_for_resume(tmp_path):
    from training._checkpoint import CheckpointManager, restore
    from training._checkpoint import latest_checkpoint
    from training._config import TrainConfig
    from training._optim import create_optimizer
    from space import build, reference

    folder = tmp_path / "ckpt"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(folder)], cwd=ROOT,
                            env={"PYTHONPATH": str(ROOT), "GLOG_v": "3", "PATH": "/usr/bin:/bin"},
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == "1", "the writer never finished its first checkpoint"
        deadline = time.time() + 120
        caught = None
        while caught is None and time.time() < deadline and proc.poll() is None:
            caught = next(iter(folder.glob(".*.tmp.ckpt")), None)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert caught is not None, "never saw a checkpoint being written"
    assert list(folder.glob(".*.tmp.ckpt")), "the kill did not land during a write"

    finished = sorted(p.name for p in folder.glob("*.ckpt"))
    assert finished, "no finished checkpoint"
    newest, skipped = latest_checkpoint(folder, "shufflenet_v2_x2_0")
    assert newest is not None and not skipped
    net = build(reference("x2_0"), num_classes=1000)
    opt = create_optimizer(net.trainable_params(), TrainConfig(), [0.1] * 1000)
    state = restore(newest, net, opt)
    assert newest.name == f"shufflenet_v2_x2_0-{state.epoch}_10.ckpt" and state.epoch >= 1
    CheckpointManager(folder, "shufflenet_v2_x2_0", keep=0)  # a new run clears what the kill left
    assert not list(folder.glob(".*tmp*"))
