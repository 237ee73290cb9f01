"""evaluator.lut: a real table of a tiny space at 32 px (ONNX Runtime and MindSpore parts)."""

from __future__ import annotations

import json

import pytest

from evaluator.lut import FORMAT, VERSION, LatencyTable, build_table, space_parts
from evaluator._parts import arch_parts, part_key
from common import UserError
from space import Arch, SearchSpace

TINY_SPACE = {"name": "tiny", "stem": [8], "widths": [[16], [32], [64]], "depths": [[1, 2], [1, 2], [1, 2]],
              "last": [64]}
SETTINGS = dict(resolution=32, warmup=3, repeats=20)


@pytest.fixture(scope="module")
def tiny_space() -> SearchSpace:
    return SearchSpace.from_dict(TINY_SPACE)


@pytest.fixture(scope="module")
def built(tiny_space, tmp_path_factory):
    """An ONNX Runtime table with a 3-arch overhead fit, saved and loaded back."""
    pytest.importorskip("onnxruntime")
    tmp = tmp_path_factory.mktemp("lut")
    steps = []
    table = build_table(tiny_space, backend="onnxruntime", fit_archs=3, partial=tmp / "parts.jsonl",
                        cache=tmp / "cache.sqlite", progress=lambda d, t, w: steps.append((d, t, w)), **SETTINGS)
    table.save(tmp / "table.json")
    return table, tmp, steps


def test_space_parts_are_the_distinct_parts_of_every_arch(tiny_space):
    parts = {part_key(p) for p in space_parts(tiny_space, 32)}
    # stem, 3 stride-2 units, 3 stride-1 units, 1 head, the empty call
    assert len(parts) == 9 and "empty" in parts
    for depths in ((1, 1, 1), (2, 2, 2), (1, 2, 1)):
        arch = Arch(stem=8, widths=(16, 32, 64), depths=depths, last=64)
        assert {part_key(p) for p in arch_parts(arch, 32)} <= parts


def test_coarse_lut_space_is_small_and_holds_the_references():
    space = SearchSpace.from_yaml("configs/spaces/lut_cpu.yaml")
    assert len(space_parts(space, 224)) == 72
    assert {"x0_5", "x1_0"} <= set(space.references())


@pytest.mark.slow
def test_build_reports_progress_and_fits_overhead(built):
    table, _, steps = built
    assert [d for d, _, _ in steps] == list(range(1, 13)) and all(t == 12 for _, t, _ in steps)
    assert len(table.entries) == 9
    for entry in table.entries.values():
        assert 0 < entry["p10_ms"] <= entry["median_ms"] <= entry["p90_ms"] and entry["runs"] == 20
    assert len(table.overhead["archs"]) == 3
    env = table.environment
    assert env["backend"] == "onnxruntime" and env["cpu_model"] and env["mindspore"]


@pytest.mark.slow
def test_save_load_predict_round_trip(built, tiny_space):
    table, tmp, _ = built
    data = json.loads((tmp / "table.json").read_text())
    assert data["format"] == FORMAT and data["version"] == VERSION
    for key in ("environment", "space", "batch_size", "resolution", "dtype", "backend", "device", "overhead"):
        assert key in data
    loaded = LatencyTable.load(tmp / "table.json")
    arch = Arch(stem=8, widths=(16, 32, 64), depths=(2, 1, 2), last=64)
    assert loaded.predict(arch) == pytest.approx(table.predict(arch))
    fit = loaded.overhead
    assert loaded.predict(arch) == pytest.approx(fit["intercept_ms"] + fit["scale"] * loaded.parts_sum_ms(arch))
    # More units cannot make the sum of parts smaller.
    assert loaded.parts_sum_ms(Arch(stem=8, widths=(16, 32, 64), depths=(2, 2, 2), last=64)) > \
        loaded.parts_sum_ms(Arch(stem=8, widths=(16, 32, 64), depths=(1, 1, 1), last=64))
    loaded.check(batch_size=1, resolution=32, space=tiny_space, backend="onnxruntime", device="CPU")


@pytest.mark.slow
@pytest.mark.parametrize("call, words", [
    (lambda t: t.predict(Arch(stem=8, widths=(16, 32, 64), depths=(1, 1, 1), last=64), batch_size=2),
     "built for batch size 1, not 2"),
    (lambda t: t.predict(Arch(stem=8, widths=(16, 32, 64), depths=(1, 1, 1), last=64), resolution=224),
     "built for resolution 32, not 224"),
    (lambda t: t.check(space=SearchSpace.default()), "built for search space 'tiny'"),
    (lambda t: t.check(backend="mindspore"), "built for backend onnxruntime"),
    (lambda t: t.check(clock="cpu"), "built for clock wall"),
    (lambda t: t.predict(Arch(stem=8, widths=(16, 32, 96), depths=(1, 1, 1), last=64)),
     r"needs the first \(stride-2\) unit of a stage 32->96 channels.*block:s2:32-96:k3:r2"),
    (lambda t: t.predict(Arch(stem=8, widths=(16, 32, 64), depths=(3, 1, 1), last=64)),
     "outside the table's space 'tiny'"),
])
def test_mismatches_are_errors(built, call, words):
    with pytest.raises(UserError, match=words):
        call(built[0])


def test_bad_files_are_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        LatencyTable.load(tmp_path / "missing.json")
    (tmp_path / "old.json").write_text(json.dumps({"format": FORMAT, "version": 0}))
    with pytest.raises(UserError, match="version 0 is not supported"):
        LatencyTable.load(tmp_path / "old.json")
    (tmp_path / "other.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="not a latency table"):
        LatencyTable.load(tmp_path / "other.json")


@pytest.mark.slow
def test_build_resumes_from_its_parts_file(built, tiny_space):
    _, tmp, _ = built
    steps = []
    table = build_table(tiny_space, backend="onnxruntime", fit_archs=0, partial=tmp / "parts.jsonl",
                        cache=None, progress=lambda d, t, w: steps.append(w), **SETTINGS)
    assert steps == [] and len(table.entries) == 9  # nothing measured again
    with pytest.raises(UserError, match="other settings"):
        build_table(tiny_space, backend="onnxruntime", fit_archs=0, partial=tmp / "parts.jsonl", cache=None,
                    resolution=64, warmup=3, repeats=20)


@pytest.mark.slow
def test_mindspore_parts_table(tiny_space):
    table = build_table(tiny_space, backend="mindspore", fit_archs=0, cache=None, **SETTINGS)
    assert len(table.entries) == 9 and table.overhead is None
    arch = Arch(stem=8, widths=(16, 32, 64), depths=(2, 2, 2), last=64)
    assert table.predict(arch) == pytest.approx(table.parts_sum_ms(arch)) and table.predict(arch) > 0
