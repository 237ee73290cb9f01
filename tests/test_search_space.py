"""space.SearchSpace: loading rules, suggest/sample validity, size, and the cost/network invariant."""

from pathlib import Path

import numpy as np
import optuna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from space import REFERENCES, Arch, SearchSpace, SpaceError, build, cost

optuna.logging.set_verbosity(optuna.logging.WARNING)
DEFAULT = SearchSpace.default()

SMALL = {
    "name": "small",
    "stem": [8, 16],
    "widths": [[16, 24], [24, 32, 48], {"low": 32, "high": 64, "step": 16}],
    "depths": [{"low": 1, "high": 2}, [1], [1, 3]],
    "last": [64, 128],
    "kernels": [3, 5],
}


def count_by_enumeration(space: SearchSpace) -> int:
    n = 0
    for s in space.stem.values:
        for w0 in space.widths[0].values:
            for w1 in space.widths[1].values:
                for w2 in space.widths[2].values:
                    n += s < w0 < w1 < w2
    for c in space.depths + space.kernels:
        n *= len(c.values)
    return n * len(space.last.values)


def test_default_space_contains_all_references():
    assert DEFAULT.references() == list(REFERENCES)


def test_default_space_flops_span():
    x1_0 = cost(REFERENCES["x1_0"].arch).flops
    rng = np.random.default_rng(0)
    ratios = np.array([cost(DEFAULT.sample(rng)).flops / x1_0 for _ in range(400)])
    assert ratios.min() < 0.35 and np.percentile(ratios, 5) < 0.7
    assert np.percentile(ratios, 95) > 2.0


def test_size_matches_enumeration():
    space = SearchSpace.from_dict(SMALL)
    assert space.size() == count_by_enumeration(space)
    assert DEFAULT.size() > 10**8


def test_sample_is_uniform_over_valid_width_chains():
    space = SearchSpace.from_dict(SMALL)
    rng = np.random.default_rng(1)
    chains = [(a.stem,) + a.widths for a in (space.sample(rng) for _ in range(4000))]
    counts = np.array(list({c: chains.count(c) for c in set(chains)}.values()))
    valid_chains = space.size() // (2 * 1 * 2 * 2 * 2 * 2 * 2)  # divide out depths, kernels, last
    assert len(counts) == valid_chains
    assert counts.min() > 0.6 * counts.mean()


def test_sample_accepts_seeds_and_is_deterministic():
    assert DEFAULT.sample(7) == DEFAULT.sample(7)
    assert DEFAULT.sample(np.random.default_rng(3)) == DEFAULT.sample(np.random.default_rng(3))


@pytest.mark.parametrize("sampler", [optuna.samplers.RandomSampler(seed=0), optuna.samplers.TPESampler(seed=0)])
def test_suggest_only_yields_valid_archs_with_stable_names(sampler):
    space = SearchSpace.from_dict(SMALL)
    study = optuna.create_study(sampler=sampler)
    archs = []

    def objective(trial):
        arch = space.suggest(trial)
        assert space.contains(arch)
        archs.append(arch)
        return cost(arch, 32).flops

    study.optimize(objective, n_trials=40)
    assert len(archs) == 40
    names = set().union(*(t.params for t in study.trials))
    assert names == {"stem", "width_0", "width_1_index", "width_2", "depth_0", "depth_2", "last",
                     "kernel_0", "kernel_1", "kernel_2"}


