"""What a search leaves in its run directory: trials.csv, best.yaml or pareto.yaml, report.md, plots."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Dict, List, Optional

import optuna
import yaml

from space import REFERENCES, Arch, cost

from ._config import SearchConfig, stored_config
from ._final import FinalSummary, summary_of
from ._record import SelectionEntry, TrialRecord, Verification
from ._trials import chosen_trials, reference_trials

TrialState = optuna.trial.TrialState
CSV_COLUMNS = ("number", "state", "reference", "arch", "stem", "widths", "depths", "last", "kernels", "params",
               "mflops", "mac_m", "latency_ms", "latency_ratio", "proxy", "feasible", "reason", "seconds")


def _row(t: optuna.trial.FrozenTrial) -> Dict[str, Any]:
    r = TrialRecord.of(t)
    arch, c = r.arch or {}, r.cost
    join = lambda xs: " ".join(map(str, xs)) if xs else ""  # noqa: E731
    blank = lambda v: "" if v is None else v  # noqa: E731
    return {
        "number": t.number, "state": t.state.name, "reference": blank(r.reference), "arch": blank(r.arch_name),
        "stem": arch.get("stem", ""), "widths": join(arch.get("widths")),
        "depths": join(arch.get("depths")), "last": arch.get("last", ""), "kernels": join(arch.get("kernels")),
        "params": c.get("params", ""), "mflops": round(c["flops"] / 1e6, 2) if "flops" in c else "",
        "mac_m": round(c["mac"] / 1e6, 3) if "mac" in c else "",
        "latency_ms": blank(r.latency_ms), "latency_ratio": blank(r.latency_ratio), "proxy": blank(r.proxy_value),
        "feasible": blank(r.feasible), "reason": r.problem or "",
        "seconds": round(t.duration.total_seconds(), 2) if t.duration else "",
    }


def write_trials_csv(study: optuna.Study, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for t in study.get_trials(deepcopy=False):
            if t.state != TrialState.WAITING:
                writer.writerow(_row(t))
    tmp.replace(path)


def selection_entries(study: optuna.Study) -> List[Dict[str, Any]]:
    """What best.yaml / pareto.yaml list: with a final round, its finalists by final top-1 (the
    winner first) with their proxy and final numbers; without one, the proxy's choice."""
    summary = summary_of(study)
    if not summary.rows:
        return [SelectionEntry(t.number, TrialRecord.of(t)).to_yaml() for t in chosen_trials(study)]
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    return [SelectionEntry(r.source_trial, TrialRecord.of(by_number[r.source_trial]), summary.to_dict(r)).to_yaml()
            for r in _final_order(summary)]


def _final_order(summary):
    """The final round's feasible, trained finalists, best final top-1 first (the winner)."""
    return sorted((r for r in summary.finalists if r.feasible and r.top1), key=lambda r: -r.mean)


def search_data(study: optuna.Study) -> Dict[str, Any]:
    """What the search ran on, for `export`: the proxy's data and recipe, the latency resolution."""
    cfg = stored_config(study)
    data = cfg.proxy_data
    if data is not None and Path(data).is_dir():
        data = str(Path(data).resolve())
    return {"proxy_data": data, "proxy_recipe": cfg.proxy_recipe, "resolution": cfg.resolution,
            "proxy_resolution": cfg.proxy_resolution}


def write_selection(study: optuna.Study, run_dir: Path) -> Path:
    name = "best.yaml" if len(study.directions) == 1 else "pareto.yaml"
    entries = selection_entries(study)
    path = run_dir / name
    tmp = path.with_name(name + ".tmp")
    tmp.write_text(yaml.safe_dump({"study": study.study_name, "data": search_data(study), "archs": entries},
                                  sort_keys=False))
    tmp.replace(path)
    return path


