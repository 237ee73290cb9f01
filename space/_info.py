"""`search.py info`: an arch and its analytic cost, per stage or per layer."""

from __future__ import annotations

import argparse
import json
from typing import Dict, List

from ._cost import Cost, LayerCost, cost
from ._model import resolve_arch
from ._reference import reference_model, reference_name

NAME = "info"
HELP = "print an arch (reference name or YAML file) and its cost table"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("arch", metavar="NAME_OR_ARCH_YAML",
                        help="x0_5, x1_0, x1_5, x2_0 (or shufflenet_v2_x0_5 ...) or an arch YAML file")
    parser.add_argument("--resolution", type=int, default=224, help="input side in pixels (default 224)")
    parser.add_argument("--num-classes", type=int, default=1000, help="classifier outputs (default 1000)")
    parser.add_argument("--layers", action="store_true", help="print every layer, not one row per stage")
    parser.add_argument("--json", action="store_true", help="print the arch and totals as JSON")


def stage_of(layer: LayerCost, depths) -> str:
    """'stem', 'stage1'..'stage3' or 'head' for a layer row."""
    if layer.name.startswith(("first_conv", "max_pool")):
        return "stem"
    if layer.name.startswith("features."):
        block = int(layer.name.split(".")[1])
        bound = 0
        for i, depth in enumerate(depths):
            bound += depth
            if block < bound:
                return f"stage{i + 1}"
    return "head"


def _group(c: Cost) -> Dict[str, List[LayerCost]]:
    groups: Dict[str, List[LayerCost]] = {}
    for layer in c.layers:
        groups.setdefault(stage_of(layer, c.arch.depths), []).append(layer)
    return groups


def format_cost(c: Cost, layers: bool = False) -> str:
    arch = c.arch
    ref = reference_name(arch)
    lines = [
        f"arch           {arch.name}" + (f"  (reference {ref})" if ref else ""),
        f"key            {arch.key}",
        f"stem {arch.stem} | widths {' '.join(map(str, arch.widths))} | depths {' '.join(map(str, arch.depths))}"
        f" | last {arch.last} | kernels {' '.join(map(str, arch.kernels))}",
        f"resolution     {c.resolution} x {c.resolution}, batch 1",
        f"params         {c.params:,} trainable, {c.params_with_bn_stats:,} with BN statistics",
        f"FLOPs          {c.flops / 1e6:.2f} M multiply-adds"
        + (f" (paper: {reference_model(ref).paper_mflops:g} M at 224)" if ref and c.resolution == 224 else ""),
        f"memory access  {c.mac / 1e6:.2f} M elements (activations read + written, weights)",
        f"element-wise   {c.elementwise_ops} ops over {c.elementwise_elements / 1e6:.2f} M elements",
        f"fragmentation  {c.fragmentation} computing branches, {c.num_ops} operators",
        "",
    ]
    header = f"{'':<34}{'op':<8}{'in':>6}{'out':>6}{'k':>3}{'s':>3}{'size':>9}{'params':>11}{'MFLOPs':>9}{'MAC (M)':>9}"
    if layers:
        lines.append(header)
        for r in c.layers:
            lines.append(f"{r.name:<34}{r.op:<8}{r.in_channels:>6}{r.out_channels:>6}{r.kernel:>3}{r.stride:>3}"
                         f"{f'{r.in_size}>{r.out_size}':>9}{r.params:>11,}{r.flops / 1e6:>9.2f}{r.mac / 1e6:>9.3f}")
        return "\n".join(lines)
    lines.append(f"{'part':<8}{'ops':>5}{'size':>10}{'params':>12}{'MFLOPs':>9}{'MAC (M)':>9}{'elem (M)':>10}")
    for part, rows in _group(c).items():
        size = f"{rows[0].in_size}>{rows[-1].out_size}"
        lines.append(f"{part:<8}{len(rows):>5}{size:>10}{sum(r.params for r in rows):>12,}"
                     f"{sum(r.flops for r in rows) / 1e6:>9.2f}{sum(r.mac for r in rows) / 1e6:>9.3f}"
                     f"{sum(r.elementwise for r in rows) / 1e6:>10.3f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from common.errors import UserError

    if args.resolution < 32:
        raise UserError(f"--resolution must be at least 32, got {args.resolution}")
    if args.num_classes < 1:
        raise UserError(f"--num-classes must be positive, got {args.num_classes}")
    arch = resolve_arch(args.arch)
    c = cost(arch, args.resolution, args.num_classes)
    if args.json:
        print(json.dumps({"arch": arch.to_dict(), "name": arch.name, "key": arch.key,
                          "reference": reference_name(arch), **c.summary()}, indent=2))
    else:
        print(format_cost(c, layers=args.layers))
    return 0


def reference_table_markdown() -> str:
    """The README's table of the reference variants, computed by the cost model (a test keeps them equal)."""
    from ._reference import REFERENCES

    lines = [
        "| variant | widths | depths | last | params (trainable) | params (with BN stats) | MFLOPs (cost model)"
        " | MFLOPs (paper) | MAC (M elements) | element-wise ops | fragmentation | top-1 / top-5 (MindCV) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, ref in REFERENCES.items():
        c, a = cost(ref.arch), ref.arch
        lines.append(
            f"| {name} | {', '.join(map(str, a.widths))} | {', '.join(map(str, a.depths))} | {a.last}"
            f" | {c.params:,} | {c.params_with_bn_stats:,} | {c.mflops:.1f} | {ref.paper_mflops:g}"
            f" | {c.mac / 1e6:.2f} | {c.elementwise_ops} | {c.fragmentation} | {ref.top1} / {ref.top5} |"
        )
    return "\n".join(lines)
