"""evaluator.predictor: exact recovery of a synthetic additive device, features from the cost
model, settings checks, a real build (ONNX Runtime, 32 px) killed and resumed, the search on it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from evaluator._features import part_features, part_group, part_layers
from evaluator._parts import arch_parts, part_key
from evaluator._predictor_build import build_predictor
from evaluator.predictor import LatencyPredictor
from common import UserError
from space import DEFAULT_SPACE, Arch, SearchSpace, cost, reference

TINY = ROOT / "tests" / "data" / "tiny_space.yaml"
MICRO = ROOT / "tests" / "data" / "micro_space.yaml"
DEMO_SPACE = ROOT / "configs" / "spaces" / "shufflenetv2_small.yaml"

# A device whose latency is exactly additive in the cost-model features, with FLOPs in layers
# whose channels are not multiples of 4 costing more (as ONNX Runtime's are), plus a graph term.
TRUE = {"calls": 0.004, "conv_flops_aligned": 1e-8, "conv_flops_unaligned": 2.5e-8, "dwconv_flops_aligned": 3e-8,
        "dwconv_flops_unaligned": 6e-8, "dense_flops_aligned": 2e-8, "dense_flops_unaligned": 2e-8,
        "elementwise": 1e-9, "mac": 3e-9}
EMPTY_MS, PER_OPERATOR_MS, INTERCEPT_MS = 0.006, 0.002, 0.05


class SyntheticDevice:
    environment = {"backend": "synthetic"}

    def __init__(self) -> None:
        self.asked = []

    def part_ms(self, part) -> float:
        if part["kind"] == "empty":
            return EMPTY_MS
        return EMPTY_MS + sum(TRUE[name] * value for name, value in part_features(part, 4).items())

    def measure_parts(self, parts, report):
        for part in parts:
            self.asked.append(part_key(part))
            ms = self.part_ms(part)
            report({"key": part_key(part), "median_ms": ms, "p10_ms": ms, "p90_ms": ms, "compile_s": 0.0})
        return {}

    def measure_arch(self, arch) -> float:
        parts = sum(self.part_ms(p) - EMPTY_MS for p in arch_parts(arch, 224))
        return EMPTY_MS + parts + PER_OPERATOR_MS * cost(arch, 224).num_ops + INTERCEPT_MS


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    device = SyntheticDevice()
    partial = tmp_path_factory.mktemp("synthetic") / "parts.jsonl"
    predictor = build_predictor([DEFAULT_SPACE], backend="onnxruntime", budget_parts=160, whole_archs=8,
                                target=device, partial=partial)
    return predictor, device


def test_recovers_a_synthetic_additive_model_exactly(synthetic):
    predictor, device = synthetic
    space = SearchSpace.default()
    rng = np.random.default_rng(7)
    for _ in range(40):
        arch = space.sample(rng)
        assert predictor.predict(arch) == pytest.approx(device.measure_arch(arch), rel=1e-9)
    graph = predictor.data["graph"]
    assert graph["terms"] == ["intercept", "operators"]
    assert graph["coef"] == pytest.approx([INTERCEPT_MS, PER_OPERATOR_MS], rel=1e-6)
    # the budget is spent exactly, each part once; the fits found the device's alignment split
    assert predictor.data["build"]["parts_measured"] == 160 == len(set(device.asked)) - 1 == len(device.asked) - 1
    assert {predictor.data["groups"][g]["align"] for g in ("s1@7", "s1@14", "s2@14")} == {4}
    start = time.perf_counter()
    for _ in range(50):
        predictor.predict(space.sample(rng))
    assert (time.perf_counter() - start) / 50 < 0.01  # about 1 ms on an idle core (BENCHMARKS.md)


def test_features_come_from_the_cost_model():
    arch = SearchSpace.default().sample(3)
    c = cost(arch, 224)
    by_prefix = {}
    for row in c.layers:
        head = row.name.split(".")[0]
        prefix = ".".join(row.name.split(".")[:2]) if head == "features" else \
            ("stem" if head in ("first_conv", "max_pool") else "head")
        by_prefix.setdefault(prefix, []).append(tuple(row)[1:])
    parts = arch_parts(arch, 224)
    expected = [by_prefix["stem"]] + [by_prefix[f"features.{i}"] for i in range(len(parts) - 2)] + [by_prefix["head"]]
    assert [[tuple(r)[1:] for r in part_layers(p)] for p in parts] == expected
    features = [part_features(p, None) for p in parts]
    flops = sum(f.get(k, 0.0) for f in features for k in ("conv_flops", "dwconv_flops", "dense_flops"))
    assert flops == c.flops and sum(f["mac"] for f in features) == c.mac
    assert [part_group(p) for p in (parts[0], parts[1], parts[-1])] == ["stem@224", "s2@56", "head@7"]


@pytest.mark.parametrize("change, words", [
    (dict(resolution=112), "built for resolution 224, not 112"),
    (dict(backend="mindspore"), "built for backend onnxruntime"),
    (dict(clock="cpu"), "built for clock wall, not cpu"),
    (dict(batch_size=8), "built for batch size 1"),
    (dict(space=SearchSpace.from_yaml(DEMO_SPACE)), "do not hold every arch of space 'shufflenetv2_small'"),
])
def test_setting_or_space_mismatches_are_errors(synthetic, change, words):
    with pytest.raises(UserError, match=words):
        synthetic[0].check(**change)


def test_file_arch_and_reference_mismatches_are_errors(synthetic, tmp_path):
    predictor = synthetic[0]
    predictor.check(space=SearchSpace.default(), resolution=224, backend="onnxruntime", clock="wall")
    predictor.save(tmp_path / "p.json")
    assert LatencyPredictor.load(tmp_path / "p.json").predict(reference("x1_0")) == predictor.predict(reference("x1_0"))
    with pytest.raises(UserError, match="outside the latency predictor's space"):
        predictor.predict(Arch(stem=16, widths=(48, 96, 192), depths=(4, 8, 4), last=1024))
    with pytest.raises(UserError, match="no measured latency of the reference x1_0.*--reference x1_0"):
        predictor.reference_ms("x1_0")
    assert predictor.reference_ms("x0_5") == pytest.approx(SyntheticDevice().measure_arch(reference("x0_5")))
    for key, value, words in (("version", 99, "version 99 is not supported"),
                              ("format", "shufflenas-latency-table", "not a latency predictor")):
        with pytest.raises(UserError, match=words):
            LatencyPredictor({**predictor.data, key: value})
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(UserError, match="not a latency predictor"):
        LatencyPredictor.load(tmp_path / "bad.json")


def test_a_resumed_build_keeps_its_parts_and_budget(synthetic, tmp_path):
    device = SyntheticDevice()
    partial = tmp_path / "parts.jsonl"
    first = build_predictor([TINY], backend="onnxruntime", budget_parts=8, whole_archs=3, target=device,
                            partial=partial)
    assert first.data["build"]["parts_measured"] == 8 and len(first.groups()) == 8  # one part in each group
    again = SyntheticDevice()
    second = build_predictor([TINY], backend="onnxruntime", budget_parts=13, whole_archs=3, target=again,
                             partial=partial)
    assert second.data["build"]["parts_measured"] == 13 and len(again.asked) == 5  # only the 5 new ones
    with pytest.raises(UserError, match="other settings"):
        build_predictor([TINY], backend="onnxruntime", resolution=112, budget_parts=13, whole_archs=3,
                        target=again, partial=partial)
    with pytest.raises(UserError, match="no part of group"):
        build_predictor([TINY], backend="onnxruntime", budget_parts=3, target=again)
    with pytest.raises(UserError, match="budget of parts must be a positive integer"):
        build_predictor([TINY], backend="onnxruntime", budget_parts=0, target=again)


# ----- on the real device -----------------------------------------------------------------
BUILD_ARGS = ["predictor", "build", "--space", str(TINY), "--backend", "onnxruntime", "--resolution", "32",
              "--warmup", "3", "--repeats", "20", "--budget-parts", "18", "--whole-archs", "4", "--batch", "6"]


def _search_py(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "search.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _part_lines(path: Path):
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()[1:] if '"key"' in line]


@pytest.fixture(scope="module")
def real_build(tmp_path_factory):
    """A real build killed (SIGKILL, the whole process group) after a few parts, then rerun."""
    pytest.importorskip("onnxruntime")
    tmp = tmp_path_factory.mktemp("predictor")
    out, cache = tmp / "tiny.json", tmp / "cache.sqlite"
    partial = tmp / "tiny.json.parts.jsonl"
    args = BUILD_ARGS + ["--out", str(out), "--cache", str(cache)]
    proc = subprocess.Popen([sys.executable, "search.py", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while len(_part_lines(partial)) < 8 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {r["key"]: r["median_ms"] for r in _part_lines(partial)}
    done = _search_py(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    return out, before, done.stdout


@pytest.mark.slow
def test_build_resumes_after_a_kill(real_build):
    out, before, stdout = real_build
    assert len(before) >= 8 and "wrote" in stdout
    predictor = LatencyPredictor.load(out)
    parts = predictor.data["parts"]
    assert predictor.data["build"]["parts_measured"] == 18 and len(parts) == 19  # + the empty call
    assert all(parts[key]["median_ms"] == ms for key, ms in before.items())  # kept, not measured again
    env = predictor.environment
    assert env["backend"] == "onnxruntime" and env["cpu_model"] and predictor.clock == "wall"
    assert predictor.reference_ms("x0_5") > 0 and len(predictor.data["graph"]["archs"]) == 4
    tiny = SearchSpace.from_yaml(TINY)
    for arch in (tiny.sample(i) for i in range(5)):
        assert 0 < predictor.predict(arch) < predictor.reference_ms("x0_5")


@pytest.mark.slow
def test_cli_show_and_errors(real_build):
    out = real_build[0]
    shown = _search_py("predictor", "show", str(out), "--arch", "x0_5")
    assert shown.returncode == 2 and "outside the latency predictor's space" in shown.stderr  # x0_5 is not tiny
    shown = _search_py("predictor", "show", str(out))
    assert shown.returncode == 0 and "s2@8" in shown.stdout and "reference     x0_5" in shown.stdout
    for args, words in ((["predictor", "show", str(out.with_name("missing.json"))], "does not exist"),
                        (BUILD_ARGS[:2] + ["--out", str(out.with_name("x.json")), "--budget-minutes", "0"],
                         "budget of minutes must be positive")):
        proc = _search_py(*args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and words in lines[0], proc.stderr


@pytest.mark.slow
def test_search_runs_on_the_predictor(real_build, tmp_path):
    from search import SearchConfig, run_search

    out = str(real_build[0])
    predictor = LatencyPredictor.load(out)
    base = dict(study_name=f"p-{uuid.uuid4().hex[:8]}", run_dir=str(tmp_path), space=str(MICRO), n_trials=3,
                enqueue_references=False, latency_source="predictor", latency_predictor=out, backend="onnxruntime",
                resolution=32, budget_ratio=1.0, reference="x0_5", proxy="naswot", proxy_batch_size=16, quiet=True)
    study = run_search(SearchConfig(**base))
    done = [t for t in study.trials if t.state.is_finished()]
    assert len(done) == 3
    for t in done:
        ms, ratio = t.user_attrs["latency_ms"], t.user_attrs["latency_ratio"]
        assert t.user_attrs["latency"]["predictor"] == out and t.user_attrs["feasible"] is True
        assert ratio == pytest.approx(ms / predictor.reference_ms("x0_5"))  # the measured reference
        assert ms == pytest.approx(predictor.predict(Arch.from_dict(t.user_attrs["arch"])))
    # a budget no micro arch meets: the pre-filter rejects every candidate on the prediction alone
    study = run_search(SearchConfig(**{**base, "study_name": f"p-{uuid.uuid4().hex[:8]}", "budget_ratio": 0.01}))
    assert all("pre-filter" in t.user_attrs["reason"] for t in study.trials)
