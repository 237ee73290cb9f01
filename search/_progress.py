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
from ._record import TrialRecord
from ._trials import best_feasible

TrialState = optuna.trial.TrialState


def trial_event(t: optuna.trial.FrozenTrial) -> Dict[str, Any]:
    r = TrialRecord.of(t)
    return {
        "event": "trial_finished",
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "number": t.number,
        "state": t.state.name,
        "arch": r.arch_name,
        "reference": r.reference,
        "latency_ms": r.latency_ms,
        "latency_ratio": r.latency_ratio,
        "proxy": r.proxy_value,
        "feasible": r.feasible,
        "reason": f"re-proposal of trial {r.duplicate_of}, not counted" if r.reproposal else r.problem,
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
        records = [(t, TrialRecord.of(t)) for t in trials]
        finished = sum(t.state.is_finished() and (t.state != TrialState.FAIL or r.failure is not None)
                       and not r.reproposal for t, r in records)
        total = max(self.cfg.n_trials, finished)
        elapsed = time.time() - self.start
        eta = elapsed / self.done_here * (total - finished) if self.done_here else 0.0
        if self.cfg.mode == "constrained":
            best = best_feasible(study)
            best_text = f"best {TrialRecord.of(best).arch_name} ({best.value:.4g})" if best else "best: none feasible"
        else:
            best_text = f"pareto front: {len(study.best_trials)}"
        latency = "latency -" if event["latency_ms"] is None else f"{event['latency_ms']:.2f} ms"
        if event["latency_ratio"] is not None:
            latency += f" ({event['latency_ratio']:.3f}x {self.cfg.reference})"
        feasible = {True: "feasible", False: "infeasible", None: "-"}[event["feasible"]]
        line = (f"[{finished}/{total}] trial {trial.number} {trial.state.name.lower()} {event['arch']}"
                f"{' (' + event['reference'] + ')' if event['reference'] else ''}: {latency}, "
                f"{self.cfg.proxy} {_fmt(event['proxy'])}, {feasible}"
                f"{' - ' + event['reason'] if event['reason'] else ''}; {best_text}; ETA {eta / 60:.1f} min")
        if self.tty:
            width = 24
            filled = int(width * finished / total) if total else width
            line = f"{'#' * filled}{'.' * (width - filled)} {line}"
        print(line, flush=True)
