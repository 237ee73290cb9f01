"""Questions asked of a study's trials, answered from their `TrialRecord`s (one place for each)."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import optuna

from ._record import TrialRecord

TrialState = optuna.trial.TrialState


def is_feasible(t: optuna.trial.FrozenTrial) -> bool:
    """Within the budget: not marked infeasible and no violated constraint."""
    return TrialRecord.of(t).is_feasible and not any(v > 0 for v in t.constraints.values())


def distinct(trials: Sequence[optuna.trial.FrozenTrial]) -> List[optuna.trial.FrozenTrial]:
    """The first trial of each arch, in the given order (repeats of an evaluated arch left out)."""
    seen, out = set(), []
    for t in trials:
        r = TrialRecord.of(t)
        if r.arch_key and r.arch_key not in seen and not r.repeats_another:
            seen.add(r.arch_key)
            out.append(t)
    return out


def best_feasible(study: optuna.Study) -> Optional[optuna.trial.FrozenTrial]:
    """The best complete, feasible trial of a single-objective study, or None."""
    best = None
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if is_feasible(t) and (best is None or t.value > best.value):
            best = t
    return best


def chosen_trials(study: optuna.Study) -> List[optuna.trial.FrozenTrial]:
    """Constrained: the best feasible trial (or none). Pareto: the non-dominated feasible trials."""
    if len(study.directions) == 1:
        best = best_feasible(study)
        return [best] if best is not None else []
    front = [t for t in study.best_trials if is_feasible(t) and not TrialRecord.of(t).repeats_another]
    return sorted(front, key=lambda t: t.values[1])


def reference_trials(study: optuna.Study) -> Dict[str, optuna.trial.FrozenTrial]:
    """Each reference's first finished trial, by reference name."""
    found: Dict[str, optuna.trial.FrozenTrial] = {}
    for t in study.get_trials(deepcopy=False):
        r = TrialRecord.of(t)
        if r.reference and t.state.is_finished() and r.reference not in found:
            found[r.reference] = t
    return found


__all__ = ["best_feasible", "chosen_trials", "distinct", "is_feasible", "reference_trials"]
