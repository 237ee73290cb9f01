"""`search.py proxy`: score one arch with a proxy of accuracy and print the value and time."""

from __future__ import annotations

import argparse
import json

from space import resolve_arch

from .proxy import DEFAULT_PROXY, PROXIES, TRAIN_DEFAULTS, TRAINING_PROXIES, score, train_score

NAME = "proxy"
HELP = "score an arch (reference name or YAML file) with a proxy of accuracy"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("arch", metavar="NAME_OR_ARCH_YAML", help="x0_5 ... x2_0 or an arch YAML file")
    d = TRAIN_DEFAULTS
    parser.add_argument("--proxy", default=DEFAULT_PROXY, choices=PROXIES,
                        help=f"which proxy (default {DEFAULT_PROXY}: minus the mean training loss of a short "
                             "training, the best-ranking within latency groups in the calibration)")
    parser.add_argument("--data", default="fashion_mnist",
                        help="fashion_mnist (built-in) or an ImageNet-style folder with train/ (default fashion_mnist)")
    parser.add_argument("--resolution", type=int, default=d["resolution"],
                        help=f"input side in pixels (default {d['resolution']})")
    parser.add_argument("--batch-size", type=int, default=d["batch_size"],
                        help=f"training batch, or the zero-cost proxies' one batch (default {d['batch_size']})")
    parser.add_argument("--seed", type=int, default=0, help="initialisation and data seed (default 0)")
    parser.add_argument("--epochs", type=int, default=d["epochs"], help=f"train proxy: epochs (default {d['epochs']})")
    parser.add_argument("--subset", type=int, default=d["subset"],
                        help=f"train proxy: training images (default {d['subset']})")
    parser.add_argument("--val-subset", type=int, default=d["val_subset"],
                        help=f"train proxy: val images (default {d['val_subset']})")
    parser.add_argument("--warmup-epochs", type=int, default=d["warmup_epochs"],
                        help=f"train proxy: warm-up epochs (default {d['warmup_epochs']})")
    parser.add_argument("--recipe", default=None,
                        help="train proxy: the training recipe YAML to shorten (default: x0_5's for the data)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from common import UserError

    if args.batch_size < 2:
        raise UserError(f"--batch-size must be at least 2, got {args.batch_size}")
    arch = resolve_arch(args.arch)
    if args.proxy in TRAINING_PROXIES:
        result = train_score(arch, args.data, epochs=args.epochs, subset=args.subset, val_subset=args.val_subset,
                             seed=args.seed, resolution=args.resolution, batch_size=args.batch_size,
                             warmup_epochs=args.warmup_epochs, signal=args.proxy,
                             **({"recipe": args.recipe} if args.recipe else {}))
    else:
        result = score(arch, args.proxy, args.data, seed=args.seed, resolution=args.resolution,
                       batch_size=args.batch_size)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        also = f", val top-1 {result.settings['top1']:.2f}" if args.proxy in TRAINING_PROXIES else ""
        print(f"{result.arch}  {result.proxy} = {result.value:.6g}  ({result.seconds:.2f} s{also}, "
              f"{args.resolution} px, batch {args.batch_size}, seed {args.seed}, data {args.data})")
    return 0
