"""The hand-designed ShuffleNetV2 variants and their published numbers.

This is the single place these numbers live; tests, docs, benchmarks and reports read them
from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from ._arch import Arch
from common.errors import UserError

_PREFIX = "shufflenet_v2_"
# The reference a search compares with unless told otherwise: the variant the recipes reproduce
# and the latency budgets are relative to.
DEFAULT_REFERENCE = "x0_5"


@dataclass(frozen=True)
class ReferenceModel:
    """A hand-designed variant with the numbers other work quotes for it."""

    name: str  # short name, e.g. "x0_5"
    arch: Arch
    paper_mflops: float  # multiply-adds at 224 px, Ma et al. 2018, Table 5
    params_trainable: int
    params_with_bn_stats: int  # MindCV's figure counts BN moving mean/var too
    top1: float  # ImageNet-1K val, MindCV's runs (8 cards x batch 64)
    top5: float

    @property
    def mindcv_name(self) -> str:
        return _PREFIX + self.name


def _ref(name: str, widths: Tuple[int, int, int], last: int, **numbers) -> ReferenceModel:
    return ReferenceModel(name=name, arch=Arch(stem=24, widths=widths, depths=(4, 8, 4), last=last), **numbers)


REFERENCES: Dict[str, ReferenceModel] = {
    r.name: r
    for r in (
        _ref("x0_5", (48, 96, 192), 1024, paper_mflops=41, params_trainable=1_365_792,
             params_with_bn_stats=1_373_744, top1=60.65, top5=82.26),
        _ref("x1_0", (116, 232, 464), 1024, paper_mflops=146, params_trainable=2_278_760,
             params_with_bn_stats=2_294_940, top1=69.47, top5=88.88),
        _ref("x1_5", (176, 352, 704), 1024, paper_mflops=299, params_trainable=3_506_720,
             params_with_bn_stats=3_530_160, top1=72.79, top5=90.93),
        _ref("x2_0", (244, 488, 976), 2048, paper_mflops=591, params_trainable=7_402_600,
             params_with_bn_stats=7_436_316, top1=75.07, top5=92.08),
    )
}


def _short(name: str) -> str:
    return name[len(_PREFIX):] if name.startswith(_PREFIX) else name


def reference_model(name: str) -> ReferenceModel:
    """The reference entry for ``x0_5`` … ``x2_0`` (MindCV's ``shufflenet_v2_x0_5`` also accepted)."""
    short = _short(name)
    if short not in REFERENCES:
        known = ", ".join(REFERENCES)
        raise UserError(f"unknown reference model {name!r}; choose one of {known} (or shufflenet_v2_<name>)")
    return REFERENCES[short]


def reference(name: str) -> Arch:
    """The Arch of a reference variant: ``x0_5``, ``x1_0``, ``x1_5`` or ``x2_0``."""
    return reference_model(name).arch


def reference_name(arch: Arch) -> Optional[str]:
    """The short name of the reference equal to ``arch``, or None."""
    for ref in REFERENCES.values():
        if ref.arch == arch:
            return ref.name
    return None


def is_reference_name(name: str) -> bool:
    return _short(name) in REFERENCES