def _mark_references(ax, rows: List[Dict[str, Any]], x: str, y: str) -> None:
    refs = [r for r in rows if r["reference"]]
    ax.scatter([r[x] for r in refs], [r[y] for r in refs], marker="*", s=160, c="tab:red", label="references")
    for r in refs:
        ax.annotate(r["reference"], (r[x], r[y]), textcoords="offset points", xytext=(5, 5))


def _save(plt, fig, ax, path: Path, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plots(study: optuna.Study, run_dir: Path) -> List[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    rows = [_row(t) for t in study.get_trials(deepcopy=False) if TrialRecord.of(t).latency_ms is not None]
    if not rows:
        return []
    made = []
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter([r["mflops"] for r in rows], [r["latency_ms"] for r in rows], s=14, c="tab:blue", label="trials")
    _mark_references(ax, rows, "mflops", "latency_ms")
    _save(plt, fig, ax, run_dir / "latency_vs_flops.png", "MFLOPs (multiply-adds)", "measured latency (ms)",
          "FLOPs is not speed: latency vs FLOPs")
    made.append("latency_vs_flops.png")

    scored = [r for r in rows if r["proxy"] != ""]
    if scored:
        chosen = {t.number for t in chosen_trials(study)}
        fig, ax = plt.subplots(figsize=(6, 4.5))
        ax.scatter([r["latency_ms"] for r in scored], [r["proxy"] for r in scored], s=14, c="tab:gray",
                   label="trials")
        front = sorted((r for r in scored if r["number"] in chosen), key=lambda r: r["latency_ms"])
        if front:
            ax.plot([r["latency_ms"] for r in front], [r["proxy"] for r in front], "o-", c="tab:green",
                    label="chosen (best / Pareto front)")
        _mark_references(ax, scored, "latency_ms", "proxy")
        _save(plt, fig, ax, run_dir / "pareto.png", "latency (ms)", "proxy accuracy", "accuracy proxy vs latency")
        made.append("pareto.png")
    return made


def _table_row(label: str, t: Optional[optuna.trial.FrozenTrial], arch: Arch, resolution: int) -> str:
    c = cost(arch, resolution)
    r = TrialRecord.of(t) if t is not None else TrialRecord()
    return (f"| {label} | {', '.join(map(str, arch.widths))} | {', '.join(map(str, arch.depths))} | {arch.last} "
            f"| {c.params / 1e6:.2f} | {c.mflops:.1f} | {c.mac / 1e6:.2f} | {_fmt(r.latency_ms, '.2f')} "
            f"| {_fmt(r.latency_ratio, '.3f')} | {_fmt(r.proxy_value, '.4g')} |")


def write_report(study: optuna.Study, run_dir: Path) -> Path:
    cfg = stored_config(study)
    resolution, reference = cfg.resolution, cfg.reference
    trials = study.get_trials(deepcopy=False)
    states = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState if s != TrialState.WAITING}
    summary = summary_of(study)
    chosen = chosen_trials(study)
    title = "Chosen archs (by proxy) and the references"
    if summary.rows:  # the verdict comes from the final round: list its finalists, winner first
        by_number = {t.number: t for t in trials}
        chosen = [by_number[r.source_trial] for r in _final_order(summary)]
        title = "Finalists (best final top-1 first) and the references"
    refs = reference_trials(study)
    plots = _plots(study, run_dir)
    budget = f"latency <= {_budget(cfg)}" if _budget(cfg) else "none"
    lines = [
        f"# Search report: {study.study_name}",
        "",
        f"- mode: {cfg.mode}, sampler: {cfg.sampler}, proxy: {cfg.proxy} ({cfg.proxy_data}, "
        f"{cfg.proxy_resolution} px)",
        f"- latency: {cfg.latency_source} on {cfg.backend} / {cfg.device}, batch {cfg.batch_size}, {resolution} px, "
        f"{cfg.dtype}; budget: {budget}",
        "- trials: " + ", ".join(f"{v} {k}" for k, v in states.items() if v),
        f"- device: {study.user_attrs.get('fingerprint')}",
        "",
        f"## {title}",
        "",
        "| arch | widths | depths | last | params (M) | MFLOPs | MAC (M) | latency (ms) | ratio to "
        f"{reference} | proxy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in chosen:
        record = TrialRecord.of(t)
        lines.append(_table_row(f"trial {t.number}: {record.arch_name}", t, record.arch_obj(), resolution))
    verified = Verification.all_of(study)
    for name in REFERENCES:
        if name in refs:
            lines.append(_table_row(f"reference {name}", refs[name], REFERENCES[name].arch, resolution))
    if not chosen:
        lines += ["", "No feasible arch was found: loosen the budget or run more trials."]
    if verified:
        lines += ["", f"## Verified on the device ({cfg.latency_source})", "",
                  "| trial | predicted latency (ms) | measured (ms) | measured ratio | within budget |",
                  "|---|---|---|---|---|"]
        for t in chosen:
            v = verified.get(t.number)
            if v is not None:
                flag = {True: "yes", False: "**NO: over budget**", None: "-"}[v.within_budget]
                lines.append(f"| {t.number} | {TrialRecord.of(t).latency_ms:.3f} | "
                             f"{v.ms if v.ms is not None else v.error} | {_fmt(v.ratio, '.3f')} | {flag} |")
    lines += _final_section(summary)
    lines += ["", "## Verdict", "", verdict(study), ""]
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    else:
        lines += ["(No plots: install matplotlib, `pip install 'shufflenas[report]'`.)", ""]
    path = run_dir / "report.md"
    path.write_text("\n".join(lines))
    return path


def _fmt(value: Optional[float], spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _final_section(summary: FinalSummary) -> List[str]:
    if not summary.rows:
        return []
    lines = ["", "## Final round", "",
             f"Budget: {summary.settings.describe()}, on the proxy's data. The verdict comes from these numbers "
             "only; the proxy chose who trains." + ("" if summary.complete else " **Not finished yet.**"), "",
             f"| arch | role | proxy | final top-1 (mean ± sd) | per seed | vs {summary.reference} (paired, 90 %) "
             f"| latency ratio | within budget |", "|---|---|---|---|---|---|---|---|"]
    for r in sorted(summary.rows, key=lambda r: -r.mean if r.top1 else float("inf")):
        d = summary.difference(r)
        role = r.role + (f" ({r.reference})" if r.reference else "")
        per_seed = ", ".join(f"{v:.2f}" for _, v in sorted(r.top1.items())) or "-"
        spread = f" ± {r.sd:.2f}" if r.sd is not None else ""
        lines.append(f"| {r.arch_name} | {role} | {_fmt(r.proxy, '.4g')} | {_fmt(r.mean, '.2f')}{spread} | "
                     f"{per_seed} | {d.text() if d else '-'} | {_fmt(r.latency_ratio, '.3f')} | "
                     f"{'yes' if r.feasible else 'no'} |" + (f" failed: {'; '.join(r.failures)}" if r.failures else ""))
    for stage, rows in sorted(summary.rungs.items()):
        kept = {r.arch_key for r in (summary.rungs.get(stage + 1) or summary.rows)}
        lines += ["", f"Successive-halving rung {stage + 1} ({summary.settings.describe(stage)}):", "",
                  "| arch | proxy | top-1 | went on |", "|---|---|---|---|"]
        for r in sorted(rows, key=lambda r: -r.mean if r.top1 else float("inf")):
            lines.append(f"| {r.arch_name} | {_fmt(r.proxy, '.4g')} | {_fmt(r.mean, '.2f')} | "
                         f"{'yes' if r.arch_key in kept else 'no'} |")
    return lines


def _final_verdict(study: optuna.Study, summary: FinalSummary) -> str:
    reference = summary.reference
    head = f"Final round ({summary.settings.describe()})"
    if not summary.complete:
        head += ", not finished yet"
    ref = summary.reference_row
    if len(study.directions) > 1:
        wins = []
        for r in sorted(summary.finalists, key=lambda r: r.latency_ms or 0.0):
            d = summary.difference(r)
            if d is not None and d.mean > 0 and (r.latency_ratio or float("inf")) <= 1.0:
                wins.append(f"{r.arch_name} ({d.mean:+.2f} points, {r.latency_ratio:.2f}x)")
        if ref is None:
            return f"{head}: {len(summary.finalists)} finalists of the Pareto front trained; the reference " \
                   f"{reference} is not in the space, so none is compared with it."
        if not wins:
            return f"{head}: no finalist of the Pareto front beats {reference} (more accurate at the final " \
                   "budget and no slower)."
        return f"{head}: finalists that beat {reference} (more accurate at the final budget and no slower): " \
               + ", ".join(wins) + "."
    win = summary.winner()
    if win is None:
        return f"{head}: no feasible finalist finished all its seeds."
    if ref is None:
        return f"{head}: best finalist {win.arch_name}, top-1 {win.mean:.2f}; the reference {reference} is " \
               "not in the space, so it was not trained for comparison."
    if win.reference == reference:
        others = [r for r in summary.finalists if r is not win and r.feasible and r.top1]
        best_other = max(others, key=lambda r: r.mean) if others else None
        tail = (f" (best searched finalist {best_other.arch_name}: {summary.difference(best_other).text()})"
                if best_other is not None and summary.difference(best_other) else "")
        return f"{head}: the best finalist is the reference {reference} itself (top-1 {win.mean:.2f}): no " \
               f"searched arch beats it at the final budget{tail}."
    d = summary.difference(win)
    ratio = win.latency_ratio
    if ratio is None and win.latency_ms and ref.latency_ms:
        ratio = win.latency_ms / ref.latency_ms
    more_accurate = d is not None and d.mean > 0
    not_slower = ratio is not None and ratio <= 1.0
    numbers = (f"top-1 {win.mean:.2f} vs {ref.mean:.2f}, paired difference {d.text() if d else '-'}, latency "
               f"{_fmt(ratio, '.2f')}x {reference}'s; proxy {_fmt(win.proxy, '.4g')} vs {_fmt(ref.proxy, '.4g')}")
    if more_accurate and not_slower:
        text = f"{head}: {win.arch_name} beats {reference}: {numbers}."
        if d.low90 is not None and d.low90 <= 0:
            text += " The 90 % interval includes 0: more final_seeds would settle it."
    else:
        failing = ([] if more_accurate else [f"less accurate at the final budget ({d.mean:+.2f} points)"]) + \
                  ([] if not_slower else [f"slower ({_fmt(ratio, '.2f')}x)"])
        text = f"{head}: the best finalist {win.arch_name} does not beat {reference}: " \
               f"{' and '.join(failing)}; {numbers}."
    cfg = stored_config(study)
    limit = _budget(cfg)
    if limit is None:
        return text + " (No latency budget was set.)"
    mine = f"{_fmt(win.latency_ratio, '.2f')}x {reference}" if cfg.budget_ratio else f"{_fmt(win.latency_ms, '.3g')} ms"
    return text + f" It is within the budget ({mine} <= {limit})."


def verdict(study: optuna.Study) -> str:
    """What was found and how it compares with the reference: from the final round when it ran,
    else from the proxy, saying so."""
    summary = summary_of(study)
    if summary.rows:
        return _final_verdict(study, summary)
    text = _proxy_verdict(study)
    if summary.settings is None:
        return text + " This rests on the proxy alone (final_k 0): train the pick longer before trusting it."
    return text + " This rests on the proxy alone so far: the final round has not run."


def _budget(cfg: SearchConfig) -> Optional[str]:
    if cfg.budget_ratio:
        return f"{cfg.budget_ratio:g}x {cfg.reference}"
    if cfg.budget_ms:
        return f"{cfg.budget_ms:g} ms"
    return None


def _within_budget(best: optuna.trial.FrozenTrial, cfg: SearchConfig, verified: Dict[int, Verification]) -> str:
    """How the best arch stands against the budget (it met it, or it was chosen without one)."""
    limit = _budget(cfg)
    if limit is None:
        return "(no latency budget)"
    value = TrialRecord.of(best).latency_value
    mine = "-" if value is None else (f"{value:.2f}x {cfg.reference}" if cfg.budget_ratio else f"{value:.3g} ms")
    check = verified.get(best.number)
    if check is not None and check.within_budget is False:
        return (f"is within the budget by the latency table ({mine} <= {limit}) but OVER it as measured on the "
                f"device ({check.ms} ms)")
    return f"is within the budget ({mine} <= {limit})"


def _proxy_verdict(study: optuna.Study) -> str:
    """One sentence from the proxy phase: whether the best arch met the budget, and whether it beats
    the reference by proxy, naming which condition failed (less accurate, slower, over budget)."""
    cfg = stored_config(study)
    reference = cfg.reference
    chosen = chosen_trials(study)
    ref_trial = reference_trials(study).get(reference)
    if not chosen:
        limit = _budget(cfg)
        return f"No arch within the budget ({limit}) was found: loosen it or run more trials." if limit else \
            "No feasible arch was found."
    best_trial = chosen[0] if len(study.directions) == 1 else max(chosen, key=lambda t: t.values[0])
    best = TrialRecord.of(best_trial)
    head = f"Best arch {best.arch_name} {_within_budget(best_trial, cfg, Verification.all_of(study))}"
    if best.reference:
        return f"{head}; it is the reference {best.reference} itself: no searched arch beat it."
    ref = TrialRecord.of(ref_trial) if ref_trial is not None else None
    if ref_trial is None or ref_trial.state != TrialState.COMPLETE:
        why = ("was not evaluated in this study" if ref_trial is None or not ref_trial.state.is_finished()
               else f"is itself over the budget ({ref.reason})" if ref.reason
               else "did not finish its evaluation")
        return (f"{head} (proxy {best_trial.values[0]:.4g}, {best.latency_ms:.2f} ms); "
                f"the reference {reference} {why}, so there is no comparison.")
    d_proxy = best_trial.values[0] - ref_trial.values[0]
    # The candidate's own ratio was measured interleaved with the reference in the same
    # minutes; a ratio of two separate measurements would carry the machine's drift.
    ratio = best.latency_ratio
    if ratio is None:
        ratio = best.latency_ms / ref.latency_ms
    accuracy = (f"{'more' if d_proxy > 0 else 'less' if d_proxy < 0 else 'no more'} accurate (proxy "
                f"{best_trial.values[0]:.4g} vs {ref_trial.values[0]:.4g}, {d_proxy:+.4g})")
    speed = (f"{'no slower' if ratio <= 1.0 else 'slower'} ({ratio:.2f}x {reference}'s latency; "
             f"{best.latency_ms:.2f} ms vs {ref.latency_ms:.2f} ms)")
    if d_proxy > 0 and ratio <= 1.0:
        return f"{head} and beats {reference}: {accuracy} and {speed}."
    checks = ((accuracy, d_proxy > 0), (speed, ratio <= 1.0))
    failed, held = [text for text, ok in checks if not ok], [text for text, ok in checks if ok]
    return (f"{head} but does not beat {reference}: it is {' and '.join(failed)}"
            + (f", though {held[0]}" if held else "") + ".")


def write_outputs(study: optuna.Study, run_dir: Path) -> Dict[str, Path]:
    run_dir.mkdir(parents=True, exist_ok=True)
    write_trials_csv(study, run_dir / "trials.csv")
    selection = write_selection(study, run_dir)
    report = write_report(study, run_dir)
    return {"trials": run_dir / "trials.csv", "selection": selection, "report": report}
