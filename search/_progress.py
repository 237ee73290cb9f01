"""Per-trial progress: one line per finished trial, a bar with ETA on a terminal, JSON-lines events."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Optional

import optuna

from ._config import SearchConfig
from ._objective import REPROPOSAL

TrialState = optuna.trial.TrialState


def best_feasible(study: optuna.Study) -> Optional[optuna.trial.FrozenTrial]:
    """The best complete, feasible trial of a single-objective study, or None."""
    best = None
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if not t.user_attrs.get("feasible", True) or any(v > 0 for v in t.constraints.values()):
            continue
        if best is None or t.value > best.value:
            best = t
    return best


def trial_event(t: optuna.trial.FrozenTrial) -> Dict[str, Any]:
    proxy = t.user_attrs.get("proxy") or {}
    return {
        "event": "trial_finished",
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "number": t.number,
        "state": t.state.name,
        "arch": t.user_attrs.get("arch_name"),
        "reference": t.user_attrs.get("reference"),
        "latency_ms": t.user_attrs.get("latency_ms"),
        "latency_ratio": t.user_attrs.get("latency_ratio"),
        "proxy": proxy.get("value"),
        "feasible": t.user_attrs.get("feasible"),
        "reason": t.user_attrs.get("reason") or t.user_attrs.get("failure"),
        "seconds": t.duration.total_seconds() if t.duration else None,
    }


def _fmt(value: Optional[float], spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


class Progress:
    """Optuna callback: prints a line per finished trial and appends to run_dir/events.jsonl."""

    def __init__(self, cfg: SearchConfig, run_dir: Path, quiet: bool = False) -> None:
        self.cfg = cfg
        self.events = run_dir / "events.jsonl"
        self.quiet = quiet
        self.tty = sys.stdout.isatty()
        self.start = time.time()
        self.done_here = 0

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        event = trial_event(trial)
        with open(self.events, "a") as f:
            f.write(json.dumps(event) + "\n")
        self.done_here += 1
        if self.quiet:
            return
        trials = study.get_trials(deepcopy=False)
        finished = sum(t.state.is_finished() and (t.state != TrialState.FAIL or "failure" in t.user_attrs)
                       and not t.user_attrs.get(REPROPOSAL) for t in trials)
        total = max(self.cfg.n_trials, finished)
        elapsed = time.time() - self.start
        eta = elapsed / self.done_here * (total - finished) if self.done_here else 0.0
        if self.cfg.mode == "constrained":
            best = best_feasible(study)
            best_text = f"best {best.user_attrs.get('arch_name')} ({best.value:.4g})" if best else "best: none feasible"
        else:
            best_text = f"pareto front: {len(study.best_trials)}"
        latency = "latency -" if event["latency_ms"] is None else f"{event['latency_ms']:.2f} ms"
        if event["latency_ratio"] is not None:
            latency += f" ({event['latency_ratio']:.3f}x {self.cfg.reference})"
        feasible = {True: "feasible", False: "infeasible", None: "-"}[event["feasible"]]
        if trial.user_attrs.get(REPROPOSAL):
            event["reason"] = f"re-proposal of trial {trial.user_attrs.get('duplicate_of')}, not counted"
        line = (f"[{finished}/{total}] trial {trial.number} {trial.state.name.lower()} {event['arch']}"
                f"{' (' + event['reference'] + ')' if event['reference'] else ''}: {latency}, "
                f"{self.cfg.proxy} {_fmt(event['proxy'])}, {feasible}"
                f"{' - ' + event['reason'] if event['reason'] else ''}; {best_text}; ETA {eta / 60:.1f} min")
        if self.tty:
            width = 24
            filled = int(width * finished / total) if total else width
            line = f"{'#' * filled}{'.' * (width - filled)} {line}"
        print(line, flush=True)