def test_suggest_on_the_default_space_with_enqueued_references():
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1))
    for ref in REFERENCES.values():
        study.enqueue_trial(DEFAULT.params_of(ref.arch))
    seen = []
    study.optimize(lambda t: cost(seen.append(DEFAULT.suggest(t)) or seen[-1]).flops, n_trials=30)
    assert seen[:4] == [r.arch for r in REFERENCES.values()]
    assert all(DEFAULT.contains(a) for a in seen)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_property_default_space_archs_validate_and_cost(seed):
    arch = DEFAULT.sample(seed)
    assert Arch.from_dict(arch.to_dict()) == arch
    assert DEFAULT.contains(arch)
    c = cost(arch)
    assert c.params > 0 and c.flops > 0 and c.mac > c.params


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_property_cost_params_equal_built_network(seed):
    arch = DEFAULT.sample(seed)
    net = build(arch)
    assert sum(int(np.prod(p.shape)) for p in net.trainable_params()) == cost(arch).params
    assert sum(int(np.prod(p.shape)) for p in net.get_parameters()) == cost(arch).params_with_bn_stats


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"colour": 1}, r"unknown key\(s\) colour"),
        ({"widths": [[16], [32]]}, "widths: expected 3 entries"),
        ({"widths": [[], [32], [64]]}, r"widths\[0\]: the list of choices is empty"),
        ({"widths": [{"low": 64, "high": 16}, [32], [64]]}, r"widths\[0\]: low \(64\) must not exceed high"),
        ({"widths": [{"low": 16}, [32], [64]]}, r"widths\[0\]: a range needs both low and high"),
        ({"widths": [{"low": 16, "high": 32, "step": 0}, [32], [64]]}, r"widths\[0\].step: must be >= 1"),
        ({"widths": [{"low": 16, "high": 32, "by": 2}, [32], [64]]}, r"widths\[0\]: unknown range key"),
        ({"widths": [[17], [32], [64]], "divisor": 1}, r"widths\[0\]: choice 17 is odd"),
        ({"widths": [[18], [32], [64]], "divisor": 4}, r"widths\[0\]: no choice is a multiple of divisor 4"),
        ({"widths": [["16"], [32], [64]]}, r"widths\[0\]: choices must be integers"),
        ({"divisor": 0}, "divisor: must be a positive integer"),
        ({"depths": [[0], [1], [1]]}, r"depths\[0\]: depths must be between 1 and 32"),
        ({"kernels": [4]}, r"kernels\[0\]: must be among \(3, 5, 7\)"),
        ({"kernels": [[3], [3], [9]]}, r"kernels\[2\]: must be among"),
        ({"last": [0]}, "last: last channels must be between"),
        ({"stem": "big"}, "stem: expected a list of integers"),
        ({"widths": [[16], [16], [64]]}, r"cannot yield any valid arch: no widths\[1\] choice exceeds 16"),
        ({"stem": [64]}, r"cannot yield any valid arch: no widths\[0\] choice exceeds 64"),
    ],
)
def test_space_rules_reject_with_key_named(changes, message):
    with pytest.raises(SpaceError, match=message):
        SearchSpace.from_dict({**SMALL, **changes})


def test_missing_required_keys_and_files(tmp_path: Path):
    with pytest.raises(SpaceError, match="missing required key 'depths'"):
        SearchSpace.from_dict({"widths": SMALL["widths"]})
    with pytest.raises(SpaceError, match="does not exist"):
        SearchSpace.from_yaml(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("widths: [1, 2\n")
    with pytest.raises(SpaceError, match="bad.yaml: not valid YAML"):
        SearchSpace.from_yaml(bad)


def test_to_dict_round_trip():
    space = SearchSpace.from_dict(SMALL)
    again = SearchSpace.from_dict(space.to_dict())
    assert again.size() == space.size()
    assert SearchSpace.from_dict(DEFAULT.to_dict()).size() == DEFAULT.size()


def test_params_of_inverts_suggest():
    space = SearchSpace.from_dict(SMALL)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    archs = [space.sample(i) for i in range(10)]
    for arch in archs:
        study.enqueue_trial(space.params_of(arch))
    got = []
    study.optimize(lambda t: got.append(space.suggest(t)) or 0.0, n_trials=10)
    assert got == archs
    with pytest.raises(SpaceError, match="not in space"):
        space.params_of(Arch(widths=(48, 96, 192), depths=(4, 8, 4)))
