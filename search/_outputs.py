"""What a search leaves in its run directory: trials.csv, best.yaml or pareto.yaml, report.md, plots."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Dict, List, Optional

import optuna
import yaml

from space import REFERENCES, Arch, cost

from ._progress import best_feasible

TrialState = optuna.trial.TrialState
CSV_COLUMNS = ("number", "state", "reference", "arch", "stem", "widths", "depths", "last", "kernels", "params",
               "mflops", "mac_m", "latency_ms", "latency_ratio", "proxy", "feasible", "reason", "seconds")


def _row(t: optuna.trial.FrozenTrial) -> Dict[str, Any]:
    arch = t.user_attrs.get("arch") or {}
    c = t.user_attrs.get("cost") or {}
    proxy = (t.user_attrs.get("proxy") or {}).get("value")
    join = lambda xs: " ".join(map(str, xs)) if xs else ""  # noqa: E731
    return {
        "number": t.number, "state": t.state.name, "reference": t.user_attrs.get("reference", ""),
        "arch": t.user_attrs.get("arch_name", ""), "stem": arch.get("stem", ""), "widths": join(arch.get("widths")),
        "depths": join(arch.get("depths")), "last": arch.get("last", ""), "kernels": join(arch.get("kernels")),
        "params": c.get("params", ""), "mflops": round(c["flops"] / 1e6, 2) if "flops" in c else "",
        "mac_m": round(c["mac"] / 1e6, 3) if "mac" in c else "",
        "latency_ms": t.user_attrs.get("latency_ms", ""), "latency_ratio": t.user_attrs.get("latency_ratio", ""),
        "proxy": "" if proxy is None else proxy, "feasible": t.user_attrs.get("feasible", ""),
        "reason": t.user_attrs.get("reason") or t.user_attrs.get("failure") or "",
        "seconds": round(t.duration.total_seconds(), 2) if t.duration else "",
    }


def chosen_trials(study: optuna.Study) -> List[optuna.trial.FrozenTrial]:
    """Constrained: the best feasible trial (or none). Pareto: the non-dominated feasible trials."""
    if len(study.directions) == 1:
        best = best_feasible(study)
        return [best] if best is not None else []
    front = [t for t in study.best_trials
             if t.user_attrs.get("feasible", True) and "duplicate_of" not in t.user_attrs]
    return sorted(front, key=lambda t: t.values[1])


def reference_trials(study: optuna.Study) -> Dict[str, optuna.trial.FrozenTrial]:
    found = {}
    for t in study.get_trials(deepcopy=False):
        name = t.user_attrs.get("reference")
        if name and t.state.is_finished() and name not in found:
            found[name] = t
    return found


def write_trials_csv(study: optuna.Study, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for t in study.get_trials(deepcopy=False):
            if t.state != TrialState.WAITING:
                writer.writerow(_row(t))
    tmp.replace(path)


def _arch_entry(t: optuna.trial.FrozenTrial) -> Dict[str, Any]:
    return {
        "trial": t.number,
        "name": t.user_attrs.get("arch_name"),
        "arch": t.user_attrs.get("arch"),
        "latency_ms": t.user_attrs.get("latency_ms"),
        "latency_ratio": t.user_attrs.get("latency_ratio"),
        "proxy": (t.user_attrs.get("proxy") or {}).get("value"),
        "reference": t.user_attrs.get("reference"),
    }


def write_selection(study: optuna.Study, run_dir: Path) -> Path:
    name = "best.yaml" if len(study.directions) == 1 else "pareto.yaml"
    entries = [_arch_entry(t) for t in chosen_trials(study)]
    path = run_dir / name
    tmp = path.with_name(name + ".tmp")
    tmp.write_text(yaml.safe_dump({"study": study.study_name, "archs": entries}, sort_keys=False))
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
    rows = [_row(t) for t in study.get_trials(deepcopy=False) if t.user_attrs.get("latency_ms") is not None]
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
    attrs = t.user_attrs if t is not None else {}
    proxy = (attrs.get("proxy") or {}).get("value")
    fmt = lambda v, s: "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, s)  # noqa: E731
    return (f"| {label} | {', '.join(map(str, arch.widths))} | {', '.join(map(str, arch.depths))} | {arch.last} "
            f"| {c.params / 1e6:.2f} | {c.mflops:.1f} | {c.mac / 1e6:.2f} | {fmt(attrs.get('latency_ms'), '.2f')} "
            f"| {fmt(attrs.get('latency_ratio'), '.3f')} | {fmt(proxy, '.4g')} |")


def write_report(study: optuna.Study, run_dir: Path) -> Path:
    config = study.user_attrs.get("config", {})
    resolution = config.get("resolution", 224)
    reference = config.get("reference", "x0_5")
    trials = study.get_trials(deepcopy=False)
    states = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState if s != TrialState.WAITING}
    chosen = chosen_trials(study)
    refs = reference_trials(study)
    plots = _plots(study, run_dir)
    budget = (f"latency <= {config['budget_ratio']} x {reference}" if config.get("budget_ratio")
              else f"latency <= {config['budget_ms']} ms" if config.get("budget_ms") else "none")
    lines = [
        f"# Search report: {study.study_name}",
        "",
        f"- mode: {config.get('mode')}, sampler: {config.get('sampler')}, proxy: {config.get('proxy')} "
        f"({config.get('proxy_data')}, {config.get('proxy_resolution')} px)",
        f"- latency: {config.get('latency_source')} on {config.get('backend')} / {config.get('device')}, batch "
        f"{config.get('batch_size')}, {resolution} px, {config.get('dtype')}; budget: {budget}",
        "- trials: " + ", ".join(f"{v} {k}" for k, v in states.items() if v),
        f"- device: {study.user_attrs.get('fingerprint')}",
        "",
        "## Chosen archs and the references",
        "",
        "| arch | widths | depths | last | params (M) | MFLOPs | MAC (M) | latency (ms) | ratio to "
        f"{reference} | proxy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in chosen:
        lines.append(_table_row(f"trial {t.number}: {t.user_attrs.get('arch_name')}", t,
                                Arch.from_dict(t.user_attrs["arch"]), resolution))
    verified = study.user_attrs.get("verified", {})
    for name in REFERENCES:
        if name in refs:
            lines.append(_table_row(f"reference {name}", refs[name], REFERENCES[name].arch, resolution))
    if not chosen:
        lines += ["", "No feasible arch was found: loosen the budget or run more trials."]
    if verified:
        lines += ["", f"## Verified on the device ({config.get('latency_source')})", "",
                  "| trial | predicted latency (ms) | measured (ms) | measured ratio | within budget |", "|---|---|---|---|---|"]
        for t in chosen:
            v = verified.get(str(t.number))
            if v is not None:
                flag = {True: "yes", False: "**NO: over budget**", None: "-"}[v["within_budget"]]
                lines.append(f"| {t.number} | {t.user_attrs.get('latency_ms'):.3f} | {v['ms'] if v['ms'] is not None else v['error']}"
                             f" | {v['ratio'] if v['ratio'] is not None else '-'} | {flag} |")
    lines += ["", "## Verdict", "", verdict(study), ""]
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    else:
        lines += ["(No plots: install matplotlib, `pip install 'shufflenas[report]'`.)", ""]
    path = run_dir / "report.md"
    path.write_text("\n".join(lines))
    return path


def verdict(study: optuna.Study) -> str:
    """One sentence: what was found and how it compares with the reference on latency and proxy."""
    config = study.user_attrs.get("config", {})
    reference = config.get("reference", "x0_5")
    chosen = chosen_trials(study)
    ref = reference_trials(study).get(reference)
    ref_ok = ref is not None and ref.state == TrialState.COMPLETE
    if not chosen:
        return "No feasible arch was found within the budget."
    best = chosen[0] if len(study.directions) == 1 else max(chosen, key=lambda t: t.values[0])
    name = best.user_attrs.get("arch_name")
    if best.user_attrs.get("reference"):
        return f"The best feasible arch is the reference {best.user_attrs['reference']} itself ({name}): " \
               "no searched arch beat it."
    if not ref_ok:
        return f"Best arch: {name} (proxy {best.values[0]:.4g}, {best.user_attrs.get('latency_ms'):.2f} ms); " \
               f"the reference {reference} was not evaluated in this study."
    d_proxy = best.values[0] - ref.values[0]
    # The candidate's own ratio was measured interleaved with the reference in the same
    # minutes; a ratio of two separate measurements would carry the machine's drift.
    ratio = best.user_attrs.get("latency_ratio")
    if ratio is None:
        ratio = best.user_attrs.get("latency_ms") / ref.user_attrs.get("latency_ms")
    better = "beats" if d_proxy > 0 and ratio <= 1.0 else "does not beat"
    return (f"Best arch {name} {better} {reference}: proxy {best.values[0]:.4g} vs {ref.values[0]:.4g} "
            f"({d_proxy:+.4g}), latency {ratio:.2f}x {reference}'s ({best.user_attrs.get('latency_ms'):.2f} ms; "
            f"{reference} measured {ref.user_attrs.get('latency_ms'):.2f} ms in its own trial).")


def write_outputs(study: optuna.Study, run_dir: Path) -> Dict[str, Path]:
    run_dir.mkdir(parents=True, exist_ok=True)
    write_trials_csv(study, run_dir / "trials.csv")
    selection = write_selection(study, run_dir)
    report = write_report(study, run_dir)
    return {"trials": run_dir / "trials.csv", "selection": selection, "report": report}
