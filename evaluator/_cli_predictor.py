"""`search.py predictor build | check | show`: kernel-level latency predictors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from space import DEFAULT_REFERENCE, DEFAULT_SPACE

from ._cli_latency import add_settings, cache_arg
from ._cli_lut import ProgressLine, add_check_and_show, print_check, show_references_and_prediction

NAME = "predictor"
HELP = "build a kernel-level latency predictor for any arch of a space, check or show it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ._predictor_build import BATCH, DEFAULT_BUDGET_MINUTES, DEFAULT_BUDGET_PARTS, DEFAULT_WHOLE_ARCHS

    sub = parser.add_subparsers(dest="predictor_command", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="measure sampled parts of the space(s) on this device, fit, save")
    build.add_argument("--space", action="append", default=None, metavar="SPACE_YAML",
                       help="search space to cover; repeat for several (default: the default space)")
    build.add_argument("--out", required=True, help="predictor file to write (JSON)")
    add_settings(build)
    build.add_argument("--repeats", type=int, default=None, help="timed runs per part (default 50; 200 onnxruntime)")
    build.add_argument("--budget-parts", type=int, default=DEFAULT_BUDGET_PARTS,
                       help=f"most parts to measure (default {DEFAULT_BUDGET_PARTS})")
    build.add_argument("--budget-minutes", type=float, default=DEFAULT_BUDGET_MINUTES,
                       help=f"most minutes spent measuring parts, over resumed runs too "
                            f"(default {DEFAULT_BUDGET_MINUTES:g}); whole archs come on top")
    build.add_argument("--whole-archs", type=int, default=DEFAULT_WHOLE_ARCHS,
                       help=f"archs measured whole to fit the graph term (default {DEFAULT_WHOLE_ARCHS})")
    build.add_argument("--batch", type=int, default=BATCH, help=f"parts per worker process (default {BATCH})")
    build.add_argument("--reference", action="append", default=None, metavar="NAME",
                       help="reference measured whole for ratio mode; repeat for several (default x0_5)")
    build.add_argument("--seed", type=int, default=0, help="seed of the whole archs")
    build.add_argument("--cache", default="default", help="SQLite cache for whole archs; 'none' disables it")
    check = add_check_and_show(sub, "predictor", "a space", "a predictor's settings, fits")
    check.add_argument("--space", default=None, help="space to sample (default: the predictor's first space)")


def _build(args: argparse.Namespace) -> int:
    import sys

    from ._predictor_build import build_predictor, check_budget

    check_budget(args.budget_parts, args.budget_minutes, args.whole_archs, args.batch)
    spaces = args.space or [str(DEFAULT_SPACE)]
    out = Path(args.out)
    partial = out.with_name(out.name + ".parts.jsonl")
    sys.stderr.write(f"predictor build: up to {args.budget_parts} parts or {args.budget_minutes:g} minutes of "
                     f"measuring, then {args.whole_archs} whole archs; finished parts kept in {partial} "
                     f"(rerun to resume)\n")
    predictor = build_predictor(spaces, backend=args.backend, device=args.device, device_id=args.device_id,
                                batch_size=args.batch_size, resolution=args.resolution, dtype=args.dtype,
                                warmup=args.warmup, repeats=args.repeats, threads=args.threads, clock=args.clock,
                                budget_parts=args.budget_parts, budget_minutes=args.budget_minutes,
                                whole_archs=args.whole_archs, references=args.reference or [DEFAULT_REFERENCE],
                                seed=args.seed, partial=partial, batch=args.batch, cache=cache_arg(args.cache),
                                progress=ProgressLine("predictor build"))
    predictor.save(out)
    partial.unlink(missing_ok=True)
    g = predictor.data["graph"]
    print(f"wrote {out}: {predictor.data['build']['parts_measured']} parts in {len(predictor.groups())} groups, "
          f"{predictor.data['build']['measure_s'] / 60:.1f} min measuring; graph term {'+'.join(g['terms'])}, "
          f"leave-one-out error {_pct(g['loo_mape_pct'])} on {len(g['archs'])} whole archs")
    return 0


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.2f} %"


def _check(args: argparse.Namespace) -> int:
    from space import SearchSpace

    from .predictor import LatencyPredictor, check_predictor

    predictor = LatencyPredictor.load(args.predictor)
    space = SearchSpace.from_yaml(args.space) if args.space else None
    if space is not None:
        predictor.check(space=space)
    report = check_predictor(predictor, args.n, space=space, seed=args.seed, device_id=args.device_id,
                             repeats=args.repeats, cache=cache_arg(args.cache),
                             progress=ProgressLine("predictor check"))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_check(report)
    return 0


def _show(args: argparse.Namespace) -> int:
    from .predictor import LatencyPredictor

    p = LatencyPredictor.load(args.predictor)
    d = p.data
    print(f"predictor     {args.predictor}: format {d['format']} v{d['version']}, {len(p.groups())} groups, "
          f"{d['build']['parts_measured']} parts measured ({d['build']['measure_s'] / 60:.1f} min)")
    print(f"built for     {d['backend']} on {d['device']}, batch {d['batch_size']}, {d['resolution']} px, "
          f"{d['dtype']}, {d['clock']} clock, space(s) {', '.join(repr(s.name) for s in p.spaces)}")
    env = d["environment"]
    print(f"measured on   {env.get('cpu_model')}, host {env.get('host')}, MindSpore {env.get('mindspore')}, "
          f"{env.get('backend')} {env.get('backend_version')}, {d['created_utc']}")
    print(f"{'group':<12}{'parts':>7}{'of':>8}{'align':>7}{'cv error':>10}  features")
    for name in p.groups():
        g = d["groups"][name]
        print(f"{name:<12}{g['parts']:>7}{g['pool']:>8}{str(g['align'] or '-'):>7}{_pct(g['cv_mape_pct']):>10}  "
              f"{', '.join(g['features'])}")
    graph = d["graph"]
    terms = ", ".join(f"{t} {c:+.4g}" for t, c in zip(graph["terms"], graph["coef"]))
    print(f"graph term    {terms}; leave-one-out {_pct(graph['loo_mape_pct'])} on {len(graph['archs'])} archs")
    show_references_and_prediction(p, args.arch)
    return 0


def run(args: argparse.Namespace) -> int:
    return {"build": _build, "check": _check, "show": _show}[args.predictor_command](args)
