"""LR schedule values against the formula; weight-decay groups hold exactly the conv/dense weights."""

from __future__ import annotations

import math

import pytest

from training import lr_schedule
from training._optim import decay_groups, param_groups


def test_warmup_then_cosine_at_given_steps():
    spe, lr, min_lr = 10, 0.35, 0.01
    lrs = lr_schedule(lr, spe, epochs=10, warmup_epochs=2, decay_epochs=6, min_lr=min_lr)
    assert len(lrs) == 100
    # warmup: lr * i / (spe * warmup_epochs), from exactly 0
    assert lrs[0] == 0.0
    assert lrs[5] == pytest.approx(lr * 5 / 20)
    assert lrs[19] == pytest.approx(lr * 19 / 20)
    # cosine over decay_epochs, per step: t = (i - warmup_steps) / spe
    for i in (20, 21, 35, 50, 79):
        t = (i - 20) / spe
        assert lrs[i] == pytest.approx(min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * t / 6))), i
    assert lrs[20] == pytest.approx(lr)
    assert lrs[50] == pytest.approx(min_lr + 0.5 * (lr - min_lr))  # half-way: t = 3 of 6
    # past warmup + decay: min_lr
    assert lrs[80:] == [min_lr] * 20


def test_x0_5_recipe_lengths_and_end():
    spe = 2502  # 1,281,167 images / (8 x 64)
    lrs = lr_schedule(0.35, spe, epochs=250, warmup_epochs=4, decay_epochs=246, min_lr=0.0)
    assert len(lrs) == 250 * spe
    assert lrs[4 * spe] == pytest.approx(0.35) and max(lrs) == pytest.approx(0.35)
    assert lrs[-1] == pytest.approx(0.5 * 0.35 * (1 + math.cos(math.pi * (246 * spe - 1) / spe / 246)))
    assert all(a <= b for a, b in zip(lrs[:4 * spe], lrs[1:4 * spe + 1]))  # warmup rises monotonically


def test_epoch_stair_and_warmup_factor():
    lrs = lr_schedule(1.0, 4, epochs=4, warmup_epochs=2, decay_epochs=2, warmup_factor=0.1, lr_epoch_stair=True)
    assert lrs[:8] == pytest.approx([0.1] * 4 + [0.55] * 4)
    assert lrs[8:] == pytest.approx([1.0] * 4 + [0.5] * 4)


def test_weight_decay_only_on_conv_and_dense_weights(tiny_arch):
    from mindspore import nn

    from space import build

    net = build(tiny_arch, num_classes=10)
    params = net.trainable_params()
    cells = dict(net.cells_and_names())
    weight_owners = {}
    for name, cell in cells.items():
        if isinstance(cell, (nn.Conv2d, nn.Dense)):
            weight_owners[f"{name}.weight"] = cell
            assert getattr(cell, "bias", None) is None or not cell.has_bias, name
    decay, no_decay = decay_groups(params)
    assert {p.name for p in decay} == set(weight_owners)
    bn = {f"{n}.{w}" for n, c in cells.items() if isinstance(c, nn.BatchNorm2d) for w in ("gamma", "beta")}
    assert {p.name for p in no_decay} == bn
    assert len(decay) + len(no_decay) == len(params)
    groups = param_groups(params, 4e-5)
    assert [g.get("weight_decay") for g in groups] == [4e-5, 0.0, None]
    assert groups[2]["order_params"] == list(params)
    assert param_groups(params, 4e-5, "disable")[0]["params"] == list(params)
