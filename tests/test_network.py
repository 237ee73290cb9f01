"""space.build / create_model: MindCV layout, parameter counts, forward shapes, checkpoints."""

from pathlib import Path

import mindspore as ms
import numpy as np
import pytest

from common import UserError
from space import REFERENCES, Arch, build, cost, create_model, load_weights, reference


def _inputs(size: int, batch: int = 2, seed: int = 0) -> ms.Tensor:
    return ms.Tensor(np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32))


def _count(net, trainable: bool) -> int:
    params = net.trainable_params() if trainable else net.get_parameters()
    return sum(int(np.prod(p.shape)) for p in params)


@pytest.mark.parametrize("name", list(REFERENCES))
def test_reference_param_counts(name):
    net = build(reference(name))
    assert _count(net, trainable=True) == REFERENCES[name].params_trainable
    assert _count(net, trainable=False) == REFERENCES[name].params_with_bn_stats


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REFERENCES))
def test_reference_forward_224(name):
    net = build(reference(name))
    net.set_train(False)
    assert net(_inputs(224, batch=1)).shape == (1, 1000)


def _mindcv_layout_x0_5() -> dict:
    """Parameter names and shapes of MindCV's shufflenet_v2_x0_5, written out from its structure."""
    shapes = {}

    def conv(name, cout, cin, k=1):
        shapes[f"{name}.weight"] = (cout, cin, k, k)

    def bn(name, c):
        for suffix in ("gamma", "beta", "moving_mean", "moving_variance"):
            shapes[f"{name}.{suffix}"] = (c,)

    conv("first_conv.0", 24, 3, 3)
    bn("first_conv.1", 24)
    index, cin = 0, 24
    for width, depth in ((48, 4), (96, 8), (192, 4)):
        for i in range(depth):
            p = f"features.{index}"
            mid = width // 2
            if i == 0:
                conv(f"{p}.branch_proj.0", cin, 1, 3)
                bn(f"{p}.branch_proj.1", cin)
                conv(f"{p}.branch_proj.2", cin, cin)
                bn(f"{p}.branch_proj.3", cin)
                main_in, main_out = cin, width - cin
            else:
                main_in, main_out = mid, mid
            conv(f"{p}.branch_main.0", mid, main_in)
            bn(f"{p}.branch_main.1", mid)
            conv(f"{p}.branch_main.3", mid, 1, 3)
            bn(f"{p}.branch_main.4", mid)
            conv(f"{p}.branch_main.5", main_out, mid)
            bn(f"{p}.branch_main.6", main_out)
            index, cin = index + 1, width
    conv("conv_last.0", 1024, 192)
    bn("conv_last.1", 1024)
    shapes["classifier.weight"] = (1000, 1024)
    return shapes


def test_mindcv_parameter_layout_x0_5():
    net = build(reference("x0_5"))
    ours = {p.name: tuple(p.shape) for p in net.get_parameters()}
    assert ours == _mindcv_layout_x0_5()


def test_mindcv_weight_init_scales():
    ms.set_seed(0)  # a fixed draw: the std of a 216-value depthwise weight varies by ~5 % between draws
    net = build(reference("x0_5"))
    params = {p.name: p.asnumpy() for p in net.get_parameters()}
    assert params["first_conv.0.weight"].std() == pytest.approx(0.01, rel=0.15)
    assert params["classifier.weight"].std() == pytest.approx(0.01, rel=0.05)
    assert params["features.0.branch_main.0.weight"].std() == pytest.approx(1 / 24, rel=0.1)  # 1/fan-in per group
    assert params["features.1.branch_main.3.weight"].std() == pytest.approx(1.0, rel=0.1)  # depthwise: 1/1
    assert np.all(params["features.0.branch_main.1.gamma"] == 1)


@pytest.fixture(scope="module")
def tiny_net(tiny_arch):
    ms.set_seed(0)
    net = build(tiny_arch, num_classes=10)
    net.set_train(False)
    return net


def test_tiny_forward_and_feature_sizes_match_cost(tiny_net, tiny_arch):
    x = _inputs(64)
    features = tiny_net.forward_features(x)
    expected = {r.name: r.out_size for r in cost(tiny_arch, resolution=64).layers}
    last_block = sum(tiny_arch.depths) - 1
    assert features.shape == (2, tiny_arch.widths[-1], expected[f"features.{last_block}.branch_main.3"],
                              expected[f"features.{last_block}.branch_main.3"])
    assert tiny_net(x).shape == (2, 10)


def test_checkpoint_round_trip_gives_identical_logits(tiny_net, tiny_arch, tmp_path: Path):
    x = _inputs(32)
    before = tiny_net(x).asnumpy()
    path = tmp_path / "tiny.ckpt"
    ms.save_checkpoint(tiny_net, str(path))
    ms.set_seed(123)  # a different init, overwritten by the checkpoint
    loaded = create_model(tiny_arch, num_classes=10, checkpoint=path)
    loaded.set_train(False)
    np.testing.assert_array_equal(loaded(x).asnumpy(), before)


def test_pynative_matches_graph(tiny_net):
    x = _inputs(32, seed=1)
    graph = tiny_net(x).asnumpy()
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        pynative = tiny_net(x).asnumpy()
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)
    np.testing.assert_allclose(pynative, graph, rtol=1e-4, atol=1e-5)


def test_larger_kernels_keep_shapes():
    arch = Arch(stem=8, widths=(16, 32, 64), depths=(1, 1, 1), last=32, kernels=(5, 7, 3))
    net = build(arch, num_classes=4)
    net.set_train(False)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        assert net(_inputs(32)).shape == (2, 4)
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)
    assert sum(int(np.prod(p.shape)) for p in net.trainable_params()) == cost(arch, 32, num_classes=4).params


def test_wrong_checkpoint_is_a_clear_error(tiny_net, tmp_path: Path):
    path = tmp_path / "tiny.ckpt"
    ms.save_checkpoint(tiny_net, str(path))
    other = Arch(stem=8, widths=(16, 32, 64), depths=(1, 1, 1), last=64)
    with pytest.raises(UserError, match="does not fit arch .*missing"):
        load_weights(build(other, num_classes=10), path)
    wider = Arch(stem=8, widths=(16, 32, 96), depths=(1, 2, 1), last=64)
    with pytest.raises(UserError, match="of another shape"):
        load_weights(build(wider, num_classes=10), path)
    with pytest.raises(UserError, match="does not fit"):
        load_weights(build(tiny_net.arch, num_classes=5), path)
    load_weights(build(tiny_net.arch, num_classes=5), path, strict=False)  # fine-tuning: new head
    with pytest.raises(UserError, match="does not exist"):
        load_weights(tiny_net, tmp_path / "none.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        load_weights(tiny_net, tmp_path / "junk.ckpt")


def test_create_model_resolves_names_and_files(tmp_path: Path):
    assert create_model("shufflenet_v2_x0_5").arch == reference("x0_5")
    path = tmp_path / "arch.yaml"
    reference("x1_0").save(path)
    assert create_model(str(path)).arch == reference("x1_0")
    with pytest.raises(UserError, match="neither a reference"):
        create_model("resnet50")
    with pytest.raises(UserError, match="does not exist"):
        create_model(str(tmp_path / "missing.yaml"))
