"""What one trial records, as one typed record: `TrialRecord`.

A trial writes its facts as Optuna user attributes while it runs (the arch first, then the
latency, then the proxy), and every reader (progress lines, trials.csv, report, verdict,
verify, the final round, best.yaml / pareto.yaml and export) reads them back through
`TrialRecord.of(trial)`; nobody indexes ``user_attrs`` by string. Each attribute is JSON and
small enough for optuna-dashboard to show whole. Studies written before this record existed
load as they are: a missing attribute reads as its default.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional

import optuna

def _reused(default: Any = None, *, factory: Any = None) -> Any:
    """A field an arch's repeat copies from the trial that evaluated it."""
    if factory is not None:
        return field(default_factory=factory, metadata={"reused": True})
    return field(default=default, metadata={"reused": True})


def clean(value: Any) -> Any:
    """JSON-safe copy (Optuna stores user attributes as JSON): NaN and inf become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


@dataclass
class TrialRecord:
    """The user attributes of one search trial."""

    arch: Optional[Dict[str, Any]] = None           # Arch.to_dict()
    arch_name: Optional[str] = None
    arch_key: Optional[str] = None
    cost: Dict[str, Any] = field(default_factory=dict)  # Cost.summary(): params, flops, mac, ...
    reference: Optional[str] = None                 # set when the trial is an enqueued reference
    latency: Dict[str, Any] = _reused(factory=dict)      # the measured result's numbers
    latency_env: Dict[str, Any] = _reused(factory=dict)  # the machine it was measured on
    latency_ms: Optional[float] = _reused()
    latency_ratio: Optional[float] = _reused()     # to the reference, measured alongside
    latency_value: Optional[float] = _reused()     # in the budget's unit (ms or ratio)
    latency_estimate: Optional[float] = _reused()  # the pre-filter's estimate
    proxy: Dict[str, Any] = _reused(factory=dict)  # ProxyResult.to_dict() without the curve
    proxy_curve: List[Any] = _reused(factory=list)  # per epoch, training proxies
    feasible: Optional[bool] = _reused()
    reason: Optional[str] = _reused()              # why infeasible (or pruned)
    failure: Optional[str] = None                  # why the candidate could not be evaluated
    duplicate_of: Optional[int] = None             # the trial whose evaluation this one reuses
    reproposal: bool = False                       # a repeat that used no trial slot
    seconds: Optional[float] = None                # wall time of the trial
    eval_seconds: Optional[float] = None           # of which measuring and scoring

    # ---------------------------------------------------------------- reading
    @classmethod
    def of(cls, trial: optuna.trial.FrozenTrial) -> "TrialRecord":
        attrs = trial.user_attrs
        return cls(**{f.name: attrs[f.name] for f in fields(cls) if f.name in attrs})

    @property
    def proxy_value(self) -> Optional[float]:
        return self.proxy.get("value")

    @property
    def problem(self) -> Optional[str]:
        """Why the trial did not count as a feasible evaluation (infeasible, or failed), if it did not."""
        return self.reason or self.failure

    @property
    def is_feasible(self) -> bool:
        """Feasible unless it says otherwise (a study without the attribute had no budget)."""
        return self.feasible is not False

    @property
    def repeats_another(self) -> bool:
        return self.duplicate_of is not None

    def arch_obj(self):
        from space import Arch

        return Arch.from_dict(self.arch)

    # ---------------------------------------------------------------- writing
    @classmethod
    def write(cls, trial: optuna.Trial, **values: Any) -> None:
        """Set these attributes on a running trial (names are checked against the record's fields)."""
        known = cls.__dataclass_fields__
        for name, value in values.items():
            if name not in known:
                raise KeyError(f"TrialRecord has no field {name!r}")
            trial.set_user_attr(name, clean(value))

    @classmethod
    def reused_fields(cls) -> List[str]:
        return [f.name for f in fields(cls) if f.metadata.get("reused")]

    def copy_reused(self, trial: optuna.Trial) -> None:
        """Write the evaluation of this (earlier) trial onto ``trial``, a repeat of the same arch."""
        defaults = TrialRecord()
        for name in self.reused_fields():
            value = getattr(self, name)
            if value != getattr(defaults, name):
                trial.set_user_attr(name, value)



@dataclass(frozen=True)
class SelectionEntry:
    """One arch of best.yaml / pareto.yaml: its trial, its record and (with a final round) its
    final-round numbers. The YAML keys are the ones `search.py export` and users read."""

    trial: int
    record: TrialRecord
    final: Optional[Dict[str, Any]] = None

    def to_yaml(self) -> Dict[str, Any]:
        r = self.record
        entry = {"trial": self.trial, "name": r.arch_name, "arch": r.arch, "latency_ms": r.latency_ms,
                 "latency_ratio": r.latency_ratio, "proxy": r.proxy_value, "reference": r.reference}
        if self.final is not None:
            entry["final"] = self.final
        return entry

    @classmethod
    def from_yaml(cls, entry: Dict[str, Any]) -> "SelectionEntry":
        proxy = {"value": entry["proxy"]} if entry.get("proxy") is not None else {}
        record = TrialRecord(arch=entry.get("arch"), arch_name=entry.get("name"), latency_ms=entry.get("latency_ms"),
                             latency_ratio=entry.get("latency_ratio"), proxy=proxy, reference=entry.get("reference"))
        return cls(trial=entry.get("trial"), record=record, final=entry.get("final"))


@dataclass(frozen=True)
class Verification:
    """A chosen arch measured on the device after a table or predictor chose it (``*+verify``).

    Kept in the study's user attribute ``verified`` ({trial number: record}): a finished trial
    cannot be changed in Optuna."""

    ms: Optional[float] = None
    ratio: Optional[float] = None
    error: Optional[str] = None
    within_budget: Optional[bool] = None

    @classmethod
    def all_of(cls, study: optuna.Study) -> Dict[int, "Verification"]:
        known = cls.__dataclass_fields__
        return {int(k): cls(**{f: x for f, x in v.items() if f in known})
                for k, v in study.user_attrs.get("verified", {}).items()}

    @staticmethod
    def save_all(study: optuna.Study, records: Dict[int, "Verification"]) -> None:
        study.set_user_attr("verified", {str(k): clean(dataclasses.asdict(v)) for k, v in records.items()})


__all__ = ["SelectionEntry", "TrialRecord", "Verification", "clean"]
