"""Zero-cost proxies and cost-model baselines on real Fashion-MNIST batches."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from evaluator.proxy import (BASELINES, DEFAULT_PROXY, PROXIES, TRAIN_DEFAULTS, TRAINING_PROXIES, ZERO_COST,
                             recipe_global_batch, score, train_score)
from space import Arch, UserError, cost


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
    result = train_score(tiny_arch, "fashion_mnist", epochs=1, subset=128, val_subset=64, batch_size=64,
                         signal="tse")
    assert result.proxy == "tse" and result.settings["steps"] == 2
    assert result.value == pytest.approx(-result.settings["tse"] / 2) and math.isfinite(result.value)
    assert 0 <= result.settings["top1"] <= 100  # the val top-1 of the same run is recorded too


def test_lr_is_scaled_from_the_global_batch_the_recipe_was_set_for():
    assert recipe_global_batch({"distribute": True, "batch_size": 64}) == 8 * 64  # MindCV: 8 devices
    assert recipe_global_batch({"distribute": False, "batch_size": 64}) == 64
    fashion = yaml.safe_load(Path("configs/shufflenetv2/shufflenet_v2_0.5_fashion_mnist_cpu.yaml").read_text())
    assert recipe_global_batch(fashion) == 64


def test_search_defaults_are_the_calibrated_proxy():
    from search import SearchConfig

    cfg = SearchConfig()
    assert cfg.proxy == DEFAULT_PROXY
    assert {k: getattr(cfg, f"proxy_{k}") for k in TRAIN_DEFAULTS} == TRAIN_DEFAULTS


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
