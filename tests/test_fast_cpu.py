"""The fast CPU path: its kernels equal MindSpore's ops per op, the fast network equals the stock
one (logits, checkpoints both ways, training steps), export stays stock, and without a compiler
training falls back with one line."""

from __future__ import annotations

import io
import itertools
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import mindspore as ms
from mindspore import nn, ops

from common import UserError
from space import build, load_weights, stock_network, use_fast_cpu
from space._fast_cpu import ENV_VAR, kernel_status, fast_cpu_mode
from space._fast_ops import KERNEL_SOURCE, KernelDepthwiseConv2d, UnfoldConv2d, depthwise_op
from space._kernel_build import CACHE_VAR, library_path

ROOT = Path(__file__).resolve().parent.parent
TOL = dict(rtol=1e-4, atol=1e-5)

needs_compiler = pytest.mark.skipif(shutil.which("g++") is None, reason="no g++ here: only the fallback applies")


@pytest.fixture(scope="module")
def library() -> str:
    if shutil.which("g++") is None:
        pytest.skip("no g++ here: only the fallback applies")
    status = kernel_status()
    assert status.available, status.reason
    return status.library


@pytest.fixture
def pynative():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    yield
    ms.set_context(mode=ms.GRAPH_MODE)


class BuiltinDepthwise(nn.Cell):
    def __init__(self, channels: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.conv = ops.Conv2D(channels, kernel, pad_mode="pad", pad=kernel // 2, stride=stride, group=channels)

    def construct(self, x, w):
        return self.conv(x, w)


class KernelDepthwise(nn.Cell):
    def __init__(self, library: str, stride: int) -> None:
        super().__init__()
        self.op = depthwise_op(library, stride)

    def construct(self, x, w):
        return self.op(x, w)


class ForwardAndGrads(nn.Cell):
    """(y, dx, dw) of y = conv(x, w): dx and dw are the grad-input and grad-weight ops applied to dy."""

    def __init__(self, conv: nn.Cell) -> None:
        super().__init__()
        self.conv = conv
        self.grad = ops.GradOperation(get_all=True, sens_param=True)

    def construct(self, x, w, dy):
        dx, dw = self.grad(self.conv)(x, w, dy)
        return self.conv(x, w), dx, dw


def _compare_ops(library: str, kernel: int, stride: int, size, batch: int, channels: int = 4) -> None:
    rng = np.random.default_rng(kernel * 100 + stride * 10 + batch)
    h, w_ = size
    x = rng.standard_normal((batch, channels, h, w_)).astype(np.float32)
    w = rng.standard_normal((channels, 1, kernel, kernel)).astype(np.float32)
    dy = rng.standard_normal((batch, channels, (h - 1) // stride + 1, (w_ - 1) // stride + 1)).astype(np.float32)
    args = [ms.Tensor(a) for a in (x, w, dy)]
    expected = ForwardAndGrads(BuiltinDepthwise(channels, kernel, stride))(*args)
    got = ForwardAndGrads(KernelDepthwise(library, stride))(*args)
    for name, a, b in zip(("forward", "grad-input", "grad-weight"), got, expected):
        assert a.shape == b.shape, (name, a.shape, b.shape)
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), **TOL,
                                   err_msg=f"{name} k{kernel} s{stride} {size} b{batch}")


def test_kernels_equal_the_builtin_grouped_conv_in_pynative(library, pynative):
    # Odd and even sizes, and planes smaller than the kernel (ShuffleNetV2's last stage is 2x2 at 64 px).
    for kernel, stride, size, batch in itertools.product((3, 5, 7), (1, 2), ((9, 9), (8, 10), (2, 3), (1, 1)), (1, 3)):
        _compare_ops(library, kernel, stride, size, batch)


@pytest.mark.parametrize("kernel, stride, size, batch", [(3, 1, (9, 9), 3), (5, 2, (8, 10), 1), (7, 2, (9, 7), 2),
                                                         (3, 2, (6, 6), 1)])
def test_kernels_equal_the_builtin_grouped_conv_in_graph_mode(library, kernel, stride, size, batch):
    _compare_ops(library, kernel, stride, size, batch)


def test_kernel_refuses_shapes_it_does_not_handle(library, pynative):
    x = ms.Tensor(np.ones((1, 4, 8, 8), np.float32))
    with pytest.raises(RuntimeError):
        depthwise_op(library, 1)(x, ms.Tensor(np.ones((4, 1, 4, 4), np.float32))).asnumpy()  # even kernel


class ConvGrads(nn.Cell):
    """(dx, dweight) of a conv cell for the output gradient dy."""

    def __init__(self, conv: nn.Cell) -> None:
        super().__init__()
        self.conv = conv
        self.weights = ms.ParameterTuple(conv.trainable_params())
        self.grad = ops.GradOperation(get_all=True, get_by_list=True, sens_param=True)

    def construct(self, x, dy):
        (dx,), (dw,) = self.grad(self.conv, self.weights)(x, dy)
        return dx, dw


@pytest.mark.parametrize("size", [(33, 33), (32, 30)])
def test_unfold_stem_conv_equals_nn_conv2d_forward_and_backward(size):
    stock = nn.Conv2d(3, 8, kernel_size=3, stride=2, pad_mode="pad", padding=1)
    fast = UnfoldConv2d(3, 8, kernel_size=3, stride=2, padding=1)
    rng = np.random.default_rng(1)
    fast.weight.set_data(ms.Tensor(rng.standard_normal(fast.weight.shape).astype(np.float32)))
    stock.weight.set_data(fast.weight.data.copy())
    x = ms.Tensor(rng.standard_normal((2, 3) + size).astype(np.float32))
    dy = ms.Tensor(rng.standard_normal((2, 8, (size[0] - 1) // 2 + 1, (size[1] - 1) // 2 + 1)).astype(np.float32))
    for name, a, b in zip(("forward", "grad-input", "grad-weight"), (fast(x), *ConvGrads(fast)(x, dy)),
                          (stock(x), *ConvGrads(stock)(x, dy))):
        assert a.shape == b.shape, name
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), **TOL, err_msg=name)


def test_both_channel_shuffles_give_identical_halves(pynative):
    from space import ShuffleV2Block

    x = ms.Tensor(np.random.default_rng(0).standard_normal((2, 12, 5, 3)).astype(np.float32))
    stock, fast = ShuffleV2Block.channel_shuffle(x), ShuffleV2Block.channel_shuffle(x, unstack=True)
    for a, b, first in zip(stock, fast, (0, 1)):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())
        np.testing.assert_array_equal(a.asnumpy(), x.asnumpy()[:, first::2])


def _randomize(net, seed: int) -> None:
    """Weights and BN statistics far from initialisation, so logits carry signal."""
    rng = np.random.default_rng(seed)
    for p in net.get_parameters():
        if p.name.endswith(("moving_variance", "gamma")):
            value = rng.uniform(0.5, 1.5, p.shape)
        else:
            value = rng.standard_normal(p.shape) * (0.1 if p.name.endswith(("beta", "moving_mean")) else 0.5)
        p.set_data(ms.Tensor(value.astype(np.float32)))


def _logits(net, x) -> np.ndarray:
    net.set_train(False)
    return net(ms.Tensor(x)).asnumpy()


def test_fast_network_has_the_stock_parameters_and_logits(library, tiny_arch, tmp_path):
    ms.set_seed(3)
    fast = build(tiny_arch, num_classes=10, fast_cpu="on")
    ms.set_seed(3)
    stock = build(tiny_arch, num_classes=10)
    assert fast.fast_cpu and not stock.fast_cpu
    assert sum(isinstance(c, KernelDepthwiseConv2d) for _, c in fast.cells_and_names()) == 7
    assert isinstance(fast.first_conv[0], UnfoldConv2d)
    fast_params = {p.name: p.asnumpy() for p in fast.get_parameters()}
    stock_params = {p.name: p.asnumpy() for p in stock.get_parameters()}
    assert {k: v.shape for k, v in fast_params.items()} == {k: v.shape for k, v in stock_params.items()}
    assert all(np.array_equal(fast_params[k], stock_params[k]) for k in stock_params)  # same seed, same init

    x = np.random.default_rng(0).standard_normal((2, 3, 33, 32)).astype(np.float32)
    _randomize(fast, 1)
    ms.save_checkpoint(fast, str(tmp_path / "fast.ckpt"))
    load_weights(stock, tmp_path / "fast.ckpt")  # strict: every name and shape must match
    expected = _logits(stock, x)
    assert np.abs(expected).max() > 1.0
    np.testing.assert_allclose(_logits(fast, x), expected, rtol=1e-4, atol=1e-4)

    _randomize(stock, 2)
    ms.save_checkpoint(stock, str(tmp_path / "stock.ckpt"))
    load_weights(fast, tmp_path / "stock.ckpt")
    np.testing.assert_allclose(_logits(fast, x), _logits(stock, x), rtol=1e-4, atol=1e-4)

    copy = stock_network(fast)
    assert not copy.fast_cpu and not any(isinstance(c, (KernelDepthwiseConv2d, UnfoldConv2d))
                                         for _, c in copy.cells_and_names())
    np.testing.assert_allclose(_logits(copy, x), _logits(fast, x), rtol=1e-4, atol=1e-4)


TRAIN = dict(dataset="fashion_mnist", subset=60, val_subset=20, image_resize=32, batch_size=20,
             num_parallel_workers=2, lr=0.05, warmup_epochs=0, decay_epochs=1, epoch_size=1, max_steps=3,
             log_interval=100, label_smoothing=0.1, weight_decay=4e-5, dataset_sink_mode=False,
             device_target="CPU", seed=5)


@pytest.mark.slow
def test_training_steps_on_the_fast_path_equal_the_stock_path_and_export_stays_stock(library, tiny_arch, tmp_path):
    """training.train takes the fast path by default on CPU; 3 steps match the stock run; the
    ONNX export of the fast-trained net (no custom op can deploy) runs and matches it."""
    import training

    ort = pytest.importorskip("onnxruntime")
    fast = training.train(dict(TRAIN, ckpt_save_dir=str(tmp_path / "fast"), export="ONNX"), arch=tiny_arch,
                          stream=io.StringIO())
    stock = training.train(dict(TRAIN, ckpt_save_dir=str(tmp_path / "stock"), fast_cpu="off"), arch=tiny_arch,
                           stream=io.StringIO())
    assert fast.network.fast_cpu and not stock.network.fast_cpu
    assert fast.global_step == stock.global_step == 3
    assert fast.curve[0].train_loss == pytest.approx(stock.curve[0].train_loss, rel=1e-4)
    assert fast.loss == pytest.approx(stock.loss, rel=1e-3)
    stock_params = {p.name: p.asnumpy() for p in stock.network.get_parameters()}
    for p in fast.network.get_parameters():
        expected = stock_params[p.name]
        np.testing.assert_allclose(p.asnumpy(), expected, rtol=1e-3, atol=1e-4 * max(np.abs(expected).max(), 1e-3),
                                   err_msg=p.name)

    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    session = ort.InferenceSession(fast.exported)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, _logits(fast.network, x), rtol=1e-4, atol=1e-5)


def test_zero_cost_proxies_on_the_fast_path_equal_the_stock_path(library, tiny_arch, monkeypatch):
    from evaluator.proxy import score

    values = {}
    for mode in ("on", "off"):  # the environment variable is how search workers are told
        monkeypatch.setenv(ENV_VAR, mode)
        values[mode] = [score(tiny_arch, proxy, "fashion_mnist", resolution=32, batch_size=16).value
                        for proxy in ("synflow", "grad_norm", "snip")]
    assert values["on"] == pytest.approx(values["off"], rel=1e-4)


def test_switch_values_and_environment(tiny_arch, monkeypatch):
    assert [fast_cpu_mode(v) for v in ("auto", "ON", "off", True, False, None, "yes", "0")] == \
        ["auto", "on", "off", "on", "off", "auto", "on", "off"]
    with pytest.raises(UserError, match="fast_cpu must be auto, on or off"):
        fast_cpu_mode("fast")
    from training import make_config

    assert make_config({"fast_cpu": True}).fast_cpu == "on"  # YAML reads `fast_cpu: on` as True
    assert make_config(fast_cpu="OFF").fast_cpu == "off"
    with pytest.raises(UserError, match="fast_cpu"):
        make_config(fast_cpu="maybe")

    monkeypatch.setenv(ENV_VAR, "off")
    assert use_fast_cpu("auto") is False
    monkeypatch.setenv(ENV_VAR, "sometimes")
    with pytest.raises(UserError, match=ENV_VAR):
        use_fast_cpu("auto")
    assert use_fast_cpu("off") is False  # an explicit setting does not read the environment
    monkeypatch.setenv(ENV_VAR, "on")
    # Latency measurement and export build with the default: the stock network, whatever the environment.
    net = build(tiny_arch, num_classes=10)
    assert not net.fast_cpu and not any(isinstance(c, KernelDepthwiseConv2d) for _, c in net.cells_and_names())


@needs_compiler
def test_concurrent_builds_share_one_cached_library(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_VAR, str(tmp_path))
    paths, errors = [], []

    def build_once():
        try:
            paths.append(library_path(KERNEL_SOURCE))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=build_once) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(paths)) == 1, (errors, paths)
    path = paths[0]
    assert path.is_absolute() and path.parent == tmp_path / "kernels"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary files left
    from space._fast_cpu import _self_check

    assert _self_check(str(path)) == ""


