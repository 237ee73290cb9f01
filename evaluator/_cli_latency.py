"""`search.py latency`: measure one arch on a device and print the result."""

from __future__ import annotations

import argparse
import json

from common import UserError
from space import DEFAULT_REFERENCE

from .latency import DEFAULT_TIMEOUT_S

NAME = "latency"
HELP = "measure an arch's inference latency on a device (isolated worker, cached)"


def add_settings(parser: argparse.ArgumentParser, batch: bool = True) -> None:
    """Flags shared with `lut build`: backend, device, sizes, repeats, threads."""
    parser.add_argument("--backend", default="mindspore", help="mindspore (default, any device) or onnxruntime (CPU)")
    parser.add_argument("--device", default="CPU", help="CPU (default), GPU or Ascend")
    parser.add_argument("--device-id", type=int, default=0, help="device number (default 0)")
    if batch:
        parser.add_argument("--batch-size", type=int, default=1, help="images per run (default 1)")
        parser.add_argument("--resolution", type=int, default=224, help="input side in pixels (default 224)")
        parser.add_argument("--dtype", default="float32", choices=("float32", "float16"), help="default float32")
    parser.add_argument("--warmup", type=int, default=10, help="least warm-up runs; more until stable (default 10)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads, fixed for repeatability (default 1)")
    parser.add_argument("--clock", default="wall", choices=("wall", "cpu"),
                        help="wall: elapsed time (default); cpu: process CPU time, for 1 thread on a busy shared host")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("arch", metavar="NAME_OR_ARCH_YAML", help="x0_5, x1_0, ... or an arch YAML file")
    add_settings(parser)
    parser.add_argument("--repeats", type=int, default=50, help="timed runs (default 50)")
    parser.add_argument("--reference", default=DEFAULT_REFERENCE,
                        help="arch timed interleaved with the candidate for ratio_to_reference; 'none' to skip")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds before the worker is killed")
    parser.add_argument("--cache", default="default",
                        help="SQLite cache file (default ~/.cache/shufflenas/latency.sqlite); 'none' disables it")
    parser.add_argument("--refresh", action="store_true", help="measure again even when cached")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")


def format_result(r) -> str:
    env = r.environment
    lines = [
        f"arch          {r.arch_key}  stem {r.arch['stem']} | widths {r.arch['widths']} | depths {r.arch['depths']}"
        f" | last {r.arch['last']}",
        f"setting       {r.backend} on {r.device}:{r.device_id}, batch {r.batch_size}, {r.resolution} px, {r.dtype},"
        f" {r.threads} thread(s), {r.clock} clock",
        f"latency       median {r.median_ms:.3f} ms  (p10 {r.p10_ms:.3f}, p90 {r.p90_ms:.3f}, mean {r.mean_ms:.3f}"
        f" +- {r.std_ms:.3f}; {r.runs} runs after {r.warmup_runs} warm-up{'' if r.stable else ', NOT settled'})",
        f"throughput    {r.ms_per_image:.3f} ms per image, {r.images_per_second:.1f} images/s",
        f"compile       {r.compile_s:.2f} s (first call)",
    ]
    if r.ratio_to_reference is not None:
        lines.append(f"reference     {r.reference}: {r.reference_median_ms:.3f} ms; ratio {r.ratio_to_reference:.3f}")
    lines.append(f"environment   MindSpore {env.get('mindspore')}, {env.get('backend')} {env.get('backend_version')}, "
                 f"{env.get('cpu_model')}, host {env.get('host')}, load {env.get('load_average')}, {env.get('time_utc')}")
    lines.append("cached        yes (use --refresh to measure again)" if r.cached else f"wall time     {r.wall_s:.1f} s")
    return "\n".join(lines)


def cache_arg(value: str):
    return None if value.lower() == "none" else value


def run(args: argparse.Namespace) -> int:
    from .latency import measure

    reference = None if args.reference.lower() == "none" else args.reference
    if args.timeout <= 0:
        raise UserError(f"--timeout must be positive, got {args.timeout}")
    result = measure(args.arch, backend=args.backend, device=args.device, device_id=args.device_id,
                     batch_size=args.batch_size, resolution=args.resolution, dtype=args.dtype, warmup=args.warmup,
                     repeats=args.repeats, threads=args.threads, clock=args.clock, reference=reference,
                     timeout=args.timeout,
                     cache=cache_arg(args.cache), refresh=args.refresh)
    if not result.ok:
        raise UserError(f"latency measurement failed: {result.error}")
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_result(result))
    return 0
