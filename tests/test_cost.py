"""space.cost against the reference numbers, and its internal consistency."""

import pytest

from space import REFERENCES, Arch, cost, reference


@pytest.mark.parametrize("name", list(REFERENCES))
def test_reference_params_exact(name):
    ref = REFERENCES[name]
    c = cost(ref.arch)
    assert c.params == ref.params_trainable
    assert c.params_with_bn_stats == ref.params_with_bn_stats


@pytest.mark.parametrize("name", list(REFERENCES))
def test_reference_flops_match_paper(name):
    ref = REFERENCES[name]
    assert cost(ref.arch).mflops == pytest.approx(ref.paper_mflops, rel=0.015)


@pytest.mark.parametrize("arch", [Arch(stem=8, widths=(16, 32, 64), depths=(1, 2, 1), last=64),
                                  Arch(stem=16, widths=(40, 88, 200), depths=(2, 1, 3), last=128, kernels=(5, 3, 7))])
def test_counts_match_the_built_network(arch):
    """Params, output sizes and multiply-adds of every conv and dense layer, taken from the real
    MindSpore network (its parameters, and the output shapes of a PyNative forward pass), not
    from the cost model's own arithmetic."""
    import mindspore as ms
    import numpy as np
    from mindspore import nn

    from space import build

    resolution = 48
    net = build(arch, num_classes=10)
    shapes = {}
    hooks = [cell.register_forward_hook(lambda c, i, o, name=name: shapes.__setitem__(name, o.shape))
             for name, cell in net.cells_and_names() if isinstance(cell, (nn.Conv2d, nn.Dense))]
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        net.set_train(False)
        net(ms.Tensor(np.zeros((1, 3, resolution, resolution), np.float32)))
    finally:
        ms.set_context(mode=previous)
        for h in hooks:
            h.remove()
    macs = {}
    for name, cell in net.cells_and_names():
        if isinstance(cell, nn.Conv2d):
            _, out_c, out_h, out_w = shapes[name]
            k = cell.kernel_size[0]
            macs[name] = out_c * out_h * out_w * (cell.in_channels // cell.group) * k * k
        elif isinstance(cell, nn.Dense):
            macs[name] = cell.in_channels * cell.out_channels
    c = cost(arch, resolution=resolution, num_classes=10)
    rows = {r.name: r for r in c.layers if r.op in ("conv", "dwconv", "dense")}
    assert set(rows) == set(macs)
    for name, row in rows.items():
        assert row.flops == macs[name], name
        if row.op != "dense":
            assert row.out_size == shapes[name][2], name
    assert c.flops == sum(macs.values())
    assert c.params == sum(int(np.prod(p.shape)) for p in net.trainable_params())


def test_layer_names_are_network_prefixes():
    names = {r.name for r in cost(reference("x0_5")).layers}
    assert {"first_conv.0", "features.0.branch_proj.0", "features.15.branch_main.7", "conv_last.0",
            "classifier"} <= names


def test_spatial_sizes_and_resolution():
    c = cost(reference("x0_5"), resolution=224)
    sizes = {r.name: r.out_size for r in c.layers}
    assert sizes["first_conv.0"] == 112
    assert sizes["max_pool"] == 56
    assert sizes["features.0.branch_main.3"] == 28
    assert sizes["features.15.branch_main.3"] == 7
    # Odd sizes round up through 'same' max pooling and pad-k//2 stride-2 convs: 112 -> 56 -> 28 -> 14 -> 7 -> 4.
    small = {r.name: r.out_size for r in cost(reference("x0_5"), resolution=112).layers}
    assert small["features.15.branch_main.3"] == 4
    assert cost(reference("x0_5"), resolution=112).flops < c.flops / 3


def test_paper_guidelines_show_in_the_counts():
    base = Arch(widths=(48, 96, 192), depths=(4, 8, 4))
    deeper = Arch(widths=(48, 96, 192), depths=(4, 8, 8))
    # G3: more blocks, more fragmentation and operators; G4: more element-wise work.
    assert cost(deeper).fragmentation > cost(base).fragmentation
    assert cost(deeper).num_ops > cost(base).num_ops
    assert cost(deeper).elementwise_elements > cost(base).elementwise_elements
    # Bigger kernels add depthwise FLOPs only.
    wide_k = Arch(widths=(48, 96, 192), depths=(4, 8, 4), kernels=(5, 5, 5))
    assert cost(wide_k).flops > cost(base).flops
    assert cost(wide_k).fragmentation == cost(base).fragmentation


def test_num_classes_changes_the_head():
    assert cost(reference("x0_5"), num_classes=10).params == REFERENCES["x0_5"].params_trainable - 1024 * 990


def test_bad_resolution():
    with pytest.raises(ValueError, match="resolution"):
        cost(reference("x0_5"), resolution=4)
