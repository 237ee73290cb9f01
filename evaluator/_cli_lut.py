"""`search.py lut build | check | show`: per-part latency tables."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Optional
from pathlib import Path

from common import UserError
from space import DEFAULT_SPACE

from ._cli_latency import add_settings, cache_arg

NAME = "lut"
HELP = "build a per-part latency lookup table for a search space, or check its predictions"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="lut_command", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="measure every part of a space and save the table")
    build.add_argument("--space", default=str(DEFAULT_SPACE), help="search space YAML (default: the default space)")
    build.add_argument("--out", required=True, help="table file to write (JSON)")
    add_settings(build)
    build.add_argument("--repeats", type=int, default=None, help="timed runs per part (default 50; 200 onnxruntime)")
    build.add_argument("--fit-archs", type=int, default=5, help="archs measured whole to fit the overhead (default 5)")
    build.add_argument("--seed", type=int, default=0, help="seed of the fit archs")
    build.add_argument("--max-parts", type=int, default=2000,
                       help="refuse spaces with more distinct parts than this (default 2000)")
    build.add_argument("--cache", default="default", help="SQLite cache for the fit archs; 'none' disables it")
    add_check_and_show(sub, "table", "the table's space", "a table's settings")


def add_check_and_show(sub, dest: str, sampled: str, shown: str) -> argparse.ArgumentParser:
    """The ``check`` and ``show`` actions tables and predictors share; returns ``check``'s parser."""
    check = sub.add_parser("check", help=f"predicted vs measured latency on archs sampled from {sampled}")
    check.add_argument(dest, metavar="FILE")
    check.add_argument("--n", type=int, default=30, help="archs to sample (default 30)")
    check.add_argument("--seed", type=int, default=1)
    check.add_argument("--device-id", type=int, default=0)
    check.add_argument("--repeats", type=int, default=50)
    check.add_argument("--cache", default="default", help="SQLite cache; 'none' disables it")
    check.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help=f"print {shown} and the predicted latency of an arch")
    show.add_argument(dest, metavar="FILE")
    show.add_argument("--arch", metavar="NAME_OR_ARCH_YAML", help="predict this arch")
    return check


class ProgressLine:
    """``done/total, elapsed, ETA`` on stderr; one line per step (logs stay readable)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.start = time.monotonic()
        self.first_done = None

    def __call__(self, done: int, total: int, what: str) -> None:
        now = time.monotonic()
        if self.first_done is None:
            self.first_done = (done - 1, self.start)
        base, t0 = self.first_done
        rate = (now - t0) / max(done - base, 1)
        eta = rate * (total - done)
        sys.stderr.write(f"{self.label}: {done}/{total} done, {_clock(now - self.start)} elapsed, "
                         f"ETA {_clock(eta)}  {what}\n")
        sys.stderr.flush()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _build(args: argparse.Namespace) -> int:
    from space import SearchSpace

    from .lut import build_table, space_part_count

    space = SearchSpace.from_yaml(args.space)
    count = space_part_count(space)
    if count > args.max_parts:
        raise UserError(f"space {space.name!r} has {count} distinct parts (every stride-2 width pair is one); "
                        f"measuring them costs a graph compile each. Use a coarser space such as "
                        f"configs/spaces/lut_cpu.yaml, or raise --max-parts")
    out = Path(args.out)
    partial = out.with_name(out.name + ".parts.jsonl")
    sys.stderr.write(f"lut build: {count} parts of space {space.name!r} + {args.fit_archs} fit archs; "
                     f"finished parts kept in {partial} (rerun to resume)\n")
    table = build_table(space, backend=args.backend, device=args.device, device_id=args.device_id,
                        batch_size=args.batch_size, resolution=args.resolution, dtype=args.dtype,
                        warmup=args.warmup, repeats=args.repeats, threads=args.threads, clock=args.clock,
                        fit_archs=args.fit_archs,
                        seed=args.seed, partial=partial, cache=cache_arg(args.cache),
                        progress=ProgressLine("lut build"))
    table.save(out)
    partial.unlink(missing_ok=True)
    fit = table.overhead
    print(f"wrote {out}: {len(table.entries)} parts" + (
        f"; overhead fit intercept {fit['intercept_ms']:.3f} ms, scale {fit['scale']:.3f}, R^2 {fit['r2']:.3f}"
        if fit else ""))
    return 0


def _check(args: argparse.Namespace) -> int:
    from .lut import LatencyTable, check_table

    table = LatencyTable.load(args.table)
    report = check_table(table, args.n, seed=args.seed, device_id=args.device_id, repeats=args.repeats,
                         cache=cache_arg(args.cache), progress=ProgressLine("lut check"))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_check(report)
    return 0


def print_check(report: dict) -> None:
    """The rows and summary of `_check.check_predictions` as a table."""
    print(f"{'arch':<34}{'predicted ms':>14}{'measured ms':>13}{'error %':>9}")
    for row in report["rows"]:
        if row["error"]:
            print(f"{row['arch']:<34}{row['predicted_ms']:>14.3f}  FAILED: {row['error']}")
        else:
            print(f"{row['arch']:<34}{row['predicted_ms']:>14.3f}{row['measured_ms']:>13.3f}{row['error_pct']:>+9.1f}")
    print(f"MAPE {report['mape_pct']:.2f} %, worst {report['max_abs_error_pct']:.2f} %, "
          f"{report['within_5pct']}/{report['measured']} within 5 %, {report['within_10pct']}/{report['measured']} "
          f"within 10 %" + (f"; {report['failed']} measurements failed" if report["failed"] else ""))


def _show(args: argparse.Namespace) -> int:
    from .lut import LatencyTable

    table = LatencyTable.load(args.table)
    d = table.data
    print(f"table         {args.table}: format {d['format']} v{d['version']}, {len(table.entries)} parts")
    print(f"built for     {d['backend']} on {d['device']}, batch {d['batch_size']}, {d['resolution']} px, "
          f"{d['dtype']}, {d.get('clock', 'wall')} clock, space {table.space.name!r}")
    env = d["environment"]
    print(f"measured on   {env.get('cpu_model')}, host {env.get('host')}, MindSpore {env.get('mindspore')}, "
          f"{d['created_utc']}")
    if d["overhead"]:
        o = d["overhead"]
        print(f"overhead fit  intercept {o['intercept_ms']:.3f} ms, scale {o['scale']:.3f}, R^2 {o['r2']:.3f} "
              f"on {len(o['archs'])} archs")
    show_references_and_prediction(table, args.arch)
    return 0


def show_references_and_prediction(model, arch: Optional[str]) -> None:
    """`show`'s last lines: the references measured at build time, and ``arch`` predicted."""
    from space import resolve_arch

    for name, ref in (model.data.get("references") or {}).items():
        print(f"reference     {name}: {ref['median_ms']:.3f} ms measured")
    if arch:
        arch = resolve_arch(arch)
        print(f"prediction    {arch.name}: {model.predict(arch):.3f} ms")


def run(args: argparse.Namespace) -> int:
    return {"build": _build, "check": _check, "show": _show}[args.lut_command](args)
