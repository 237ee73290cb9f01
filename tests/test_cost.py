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


def test_totals_are_sums_of_layers():
    c = cost(reference("x1_0"))
    assert c.flops == sum(r.flops for r in c.layers)
    assert c.mac == sum(r.mac for r in c.layers)
    assert c.num_ops == len(c.layers)
    assert c.elementwise_ops == sum(1 for r in c.layers if r.op in ("bn", "relu", "shuffle", "concat", "mean"))
    assert set(c.summary()) >= {"params", "flops", "mac", "fragmentation", "elementwise_ops"}


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
