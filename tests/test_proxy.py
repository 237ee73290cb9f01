"""Zero-cost proxies and cost-model baselines on real Fashion-MNIST batches."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from evaluator.proxy import (BASELINES, PROXIES, TRAINING_PROXIES, ZERO_COST,
                             recipe_global_batch, score, train_score)
from common import UserError
from space import Arch, cost


@pytest.mark.parametrize("proxy", [p for p in PROXIES if p not in TRAINING_PROXIES])
def test_each_proxy_is_finite_and_deterministic(tiny_arch, proxy):
    first = score(tiny_arch, proxy, "fashion_mnist", seed=3, resolution=32, batch_size=32)
    again = score(tiny_arch, proxy, "fashion_mnist", seed=3, resolution=32, batch_size=32)
    assert math.isfinite(first.value)
    assert first.value == again.value
    assert first.seconds >= 0 and first.proxy == proxy and first.arch == tiny_arch.name


def test_seed_changes_network_proxies(tiny_arch):
    values = {score(tiny_arch, "snip", seed=s, resolution=32, batch_size=32).value for s in (0, 1)}
    assert len(values) == 2


def test_baselines_come_from_the_cost_model(tiny_arch):
    assert score(tiny_arch, "params", resolution=32).value == cost(tiny_arch, 32).params
    assert score(tiny_arch, "flops", resolution=64).value == cost(tiny_arch, 64).flops
    assert set(BASELINES) | set(ZERO_COST) | set(TRAINING_PROXIES) == set(PROXIES)


def test_naswot_grows_with_distinguishable_activations(tiny_arch):
    wider = Arch(stem=8, widths=(32, 64, 128), depths=(1, 2, 1), last=128)
    assert (score(wider, "naswot", resolution=32, batch_size=32).value
            > score(tiny_arch, "naswot", resolution=32, batch_size=32).value)


def test_folder_data(tiny_arch, fashion_mnist_folder):
    result = score(tiny_arch, "grad_norm", str(fashion_mnist_folder), resolution=32, batch_size=16)
    assert math.isfinite(result.value) and result.value > 0


def test_bad_inputs(tiny_arch, tmp_path):
    with pytest.raises(UserError, match="unknown proxy 'zen'"):
        score(tiny_arch, "zen")
    with pytest.raises(UserError, match="neither 'fashion_mnist' nor an existing folder"):
        score(tiny_arch, "naswot", str(tmp_path / "missing"))
    with pytest.raises(UserError, match="at least 32 px"):
        score(tiny_arch, "naswot", resolution=16)


@pytest.mark.slow
def test_short_training_proxy_reports_each_epoch_and_can_stop(tiny_arch):
    seen = []

    def on_epoch(epoch, top1):
        seen.append((epoch, top1))
        return epoch >= 2  # a pruner's "stop" after the second epoch

    result = train_score(tiny_arch, "fashion_mnist", epochs=3, subset=600, val_subset=200, batch_size=64,
                         on_epoch=on_epoch)
    assert [e for e, _ in seen] == [1, 2]
    assert result.settings["val_subset"] == 200
    assert result.settings["stopped_by_callback"] is True
    assert len(result.settings["curve"]) == 2
    assert result.value == seen[-1][1] and 0 <= result.value <= 100
    assert result.settings["lr"] == pytest.approx(0.05)  # the Fashion-MNIST recipe's, set for batch 64
    # The free signals of the same run: 2 epochs of 600 // 64 = 9 steps each.
    losses = [c["train_loss"] for c in result.settings["curve"]]
    assert result.settings["steps"] == 18
    assert result.settings["tse"] == pytest.approx(9 * sum(losses), rel=1e-6)  # sum of step losses
    assert result.settings["tse_per_step"] == pytest.approx(result.settings["tse"] / 18)
    assert 0 < result.settings["final_train_loss"] < 10


@pytest.mark.slow
def test_tse_proxy_is_minus_the_mean_step_loss(tiny_arch):
    seen = []
    result = train_score(tiny_arch, "fashion_mnist", epochs=2, subset=128, val_subset=64, batch_size=64,
                         signal="tse", on_epoch=lambda epoch, value: seen.append(value) and False)
    assert result.proxy == "tse" and result.settings["steps"] == 4
    assert result.value == pytest.approx(-result.settings["tse"] / 4) and math.isfinite(result.value)
    assert 0 <= result.settings["top1"] <= 100  # the val top-1 of the same run is recorded too
    # A pruner sees TSE so far, epoch by epoch, ending at the trial's value (not val top-1)
    losses = [c["train_loss"] for c in result.settings["curve"]]
    assert seen == pytest.approx([-losses[0], result.value], rel=1e-6)


def test_lr_is_scaled_from_the_global_batch_the_recipe_was_set_for():
    assert recipe_global_batch({"distribute": True, "batch_size": 64}) == 8 * 64  # MindCV: 8 devices
    assert recipe_global_batch({"distribute": False, "batch_size": 64}) == 64
    fashion = yaml.safe_load(Path("configs/shufflenetv2/shufflenet_v2_0.5_fashion_mnist_cpu.yaml").read_text())
    assert recipe_global_batch(fashion) == 64


def test_short_training_proxy_bad_settings(tiny_arch, tmp_path):
    with pytest.raises(UserError, match="warmup_epochs must be at least 0"):
        train_score(tiny_arch, epochs=2, warmup_epochs=-1)
    with pytest.raises(UserError, match="recipe .* does not exist"):
        train_score(tiny_arch, recipe=tmp_path / "none.yaml")


def test_short_training_proxy_diverging_loss_is_an_error(tiny_arch):
    from training import TrainingDiverged

    with pytest.raises(TrainingDiverged):
        train_score(tiny_arch, "fashion_mnist", epochs=1, subset=300, batch_size=64, lr=1e6, warmup_epochs=0)


@pytest.mark.slow
def test_zero_cost_then_train_proxy_in_one_fresh_process(tiny_arch):
    # A zero-cost proxy starts MindSpore's runtime; the train proxy must not then fail to select
    # the device it is already on (MindSpore 2.4+ refuses set_device once kernels have run).
    code = ("import json, sys; from space import Arch; from evaluator.proxy import score, train_score; "
            "a = Arch.from_dict(json.loads(sys.argv[1])); score(a, 'naswot', resolution=32, batch_size=16); "
            "print(train_score(a, epochs=1, subset=64, val_subset=64, resolution=32, batch_size=32).value)")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(tiny_arch.to_dict())], capture_output=True,
                          text=True, timeout=300, cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 0 <= float(done.stdout.strip().splitlines()[-1]) <= 100


# ----- golden values: each zero-cost proxy of a 2-layer net, worked out by hand in NumPy -----

W1 = np.array([[0.5, -1.0, 0.25, 0.0], [-0.3, 0.8, 0.1, -0.6], [0.7, 0.2, -0.9, 0.4]], np.float32)  # (3, 4)
W2 = np.array([[0.6, -0.4, 0.3], [-0.2, 0.9, -0.7]], np.float32)  # (2, 3)
X = np.array([[1.0, 0.5, -1.0, 2.0], [-0.5, 1.5, 0.3, -1.0], [0.2, -0.7, 1.1, 0.4],
              [1.3, 0.1, -0.2, -0.8], [-1.1, -0.4, 0.9, 0.6]], np.float32)
Y = np.array([0, 1, 1, 0, 1], np.int32)


def _two_layer_net():
    import mindspore as ms
    from mindspore import nn

    net = nn.SequentialCell([nn.Dense(4, 3, has_bias=False), nn.ReLU(), nn.Dense(3, 2, has_bias=False)])
    net[0].weight.set_data(ms.Tensor(W1))
    net[2].weight.set_data(ms.Tensor(W2))
    return net


def _hand_ce_grads():
    """Cross-entropy (mean over the batch) gradients of W1 and W2, by the chain rule."""
    pre = X.astype(np.float64) @ W1.T
    h = np.maximum(pre, 0)
    logits = h @ W2.T
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    d_logits = (p - np.eye(2)[Y]) / len(Y)
    d_w2 = d_logits.T @ h
    d_w1 = ((d_logits @ W2) * (pre > 0)).T @ X
    return d_w1, d_w2


@pytest.mark.parametrize("proxy", ["naswot", "synflow", "grad_norm", "snip"])
def test_zero_cost_proxies_match_hand_computed_values(proxy):
    import mindspore as ms

    from evaluator._zero_cost import NETWORK_PROXIES

    if proxy == "naswot":  # K[i, j] = units where i and j agree; log|det K|
        c = (X.astype(np.float64) @ W1.T > 0).astype(np.float64)
        expected = np.linalg.slogdet(c @ c.T + (1 - c) @ (1 - c).T)[1]
    elif proxy == "synflow":  # |W|, all-ones input: R = 1'|W2||W1|1, and sum theta dR/dtheta = 2R per layer pair
        expected = math.log(2 * np.abs(W2).astype(np.float64).sum(0) @ np.abs(W1).astype(np.float64).sum(1))
    else:
        d_w1, d_w2 = _hand_ce_grads()
        expected = (np.linalg.norm(d_w1) + np.linalg.norm(d_w2) if proxy == "grad_norm"
                    else np.abs(W1 * d_w1).sum() + np.abs(W2 * d_w2).sum())
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        got = NETWORK_PROXIES[proxy](_two_layer_net(), ms.Tensor(X), ms.Tensor(Y))
    finally:
        ms.set_context(mode=previous)
    assert got == pytest.approx(expected, rel=1e-5)
