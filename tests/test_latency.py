"""evaluator.latency: real measurements in worker processes (tiny arch, 32 px, few repeats)."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, TINY_ARCH
from evaluator import LatencyResult, backends, measure
from evaluator._cache import LatencyCache
from evaluator._timing import paired_ratio, stats_ms, time_interleaved
from common import UserError
from space import Arch

FAST = dict(resolution=32, warmup=3, repeats=10)
from evaluator._spawn import FAULT_VAR as FAULT


@pytest.fixture(scope="module")
def cache_path(tmp_path_factory):
    return tmp_path_factory.mktemp("latency") / "cache.sqlite"


@pytest.fixture(scope="module")
def ms_result(tiny_arch, cache_path) -> LatencyResult:
    # The reference is the same arch: the interleaved ratio must come out near 1.
    return measure(tiny_arch, reference=tiny_arch, cache=cache_path, **FAST)


def _sane(r: LatencyResult, runs: int) -> None:
    assert r.ok, r.error
    assert r.runs == runs
    assert 0 < r.p10_ms <= r.median_ms <= r.p90_ms
    assert r.mean_ms > 0 and r.std_ms >= 0
    assert r.ms_per_image == pytest.approx(r.median_ms / r.batch_size)
    assert r.images_per_second == pytest.approx(1e3 * r.batch_size / r.median_ms)
    assert r.compile_s > 0 and r.warmup_runs >= 3
    for key in ("mindspore", "backend", "backend_version", "device", "cpu_model", "threads", "host", "time_utc"):
        assert r.environment.get(key), key


@pytest.mark.slow
def test_mindspore_result_fields_are_sane(ms_result, tiny_arch):
    _sane(ms_result, 10)
    assert ms_result.backend == "mindspore" and ms_result.environment["backend"] == "mindspore"
    assert ms_result.arch_key == tiny_arch.key and ms_result.threads == 1
    assert ms_result.reference_median_ms > 0
    assert 0.5 < ms_result.ratio_to_reference < 2.0
    assert not ms_result.cached


@pytest.mark.slow
def test_cache_returns_without_running_a_worker(ms_result, tiny_arch, cache_path, monkeypatch):
    # Any worker started now would die at once; a cache hit never starts one.
    monkeypatch.setenv(FAULT, "kill")
    hit = measure(tiny_arch, reference=tiny_arch, cache=cache_path, **FAST)
    assert hit.ok and hit.cached and hit.wall_s < 2.0
    assert hit.median_ms == ms_result.median_ms
    # Another setting is another key: it must run (and here fails), and errors are not cached.
    miss = measure(tiny_arch, reference=tiny_arch, cache=cache_path, batch_size=2, **FAST)
    assert not miss.ok and "SIGKILL" in miss.error
    assert len(LatencyCache(cache_path)) == 1
    # refresh=True measures again even though the key is cached.
    assert not measure(tiny_arch, reference=tiny_arch, cache=cache_path, refresh=True, **FAST).ok


@pytest.mark.slow
@pytest.mark.parametrize("fault, words", [("abort", "SIGABRT"), ("kill", "out of memory")])
def test_crashing_worker_gives_an_error_result(tiny_arch, monkeypatch, fault, words):
    monkeypatch.setenv(FAULT, fault)
    r = measure(tiny_arch, reference=None, cache=None, **FAST)
    assert not r.ok and words in r.error and r.median_ms is None


@pytest.mark.slow
def test_hanging_worker_times_out_and_the_next_measurement_works(tiny_arch, monkeypatch):
    monkeypatch.setenv(FAULT, "hang")
    start = time.perf_counter()
    r = measure(tiny_arch, reference=None, cache=None, timeout=5.0, **FAST)
    assert not r.ok and "timed out after 5 s" in r.error
    assert time.perf_counter() - start < 30
    monkeypatch.delenv(FAULT)
    _sane(measure(tiny_arch, reference=None, cache=None, **FAST), 10)


def test_real_time_limit_kills_a_slow_worker(tiny_arch):
    # Importing MindSpore alone takes longer than 0.5 s.
    r = measure(tiny_arch, reference=None, cache=None, timeout=0.5, **FAST)
    assert not r.ok and r.error.startswith("timed out")


@pytest.mark.slow
def test_device_this_build_lacks_is_an_error_result(tiny_arch):
    r = measure(tiny_arch, device="GPU", reference=None, cache=None, **FAST)
    assert not r.ok and "cannot use device GPU" in r.error


@pytest.mark.parametrize("kwargs, words", [
    (dict(backend="tensorrt"), "unknown latency backend 'tensorrt'"),
    (dict(device="TPU"), "unknown device"),
    (dict(device_id=3), "device id 3 does not exist"),
    (dict(backend="onnxruntime", device="Ascend"), "runs on CPU"),
    (dict(backend="onnxruntime", dtype="float16"), "supports dtype float32"),
    (dict(dtype="int8"), "supports dtype"),
    (dict(resolution=16), "at least 32"),
    (dict(repeats=0), "repeats must be a positive integer"),
    (dict(clock="gpu"), "unknown clock 'gpu'"),
    (dict(clock="cpu", threads=2), "single-threaded"),
])
def test_bad_settings_raise_user_error(tiny_arch, kwargs, words):
    with pytest.raises(UserError, match=words):
        measure(tiny_arch, cache=None, **kwargs)


def test_backends_are_discovered_from_their_files():
    found = backends()
    assert {"mindspore", "onnxruntime"} <= set(found)
    for module in found.values():
        for attr in ("NAME", "DEVICES", "DTYPES", "REQUIRES", "INSTALL_HINT", "version", "set_threads"):
            assert hasattr(module, attr), (module.NAME, attr)
        # timed in the worker (prepare), or exported there and timed in a clean process (export, TIMER)
        assert hasattr(module, "prepare") or (hasattr(module, "export") and hasattr(module, "TIMER")), module.NAME


@pytest.mark.slow
def test_onnxruntime_backend(tiny_arch, cache_path):
    pytest.importorskip("onnxruntime")
    r = measure(tiny_arch, backend="onnxruntime", reference="x0_5", clock="cpu", cache=cache_path, **FAST)
    _sane(r, 10)
    assert r.clock == "cpu"
    assert r.environment["backend"] == "onnxruntime" and r.environment["threads"] == 1
    assert r.ratio_to_reference < 1.0  # the tiny arch is far cheaper than x0_5


# What a user runs to time an ONNX model alone: ONNX Runtime, 1 thread, nothing else loaded.
STANDALONE = """
import json, sys, time
import numpy as np
import onnxruntime as ort
path, runs = sys.argv[1], int(sys.argv[2])
options = ort.SessionOptions()
options.intra_op_num_threads = 1
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
feed = {session.get_inputs()[0].name: np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)}
for _ in range(30):
    session.run(None, feed)
