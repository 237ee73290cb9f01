"""The final round: the proxy's best few and the references, trained longer on several seeds.

The proxy ranks archs from one short training; the verdict of a search must survive longer
training, so after the proxy phase the top ``final_k`` feasible archs (in Pareto mode the
front thinned to k) and every reference inside the space are trained with a longer budget
on the same data, on ``final_seeds`` seeds, and the winner is declared from these numbers
only. With ``halving_rungs`` R > 0 (constrained mode), successive halving comes first: the
top k * eta^R archs by proxy train with 1/eta^R of the final images, the best 1/eta of them
go on to the next rung, until k reach the final budget.

Work items live in a second Optuna study in the same storage, ``<study>:final``: one trial
per (stage, arch, seed), planned and handed out under the study lock, so several workers or
hosts share them and none is trained twice; a killed worker's item goes stale (heartbeat) and
is retried, resuming from its epoch checkpoints when they are on this host.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import optuna

from common import UserError
from evaluator.proxy import TRAINING_PROXIES
from space import Arch

from ._record import TrialRecord, clean
from ._storage import StudyStorage, fail_stale
from ._trials import distinct, is_feasible, reference_trials

TrialState = optuna.trial.TrialState
FINAL_SUFFIX = ":final"
POLL_S = 2.0


@dataclass(frozen=True)
class FinalSettings:
    """The final round's budget (from the search config's ``final_*`` and ``halving_*`` keys)."""

    k: int
    epochs: int
    subset: Optional[int]
    val_subset: Optional[int]
    resolution: int
    batch_size: int
    warmup_epochs: int
    seeds: Tuple[int, ...]
    rungs: int
    eta: int
    data: str
    recipe: Optional[str]

    @classmethod
    def from_config(cls, cfg: Any) -> "FinalSettings":
        return cls(k=cfg.final_k, epochs=cfg.final_epochs, subset=cfg.final_subset,
                   val_subset=cfg.final_val_subset if cfg.final_val_subset is not None else cfg.proxy_val_subset,
                   resolution=cfg.final_resolution or cfg.proxy_resolution,
                   batch_size=cfg.final_batch_size or cfg.proxy_batch_size, warmup_epochs=cfg.final_warmup_epochs,
                   seeds=tuple(cfg.final_seeds), rungs=cfg.halving_rungs, eta=cfg.halving_eta,
                   data=cfg.proxy_data, recipe=cfg.proxy_recipe)

    @property
    def final_stage(self) -> int:
        return self.rungs

    def subset_at(self, stage: int) -> Optional[int]:
        """Training images per epoch at ``stage`` (the final stage: ``subset``)."""
        if stage == self.final_stage or self.subset is None:
            return self.subset
        return max(self.batch_size, int(round(self.subset / self.eta ** (self.final_stage - stage))))

    def width_at(self, stage: int) -> int:
        """How many candidates train at ``stage``."""
        return self.k * self.eta ** (self.final_stage - stage)

    def describe(self, stage: Optional[int] = None) -> str:
        stage = self.final_stage if stage is None else stage
        images = "all" if self.subset_at(stage) is None else f"{self.subset_at(stage):,}"
        seeds = len(self.seeds) if stage == self.final_stage else 1
        return (f"{self.epochs} epoch{'s' if self.epochs > 1 else ''} x {images} images at {self.resolution} px, "
                f"{seeds} seed{'s' if seeds > 1 else ''}")


def validate_settings(cfg: Any) -> None:
    """Config errors of the final round, each one clear line."""
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise UserError(message)

    need(cfg.final_k >= 0, f"final_k must be at least 0 (0 turns the final round off), got {cfg.final_k}")
    if cfg.final_k == 0:
        return
    need(cfg.final_epochs >= 1, f"final_epochs must be at least 1, got {cfg.final_epochs}")
    need(len(cfg.final_seeds) >= 2 and len(set(cfg.final_seeds)) == len(cfg.final_seeds),
         f"final_seeds needs at least 2 distinct seeds (a verdict from one seed is noise), got {cfg.final_seeds}")
    need(cfg.final_warmup_epochs >= 0, f"final_warmup_epochs must be at least 0, got {cfg.final_warmup_epochs}")
    need(cfg.halving_rungs >= 0, f"halving_rungs must be at least 0, got {cfg.halving_rungs}")
    need(cfg.halving_eta >= 2, f"halving_eta must be at least 2, got {cfg.halving_eta}")
    need(cfg.halving_rungs == 0 or cfg.mode == "constrained",
         "halving_rungs works in constrained mode (Pareto finalists are spread over latency, not halved)")
    need(cfg.halving_rungs == 0 or cfg.final_subset is not None,
         "halving_rungs needs final_subset (the rungs train 1/eta^r of its images)")
    if cfg.proxy in TRAINING_PROXIES:
        _need_longer_than_the_proxy(cfg)


def _need_longer_than_the_proxy(cfg: Any) -> None:
    """A final round must see more images than the proxy did, on the images the data has."""
    available = None
    if Path(str(cfg.proxy_data)).is_dir():  # a folder smaller than the subsets caps both
        from training._folder import count_images, split_dir

        available = count_images(split_dir(str(cfg.proxy_data), "train"))
    elif cfg.final_subset is None or cfg.proxy_subset is None:
        return  # the whole of a built-in train split: nothing to compare without loading it

    def seen(epochs: int, subset: Optional[int]) -> Tuple[int, str]:
        per_epoch = min(x for x in (subset, available) if x is not None)
        capped = " (all the train split has)" if available is not None and per_epoch == available else ""
        return epochs * per_epoch, f"{epochs} x {per_epoch:,} images{capped}"

    (final, final_text), (proxy, proxy_text) = seen(cfg.final_epochs, cfg.final_subset), \
        seen(cfg.proxy_epochs, cfg.proxy_subset)
    if final <= proxy:
        raise UserError(f"the final round ({final_text}) is not longer than the proxy ({proxy_text}): raise "
                        "final_epochs or final_subset, or set final_k: 0")


# ---------------------------------------------------------------- choosing who trains

@dataclass
class WorkItem:
    """One training of the final round (a trial of ``<study>:final``): its user attributes, typed."""

    stage: int
    seed: int
    role: str                        # candidate | reference
    arch: Dict[str, Any]
    arch_key: str
    arch_name: str
    source_trial: int                # the proxy-phase trial it comes from
    feasible: bool
    reference: Optional[str] = None  # its reference name, if it is one
    proxy: Optional[float] = None
    latency_ms: Optional[float] = None
    latency_ratio: Optional[float] = None
    failure: Optional[str] = None    # why its training failed
    result: Optional[Dict[str, Any]] = None  # what the training recorded (seconds, top-1, TSE, curve)

    @classmethod
    def of(cls, trial: optuna.trial.FrozenTrial) -> "WorkItem":
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in trial.user_attrs.items() if k in known})

    @classmethod
    def from_trial(cls, t: optuna.trial.FrozenTrial, stage: int, seed: int, role: str) -> "WorkItem":
        r = TrialRecord.of(t)
        return cls(stage=stage, seed=seed, role=role, arch=r.arch, arch_key=r.arch_key, arch_name=r.arch_name or "",
                   source_trial=t.number, feasible=is_feasible(t) if t.state == TrialState.COMPLETE else False,
                   reference=r.reference, proxy=r.proxy_value, latency_ms=r.latency_ms, latency_ratio=r.latency_ratio)

    def attrs(self) -> Dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @property
    def slot(self) -> Tuple[int, str, int]:
        return self.stage, self.arch_key, self.seed

    def label(self) -> str:
        return f"{self.arch_name}{' (' + self.reference + ')' if self.reference else ''} seed {self.seed}"


def proxy_candidates(study: optuna.Study, count: int) -> List[optuna.trial.FrozenTrial]:
    """The ``count`` best feasible archs by proxy (constrained), or the Pareto front thinned to ``count``."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if is_feasible(t)]
    if len(study.directions) == 1:
        return distinct(sorted(done, key=lambda t: t.values[0], reverse=True))[:count]
    front = distinct(sorted((t for t in study.best_trials if is_feasible(t)), key=lambda t: t.values[1]))
    if len(front) <= count:
        return front
    # Evenly along latency: both ends, the rest at equal steps of the front's index.
    picks = sorted({round(i * (len(front) - 1) / (count - 1)) for i in range(count)}) if count > 1 else [0]
    return [front[i] for i in picks]


