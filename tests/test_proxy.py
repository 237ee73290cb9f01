"""Zero-cost proxies and cost-model baselines on real Fashion-MNIST batches."""

import math

import pytest

from evaluator.proxy import BASELINES, PROXIES, ZERO_COST, score
from space import Arch, UserError, cost


@pytest.mark.parametrize("proxy", PROXIES)
def test_each_proxy_is_finite_and_deterministic(tiny_arch, proxy):
    first = score(tiny_arch, proxy, "fashion_mnist", seed=3, resolution=32, batch_size=32)
    again = score(tiny_arch, proxy, "fashion_mnist", seed=3, resolution=32, batch_size=32)
    assert math.isfinite(first.value)
    assert first.value == again.value
    assert first.seconds >= 0 and first.proxy == proxy and first.arch == tiny_arch.name


def test_seed_changes_network_proxies(tiny_arch):
    values = {score(tiny_arch, "snip", seed=s, batch_size=32).value for s in (0, 1)}
    assert len(values) == 2


def test_baselines_come_from_the_cost_model(tiny_arch):
    assert score(tiny_arch, "params").value == cost(tiny_arch, 32).params
    assert score(tiny_arch, "flops", resolution=64).value == cost(tiny_arch, 64).flops
    assert set(BASELINES) | set(ZERO_COST) == set(PROXIES)


def test_naswot_grows_with_distinguishable_activations(tiny_arch):
    wider = Arch(stem=8, widths=(32, 64, 128), depths=(1, 2, 1), last=128)
    assert score(wider, "naswot", batch_size=32).value > score(tiny_arch, "naswot", batch_size=32).value


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