def _train_without_compiler(tmp_path: Path, mode: str) -> subprocess.CompletedProcess:
    empty = tmp_path / "empty_bin"
    empty.mkdir(exist_ok=True)
    arch = tmp_path / "tiny.yaml"
    arch.write_text("stem: 8\nwidths: [16, 32, 64]\ndepths: [1, 2, 1]\nlast: 64\n")
    env = {**os.environ, "PATH": str(empty), CACHE_VAR: str(tmp_path / "cache"), "PYTHONPATH": str(ROOT),
           "GLOG_v": "3"}
    env.pop(ENV_VAR, None)
    args = ["--arch", arch, "--dataset", "fashion_mnist", "--subset", "40", "--val_subset", "20", "--batch_size",
            "20", "--image_resize", "32", "--epoch_size", "1", "--num_parallel_workers", "1", "--device_target",
            "CPU", "--ckpt_save_dir", tmp_path / f"ckpt_{mode}", "--fast_cpu", mode]
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_without_a_compiler_auto_trains_on_stock_ops_and_on_fails(tmp_path):
    proc = _train_without_compiler(tmp_path, "auto")
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = [line for line in (proc.stdout + proc.stderr).splitlines() if "fast CPU path" in line]
    assert said == ["fast CPU path unavailable (kernel build: no C++ compiler (g++) on PATH); "
                    "using MindSpore's stock ops"], said
    assert "done: 1 epochs, 2 steps" in proc.stdout

    proc = _train_without_compiler(tmp_path, "on")
    errors = [line for line in proc.stderr.splitlines() if line.strip() and "WARNING" not in line]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "fast_cpu on" in errors[0] and "no C++ compiler" in errors[0], errors[0]
