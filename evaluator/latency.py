"""Measured latency of an arch on a real device, in an isolated worker process.

    >>> from evaluator.latency import measure
    >>> r = measure("x0_5", backend="onnxruntime", resolution=224)
    >>> r.median_ms, r.ratio_to_reference

Each call runs one fresh worker (`_worker`): MindSpore is configured there, the candidate and
the reference (default x0_5) are built, compiled, warmed up until their times settle and then
timed in interleaved rounds, so ``ratio_to_reference`` compares runs of the same minutes. A
crash, out-of-memory kill or time-out of the worker comes back as ``LatencyResult.error``.
Results are cached in SQLite (`_cache`), keyed by everything that changes a latency.

Backends are the modules ``evaluator/_backend_<name>.py`` (NAME, DEVICES, DTYPES, REQUIRES,
INSTALL_HINT, version(), set_threads(n), and either prepare(cell, example, device, dtype), timed
in the worker, or export(cell, example, path) plus TIMER, the module of a clean process that
times the exported files); a new file of that shape is a new backend.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Optional, Union

from common import UserError
from space import DEFAULT_REFERENCE, Arch, resolve_arch
from common.runtime import normalize_device

from ._cache import LatencyCache, cache_key
from common.env import host_name, mindspore_version, utc_now
from ._spawn import run_worker
from ._timing import METHOD

DEFAULT_TIMEOUT_S = 900.0
DTYPES = ("float32", "float16")
_USE_DEFAULT_CACHE = "default"


def backends() -> Dict[str, ModuleType]:
    """Every backend module found in the package, by name (installed or not)."""
    import evaluator

    found = {}
    for info in pkgutil.iter_modules(evaluator.__path__):
        if info.name.startswith("_backend_"):
            module = importlib.import_module(f"evaluator.{info.name}")
            found[module.NAME] = module
    return found


def backend_module(name: str) -> ModuleType:
    """The backend called ``name``; a UserError when it is unknown or not installed."""
    known = backends()
    if name not in known:
        raise UserError(f"unknown latency backend {name!r}; choose one of {', '.join(sorted(known))}")
    module = known[name]
    try:
        importlib.import_module(module.REQUIRES)
    except ImportError:
        raise UserError(f"backend {name!r} needs the Python package {module.REQUIRES}, which is not installed: "
                        f"{module.INSTALL_HINT}") from None
    return module


@dataclass
class LatencyResult:
    """One measurement. Times in milliseconds per batch; ``error`` set when it failed."""

    arch: Dict[str, Any]
    arch_key: str
    backend: str
    device: str
    device_id: int
    batch_size: int
    resolution: int
    dtype: str
    threads: Optional[int] = None
    clock: str = "wall"
    median_ms: Optional[float] = None
    mean_ms: Optional[float] = None
    std_ms: Optional[float] = None
    p10_ms: Optional[float] = None
    p90_ms: Optional[float] = None
    runs: int = 0
    warmup_runs: int = 0
    stable: Optional[bool] = None
    compile_s: Optional[float] = None
    reference: Optional[str] = None
    reference_compile_s: Optional[float] = None
    reference_median_ms: Optional[float] = None
    ratio_to_reference: Optional[float] = None
    environment: Dict[str, Any] = field(default_factory=dict)
    error: Optional[str] = None
    cached: bool = False
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def ms_per_image(self) -> Optional[float]:
        return None if self.median_ms is None else self.median_ms / self.batch_size

    @property
    def images_per_second(self) -> Optional[float]:
        return None if not self.median_ms else 1e3 * self.batch_size / self.median_ms

    def to_dict(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        data["ms_per_image"] = self.ms_per_image
        data["images_per_second"] = self.images_per_second
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "LatencyResult":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{name} must be a positive integer, got {value!r}")


def _check_settings(backend: str, device: str, device_id: int, batch_size: int, resolution: int, dtype: str,
                    threads: Optional[int]) -> ModuleType:
    """Validate what the parent can check before spawning; returns the backend module."""
    module = backend_module(backend)
    if device not in module.DEVICES:
        raise UserError(f"backend {backend!r} runs on {', '.join(module.DEVICES)}, not {device}; "
                        f"use --backend mindspore for {device}")
    if isinstance(device_id, bool) or not isinstance(device_id, int) or device_id < 0:
        raise UserError(f"device id must be a non-negative integer, got {device_id!r}")
    if device == "CPU" and device_id != 0:
        raise UserError(f"device id {device_id} does not exist: the CPU is device 0")
    _check_positive("batch size", batch_size)
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 32:
        raise UserError(f"resolution must be an integer of at least 32, got {resolution!r}")
    if dtype not in module.DTYPES:
        raise UserError(f"backend {backend!r} supports dtype {', '.join(module.DTYPES)}, not {dtype!r}")
    if threads is not None:
        _check_positive("threads", threads)
    return module


def base_request(backend: str, device: str, device_id: int, batch_size: int, resolution: int, dtype: str,
                 warmup: int, repeats: int, threads: Optional[int], num_classes: int,
                 clock: str = "wall") -> Dict[str, Any]:
    """Validated settings shared by `measure` and the table builder."""
    from ._timing import CLOCKS

    if clock not in CLOCKS:
        raise UserError(f"unknown clock {clock!r}; choose {' or '.join(CLOCKS)}")
    if clock == "cpu" and threads != 1:
        raise UserError("clock 'cpu' (process CPU time) approximates latency only for single-threaded inference; "
                        "use threads=1")
    device = normalize_device(device)
    _check_settings(backend, device, device_id, batch_size, resolution, dtype, threads)
    _check_positive("warmup", warmup)
    _check_positive("repeats", repeats)
    _check_positive("num_classes", num_classes)
    return {"backend": backend, "device": device, "device_id": device_id, "batch_size": batch_size,
            "resolution": resolution, "dtype": dtype, "warmup": warmup, "repeats": repeats,
            "threads": threads, "num_classes": num_classes, "clock": clock}


def _open_cache(cache: Union[str, Path, LatencyCache, None]) -> Optional[LatencyCache]:
    if cache is None or isinstance(cache, LatencyCache):
        return cache
    return LatencyCache(None if cache == _USE_DEFAULT_CACHE else cache)


def measure(arch: Union[Arch, str, Path], *, backend: str = "mindspore", device: str = "CPU",
            device_id: int = 0, batch_size: int = 1, resolution: int = 224, dtype: str = "float32",
            warmup: int = 10, repeats: int = 50, threads: Optional[int] = 1,
            reference: Union[str, Arch, None] = DEFAULT_REFERENCE, num_classes: int = 1000, clock: str = "wall",
            timeout: float = DEFAULT_TIMEOUT_S, cache: Union[str, Path, LatencyCache, None] = _USE_DEFAULT_CACHE,
            refresh: bool = False) -> LatencyResult:
    """Measure ``arch`` (an Arch, a reference name or an arch YAML path) in a fresh worker.

    Warm-up runs at least ``warmup`` rounds and until the times settle; ``repeats`` timed runs
    follow, each synchronised with the device; the median is the headline. ``threads`` fixes
    the CPU thread count (None: the backend's default). ``reference`` (None to skip) is timed
    in the same worker, interleaved with the candidate. ``cache`` is a SQLite path (default
    ``~/.cache/shufflenas/latency.sqlite``) or None; ``refresh`` re-measures and overwrites.
    ``clock="cpu"`` times process CPU seconds instead of elapsed time (see `_timing.CLOCKS`):
    on a host shared with other jobs it tracks the unloaded latency of 1-thread inference.

    Bad settings raise UserError; failures of the measurement itself (crash, out of memory,
    time-out, a device id that does not exist) return a result with ``error`` set.
    """
    start = time.perf_counter()
    cand = resolve_arch(arch)
    ref = None if reference is None else resolve_arch(reference)
    req = base_request(backend, device, device_id, batch_size, resolution, dtype, warmup, repeats, threads,
                       num_classes, clock)
    ref_label = None if ref is None else (reference if isinstance(reference, str) else ref.name)
    result = LatencyResult(arch=cand.to_dict(), arch_key=cand.key, backend=backend, device=req["device"],
                           device_id=device_id, batch_size=batch_size, resolution=resolution, dtype=dtype,
                           threads=threads, clock=clock, reference=ref_label)
    store = _open_cache(cache)
    key = cache_key([cand.key, backend, req["device"], batch_size, resolution, dtype, mindspore_version(),
                     host_name(), threads, num_classes, None if ref is None else ref.key]
                    + ([] if clock == "wall" else [clock]) + [METHOD])
    if store is not None and not refresh:
        hit = store.get(key)
        if hit is not None:
            found = LatencyResult.from_dict(hit)
            found.cached = True
            found.wall_s = time.perf_counter() - start
            return found

    req.update(kind="measure", arch=cand.to_dict(), reference=None if ref is None else ref.to_dict())
    records, error = run_worker(req, timeout)
    for record in records:
        if "environment" in record:
            result.environment = record["environment"]
        elif "error" in record:
            error = error or record["error"]
        else:
            unknown = sorted(set(record) - {f.name for f in dataclasses.fields(LatencyResult)})
            if unknown:  # the worker and this result disagree: a bug to fix, never numbers to drop
                raise RuntimeError(f"latency worker sent fields LatencyResult lacks: {', '.join(unknown)}")
            for name, value in record.items():
                setattr(result, name, value)
    if error is None and result.median_ms is None:
        error = "worker finished without a result"
    result.error = error
    if result.threads is None:
        result.threads = result.environment.get("threads")
    result.wall_s = time.perf_counter() - start
    if store is not None and result.ok:
        store.put(key, result.to_dict(), utc_now())
    return result


__all__ = ["DEFAULT_REFERENCE", "LatencyResult", "backend_module", "backends", "measure"]