times = []
for _ in range(runs):
    start = time.process_time()
    session.run(None, feed)
    times.append(time.process_time() - start)
print(json.dumps(float(np.median(times)) * 1e3))
"""


@pytest.mark.slow
def test_measured_ms_match_a_standalone_run_of_the_same_model(tmp_path):
    """x0_5 as `measure` times it (worker, x0_5 interleaved as the reference) against the same
    exported network timed by a plain ONNX Runtime script. Each measurement sits between two
    standalone runs (S M S M ... S) and is compared with their mean: the ratio of medians, then
    the median over measurements. Process CPU time on both sides (1 thread): other jobs on a
    shared host count less, and the neighbours share the host's faster or slower minutes."""
    pytest.importorskip("onnxruntime")
    import numpy as np

    from evaluator import _backend_onnxruntime
    from evaluator._timing import example_input
    from space import build, reference

    path = str(tmp_path / "x0_5.onnx")
    _backend_onnxruntime.export(build(reference("x0_5")), example_input((1, 3, 224, 224)), path)

    def measured() -> float:
        result = measure("x0_5", backend="onnxruntime", clock="cpu", repeats=100, cache=None)
        assert result.ok, result.error
        return result.median_ms

    def alone() -> float:
        run = subprocess.run([sys.executable, "-c", STANDALONE, path, "150"], capture_output=True, text=True,
                             timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        return json.loads(run.stdout)

    standalone = [alone()]
    ratios = []
    for _ in range(6):
        ms = measured()
        standalone.append(alone())
        ratios.append(ms / np.mean(standalone[-2:]))
    ratio = float(np.median(ratios))
    # A correctness bound (a wrong model, unit or reference subtraction is off by far more); the
    # 5 % goal is a benchmark on an idle machine (bench/latency_standalone.py, BENCHMARKS.md):
    # on a shared 2-core CI host single ratios reach 1.19 and their median 1.07.
    assert abs(ratio - 1) <= 0.2, (ratio, ratios, standalone, os.getloadavg())


def _cli(*args, env_code: str = "", timeout: float = 300) -> subprocess.CompletedProcess:
    code = f"{env_code}import runpy, sys; sys.argv = ['search.py'] + {list(args)!r}; " \
           "runpy.run_path('search.py', run_name='__main__')"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_cli_prints_json(tmp_path):
    arch_file = tmp_path / "tiny.yaml"
    Arch(**TINY_ARCH).save(arch_file)
    proc = _cli("latency", str(arch_file), "--resolution", "32", "--repeats", "5", "--warmup", "2",
                "--reference", "none", "--cache", str(tmp_path / "c.sqlite"), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["runs"] == 5 and data["p10_ms"] <= data["median_ms"] <= data["p90_ms"]
    assert data["images_per_second"] > 0 and data["ratio_to_reference"] is None


@pytest.mark.parametrize("args, env_code, words", [
    (["latency", "x0_5", "--backend", "nope"], "", "unknown latency backend"),
    (["latency", "x0_5", "--timeout", "0.5", "--cache", "none"], "", "timed out after 0.5 s"),
    (["latency", "x0_5", "--backend", "onnxruntime"], "sys.modules['onnxruntime'] = None; ",
     "pip install shufflenas[onnx]"),
])
def test_cli_errors_are_one_line_exit_2(args, env_code, words):
    proc = _cli(*args, env_code="import sys; " + env_code)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], proc.stderr


# ----- pieces without a worker ---------------------------------------------------------------
@pytest.mark.parametrize("clock", ["wall", "cpu"])
def test_time_interleaved_alternates_blocks_and_warms_up(clock):
    order = []
    fns = [lambda: order.append("a"), lambda: order.append("b")]
    t = time_interleaved(fns, warmup=10, repeats=11, clock=clock, block=5, drop=2)
    assert t.warmup_runs >= 10 and t.warmup_runs % 5 == 0 and [len(r) for r in t.runs] == [11, 11] and t.block == 3
    # blocks of 5 in turn; the timed phase: 3 timed after 2 dropped, the last block cut to 2 timed
    timed_blocks = ["a"] * 5 + ["b"] * 5
    assert order == timed_blocks * (t.warmup_runs // 5 + 3) + ["a"] * 4 + ["b"] * 4


def test_a_single_callable_drops_no_run():
    calls = []
    t = time_interleaved([lambda: calls.append(1)], warmup=10, repeats=7, block=5, drop=2)
    assert len(t.runs[0]) == 7 and t.block == 5 and len(calls) == t.warmup_runs + 7


def test_cpu_clock_leaves_out_sleeping():
    t = time_interleaved([lambda: time.sleep(0.01)], warmup=1, repeats=3, max_warmup=1, clock="cpu")
    assert max(t.runs[0]) < 0.005


def test_stats_and_paired_ratio():
    s = stats_ms([0.001 * v for v in range(1, 101)])
    assert s["runs"] == 100 and s["p10_ms"] < s["median_ms"] < s["p90_ms"]
    assert s["median_ms"] == pytest.approx(50.5)
    assert paired_ratio([2, 4, 6], [1, 2, 3]) == pytest.approx(2.0)
    # by blocks of 2: block medians 3/1, 5/5, 20/2 -> median 3
    assert paired_ratio([2, 4, 5, 5, 20, 20], [1, 1, 5, 5, 2, 2], block=2) == pytest.approx(3.0)


def _hammer(path: str, start: int) -> None:
    cache = LatencyCache(path)
    for i in range(start, start + 40):
        cache.put(f"k{i}", {"median_ms": float(i)}, "now")


def test_cache_is_safe_with_several_processes(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    ctx = multiprocessing.get_context("fork")  # spawn would re-import MindSpore in each child
    procs = [ctx.Process(target=_hammer, args=(path, 100 * n)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    cache = LatencyCache(path)
    assert len(cache) == 160 and cache.get("k305") == {"median_ms": 305.0}