# ---------------------------------------------------------------- the work queue

def final_study_name(study_name: str) -> str:
    return study_name + FINAL_SUFFIX


def open_final_study(store: StudyStorage, study_name: str) -> optuna.Study:
    name = final_study_name(study_name)
    try:
        return optuna.create_study(study_name=name, storage=store.storage, direction="maximize",
                                   load_if_exists=True, sampler=optuna.samplers.RandomSampler(seed=0))
    except optuna.exceptions.DuplicatedStudyError:  # created by another worker in between
        return optuna.load_study(study_name=name, storage=store.storage)


def _finished(t: optuna.trial.FrozenTrial) -> bool:
    """Done for good: complete, or failed with a reason (a stale worker's failure is retried instead)."""
    return t.state == TrialState.COMPLETE or (t.state == TrialState.FAIL and WorkItem.of(t).failure is not None)


def _stage_items(final: optuna.Study, stage: int) -> List[optuna.trial.FrozenTrial]:
    return [t for t in final.get_trials(deepcopy=False) if WorkItem.of(t).stage == stage]


def _stage_done(items: Sequence[optuna.trial.FrozenTrial]) -> bool:
    wanted = {WorkItem.of(t).slot for t in items}
    done = {WorkItem.of(t).slot for t in items if _finished(t)}
    return bool(wanted) and wanted == done


