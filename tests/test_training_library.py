"""training.train as a library (what the short-training proxy calls): callbacks, budgets, divergence."""

from __future__ import annotations

import io

import pytest

import training

BASE = dict(dataset="fashion_mnist", subset=200, image_resize=32, batch_size=20, num_parallel_workers=2,
            lr=0.2, warmup_epochs=1, decay_epochs=2, epoch_size=3, log_interval=100, label_smoothing=0.1,
            weight_decay=4e-5, dataset_sink_mode=False, device_target="CPU")


@pytest.mark.slow
def test_budget_callback_and_result_fields(tiny_arch, tmp_path):
    """max_steps ends epoch 1 early, the epoch is still evaluated, then the callback asks to stop."""
    calls = []

    def pruner(epoch, metrics):
        calls.append((epoch, dict(metrics)))
        return True  # "prune" at the first report

    out = io.StringIO()
    result = training.train(dict(BASE, ckpt_save_dir=str(tmp_path), max_steps=6), arch=tiny_arch,
                            callbacks=[pruner], stream=out)
    assert [c[0] for c in calls] == [1]
    assert {"top1", "top5", "val_loss", "train_loss", "lr", "epoch_s", "img_per_s"} <= set(calls[0][1])
    assert result.stopped_by_max_steps and result.stopped_by_callback
    assert result.epochs == 1 and result.global_step == 6 and len(result.curve) == 1
    assert result.top1 == calls[0][1]["top1"] == result.curve[0].top1 and 0 <= result.top1 <= result.top5 <= 100
    assert result.img_per_s > 0 and result.compile_s > 0
    assert "stopped after epoch 1" in out.getvalue()
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["best.ckpt", "s8-w16.32.64-d1.2.1-l64-1_10.ckpt"]


@pytest.mark.slow
def test_divergence_raises_a_catchable_error(tiny_arch, tmp_path):
    # A learning rate of 1e8 without warmup blows the weights up after the first update.
    with pytest.raises(training.TrainingDiverged) as exc:
        training.train(dict(BASE, ckpt_save_dir=str(tmp_path), lr=1e8, warmup_epochs=0), arch=tiny_arch,
                       stream=io.StringIO())
    assert exc.value.epoch == 1 and 2 <= exc.value.step <= 3, exc.value
    assert "not finite" in exc.value.reason or "> bound" in exc.value.reason


def test_mindir_export_loads_and_matches(tiny_arch, tmp_path):
    import mindspore as ms
    import numpy as np

    from space import build

    net = build(tiny_arch, num_classes=10)
    path = training.export_network(net, tmp_path / "tiny", "MINDIR", resolution=32)
    assert path.name == "tiny.mindir"
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
    graph = ms.nn.GraphCell(ms.load(str(path)))
    np.testing.assert_allclose(graph(ms.Tensor(x)).asnumpy(), net(ms.Tensor(x)).asnumpy(), rtol=1e-5, atol=1e-6)
