"""Recipe keys: MindCV's recipes load with the issue's values, CLI beats YAML, unknown keys fail."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from common import UserError
from training import KEYS, TrainConfig, make_config, parse_config
from training import read_recipe

RECIPES = Path(__file__).resolve().parent.parent / "configs" / "shufflenetv2"

# The numbers for the four recipes (MindCV's configs/shufflenetv2/*.yaml).
EXPECTED = {
    "0.5": dict(model="shufflenet_v2_x0_5", epoch_size=250, lr=0.35, warmup_epochs=4, decay_epochs=246, re_prob=0.0),
    "1.0": dict(model="shufflenet_v2_x1_0", epoch_size=300, lr=0.4, warmup_epochs=5, decay_epochs=295, re_prob=0.5),
    "1.5": dict(model="shufflenet_v2_x1_5", epoch_size=300, lr=0.5, warmup_epochs=5, decay_epochs=295, re_prob=0.5),
    "2.0": dict(model="shufflenet_v2_x2_0", epoch_size=300, lr=0.5, warmup_epochs=5, decay_epochs=295, re_prob=0.25),
}
COMMON = dict(mode=0, batch_size=64, drop_remainder=True, image_resize=224, hflip=0.5, color_jitter=0.4,
              interpolation="bilinear", crop_pct=0.875, label_smoothing=0.1, momentum=0.9, weight_decay=4e-5,
              weight_decay_filter="auto", use_nesterov=False, scheduler="cosine_decay", min_lr=0.0,
              amp_level="O3", loss_scale=1024.0, keep_checkpoint_max=30, val_while_train=True, opt="momentum",
              loss="CE", dataset="imagenet", num_classes=1000)


@pytest.mark.parametrize("width", sorted(EXPECTED))
def test_recipe_values(width):
    values = read_recipe(RECIPES / f"shufflenet_v2_{width}_ascend.yaml")
    cfg = TrainConfig(**values)
    for key, want in {**COMMON, **EXPECTED[width]}.items():
        got = getattr(cfg, key)
        assert (math.isclose(got, want) if isinstance(want, float) else got == want), (key, got, want)


def test_cli_overrides_yaml_and_every_key_is_a_flag():
    path = str(RECIPES / "shufflenet_v2_0.5_ascend.yaml")
    cfg = parse_config(["-c", path, "--data_dir", "/d", "--distribute", "False", "--lr", "0.1",
                        "--scale", "0.5,1.0", "--num_classes", "10", "--export", "onnx"], "train.py", "t")
    assert (cfg.data_dir, cfg.distribute, cfg.lr, cfg.scale, cfg.num_classes) == ("/d", False, 0.1, (0.5, 1.0), 10)
    assert cfg.export == "ONNX" and cfg.epoch_size == 250  # untouched YAML value stays
    default = TrainConfig()
    argv = []
    for key in KEYS:  # every key is a flag; its default, written as text, parses back to itself
        value = getattr(default, key)
        argv += [f"--{key}", ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
    assert parse_config(argv, "train.py", "t") == default


def test_unknown_keys_are_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: 0.1\nlearning_rte: 0.2\nwarmup: 3\n")
    with pytest.raises(UserError, match="learning_rte, warmup"):
        read_recipe(bad)
    with pytest.raises(UserError, match="bogus"):
        make_config({"bogus": 1})
    with pytest.raises(SystemExit) as exc:
        parse_config(["--bogus_flag", "1"], "train.py", "t")
    assert exc.value.code == 2


def test_bad_values_are_user_errors():
    with pytest.raises(UserError, match="lr"):
        make_config({"lr": "fast"})
    with pytest.raises(UserError, match="export"):
        make_config({"export": "TFLITE"})
    with pytest.raises(UserError, match="resume_opt"):
        make_config({"resume_opt": True})
    with pytest.raises(UserError, match="amp_level"):
        make_config({"amp_level": "O9"})