def _enqueue(final: optuna.Study, items: List[WorkItem]) -> None:
    for item in items:
        final.enqueue_trial({}, user_attrs=item.attrs())


def plan(study: optuna.Study, final: optuna.Study, settings: FinalSettings) -> bool:
    """Enqueue the next stage's items if the previous stage is done (call under the study lock).

    Returns True while work remains (items waiting or running, or a stage still to plan)."""
    for stage in range(settings.final_stage + 1):
        items = _stage_items(final, stage)
        if items:
            if not _stage_done(items):
                return True
            continue
        if stage == 0:
            fail_stale(study)
            if study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                return True  # proxy trials still running elsewhere: their results may make the cut
            picks = proxy_candidates(study, settings.width_at(0))
            source = {TrialRecord.of(t).arch_key: t for t in picks}
        else:
            ranked = stage_results(final, stage - 1)
            keep = [r for r in sorted(ranked, key=lambda r: r.mean, reverse=True) if r.role == "candidate"]
            by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
            source = {r.arch_key: by_number[r.source_trial] for r in keep[:settings.width_at(stage)]}
        seeds = settings.seeds if stage == settings.final_stage else settings.seeds[:1]
        new = [WorkItem.from_trial(t, stage, seed, "candidate") for t in source.values() for seed in seeds]
        if stage == settings.final_stage:
            for name, t in reference_trials(study).items():
                if TrialRecord.of(t).arch is None:
                    continue  # never proposed (e.g. its trial failed before recording the arch)
                key = TrialRecord.of(t).arch_key
                if key in source:  # a reference among the finalists: trained once, as both
                    for item in new:
                        if item.arch_key == key:
                            item.reference = name
                    continue
                new += [WorkItem.from_trial(t, stage, seed, "reference") for seed in seeds]
        if not new:
            return False
        _enqueue(final, new)
        return True
    return False


# ---------------------------------------------------------------- results and the verdict

@dataclass
class ArchResult:
    """One arch's numbers at one stage: proxy-phase facts and the longer trainings, per seed."""

    arch_key: str
    arch_name: str
    arch: Dict[str, Any]
    role: str                      # candidate | reference
    reference: Optional[str]       # its reference name, if it is one
    source_trial: int
    proxy: Optional[float]
    latency_ms: Optional[float]
    latency_ratio: Optional[float]
    feasible: bool
    top1: Dict[int, float] = field(default_factory=dict)   # seed -> val top-1
    failures: List[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def mean(self) -> float:
        return sum(self.top1.values()) / len(self.top1) if self.top1 else float("nan")

    @property
    def sd(self) -> Optional[float]:
        values = list(self.top1.values())
        if len(values) < 2:
            return None
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


@dataclass(frozen=True)
class PairedDifference:
    """top-1 of an arch minus the reference's, seed by seed (same data order and subset)."""

    mean: float
    sd: Optional[float]
    n: int
    low90: Optional[float]
    high90: Optional[float]

    @classmethod
    def of(cls, arch: ArchResult, ref: ArchResult) -> Optional["PairedDifference"]:
        seeds = sorted(set(arch.top1) & set(ref.top1))
        if not seeds:
            return None
        diffs = [arch.top1[s] - ref.top1[s] for s in seeds]
        mean = sum(diffs) / len(diffs)
        if len(diffs) < 2:
            return cls(mean, None, 1, None, None)
        from scipy.stats import t as student_t

        sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
        half = float(student_t.ppf(0.95, len(diffs) - 1)) * sd / math.sqrt(len(diffs))
        return cls(mean, sd, len(diffs), mean - half, mean + half)

    def text(self) -> str:
        if self.low90 is None:
            return f"{self.mean:+.2f} (1 seed)"
        return f"{self.mean:+.2f} [90 %: {self.low90:+.2f}, {self.high90:+.2f}], {self.n} seeds"


def stage_results(final: optuna.Study, stage: int) -> List[ArchResult]:
    rows: Dict[str, ArchResult] = {}
    for t in _stage_items(final, stage):
        item = WorkItem.of(t)
        row = rows.get(item.arch_key)
        if row is None:
            row = rows[item.arch_key] = ArchResult(
                arch_key=item.arch_key, arch_name=item.arch_name, arch=item.arch, role=item.role,
                reference=item.reference, source_trial=item.source_trial, proxy=item.proxy,
                latency_ms=item.latency_ms, latency_ratio=item.latency_ratio, feasible=item.feasible)
        if t.state == TrialState.COMPLETE:
            row.top1[item.seed] = t.value
            row.seconds += (item.result or {}).get("seconds", 0.0)
        elif t.state == TrialState.FAIL and item.failure is not None:
            row.failures.append(f"seed {item.seed}: {item.failure}")
    return list(rows.values())


@dataclass
class FinalSummary:
    settings: Optional[FinalSettings]
    reference: str
    rows: List[ArchResult]                   # the final stage
    rungs: Dict[int, List[ArchResult]]       # earlier stages
    complete: bool

    @property
    def reference_row(self) -> Optional[ArchResult]:
        return next((r for r in self.rows if r.reference == self.reference), None)

    @property
    def finalists(self) -> List[ArchResult]:
        return [r for r in self.rows if r.role == "candidate"]

    def winner(self) -> Optional[ArchResult]:
        """The feasible finalist with the best mean top-1 over all final seeds."""
        n = len(self.settings.seeds) if self.settings else 0
        ready = [r for r in self.finalists if r.feasible and len(r.top1) == n]
        return max(ready, key=lambda r: r.mean) if ready else None

    def difference(self, row: ArchResult) -> Optional[PairedDifference]:
        ref = self.reference_row
        return PairedDifference.of(row, ref) if ref is not None and ref is not row else None

    def to_dict(self, row: ArchResult) -> Dict[str, Any]:
        d = self.difference(row)
        return {"top1_mean": round(row.mean, 4) if row.top1 else None,
                "top1": {str(s): v for s, v in sorted(row.top1.items())},
                "budget": self.settings.describe() if self.settings else None,
                "vs_reference": None if d is None else {
                    "reference": self.reference, "mean": round(d.mean, 4), "sd": d.sd, "n": d.n,
                    "interval90": None if d.low90 is None else [round(d.low90, 4), round(d.high90, 4)]}}


def summarize(final: Optional[optuna.Study], settings: Optional[FinalSettings], reference: str) -> FinalSummary:
    if final is None or settings is None:
        return FinalSummary(settings, reference, [], {}, complete=False)
    rows = stage_results(final, settings.final_stage)
    rungs = {s: stage_results(final, s) for s in range(settings.final_stage)}
    complete = bool(rows) and _stage_done(_stage_items(final, settings.final_stage))
    return FinalSummary(settings, reference, rows, rungs, complete)


def load_final(storage: optuna.storages.BaseStorage, study_name: str) -> Optional[optuna.Study]:
    try:
        return optuna.load_study(study_name=final_study_name(study_name), storage=storage)
    except KeyError:
        return None


def summary_of(study: optuna.Study) -> FinalSummary:
    """The final round of ``study`` as recorded in its storage (empty when it had none)."""
    from ._config import stored_config

    cfg = stored_config(study)
    if not cfg.final_k:
        return summarize(None, None, cfg.reference)
    return summarize(load_final(study._storage, study.study_name), FinalSettings.from_config(cfg), cfg.reference)


# ---------------------------------------------------------------- running items

Trainer = Callable[[WorkItem, FinalSettings, Path], Tuple[float, Dict[str, Any]]]


def train_item(item: WorkItem, settings: FinalSettings, ckpt_root: Path) -> Tuple[float, Dict[str, Any]]:
    """Train one work item with the recipe; (val top-1, what the run recorded)."""
    from evaluator.proxy import train_score

    arch = Arch.from_dict(item.arch)
    stage, seed = item.stage, item.seed
    ckpt_dir = ckpt_root / f"stage{stage}-{item.arch_key}-seed{seed}"
    result = train_score(arch, settings.data, epochs=settings.epochs, subset=settings.subset_at(stage),
                         val_subset=settings.val_subset, resolution=settings.resolution,
                         batch_size=settings.batch_size, seed=seed, warmup_epochs=settings.warmup_epochs,
                         ckpt_dir=ckpt_dir, **({"recipe": settings.recipe} if settings.recipe else {}))
    keep = ("top1", "top5", "tse", "tse_per_step", "final_train_loss", "img_per_s", "epochs", "subset", "curve")
    return result.value, {"seconds": result.seconds, **{k: result.settings.get(k) for k in keep}}


def _take(store: StudyStorage, lock_name: str, study: optuna.Study, final: optuna.Study,
          settings: FinalSettings, deadline: float) -> Optional[Any]:
    """Hold the lock while a waiting item exists (return the lock to release); None when all is done."""
    while time.time() < deadline:
        lock = store.lock(lock_name)
        lock.__enter__()
        fail_stale(final)
        more = plan(study, final, settings)
        if any(t.state == TrialState.WAITING for t in final.get_trials(deepcopy=False)):
            return lock
        lock.__exit__(None, None, None)
        if not more:
            return None
        time.sleep(POLL_S)  # others are training the rest of this stage
    return None


def run_final_round(study: optuna.Study, store: StudyStorage, lock_name: str, settings: FinalSettings,
                    run_dir: Path, deadline: float = float("inf"), trainer: Trainer = train_item,
                    report: Optional[Callable[[str], None]] = None) -> int:
    """Train final-round items until none is left (several workers may call this at once)."""
    from ._objective import CandidateFailed

    final = open_final_study(store, study.study_name)
    ckpt_root = run_dir / "final"
    done = 0
    while True:
        lock = _take(store, lock_name, study, final, settings, deadline)
        if lock is None:
            return done
        held = [lock]

        def objective(trial: optuna.Trial) -> float:
            if held:
                held.pop().__exit__(None, None, None)  # the item is ours now (RUNNING)
            item = WorkItem.of(trial)
            start = time.perf_counter()
            try:
                value, record = trainer(item, settings, ckpt_root)
            except CandidateFailed:
                raise
            except Exception as exc:  # noqa: BLE001 - one arch failing must not stop the round
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                trial.set_user_attr("failure", f"{type(exc).__name__}: {first}")  # WorkItem.failure
                raise CandidateFailed(first) from exc
            trial.set_user_attr("result", clean({k: v for k, v in record.items() if v is not None}))  # .result
            if report is not None:
                report(f"final stage {item.stage}: {item.label()}: top-1 {value:.2f} "
                       f"({time.perf_counter() - start:.0f} s)")
            return value

        try:
            final.optimize(objective, n_trials=1, catch=(CandidateFailed,))
        finally:
            if held:
                held.pop().__exit__(None, None, None)
        done += 1


__all__ = ["ArchResult", "FinalSettings", "FinalSummary", "PairedDifference", "WorkItem", "final_study_name",
           "load_final", "plan", "proxy_candidates", "run_final_round", "summarize", "summary_of",
           "validate_settings"]
