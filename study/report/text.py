"""The report's words: numbers for people, and the conclusion written from the trials table.

Every sentence of :func:`conclusion` is computed from the measured regions
(:mod:`study.report.regions`) and theory: where runs diverge beside lr_max = 2/λ_max, how many
stable runs reached ‖θ − θ*‖ ≤ dist_tol, why the others ran out of epochs (the slowest direction
shrinks by (1 − lr·λ_min) per epoch), how often theory predicted the region, and the best trials.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from study.core import theory
from study.core.engine import Settings
from study.core.problem import Problem
from study.report.regions import (
    REGIONS,
    agreement,
    best_by_objective,
    epochs_needed,
    group_columns,
    group_settings,
    init_columns,
    scan_cap,
    settings_groups,
    theory_facts,
)
from study.report.spec import ReportSpec


def fmt(value: Any, digits: int = 4) -> str:
    """A number for people: 4 significant digits, '—' for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if not math.isfinite(float(value)):
            return "(beyond double precision)"
        return f"{float(value):.{digits}g}"
    return str(value)


def start_text(values: Sequence[float]) -> str:
    return "(" + ", ".join(fmt(float(v), 3) for v in values) + ")"


def _value(v: Any) -> float | None:
    """A summary cell as a number, or None where it is missing (None or NaN)."""
    return None if v is None or pd.isna(v) else float(v)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _edge_sentences(part: pd.DataFrame, row: Mapping[str, Any]) -> list[str]:
    edge = row["lr_max"]
    low, high = _value(row["largest_converged_lr"]), _value(row["smallest_diverged_lr"])
    div = part["region"] == "diverged"
    edge_text = (f"theory puts the edge of stability at lr_max = {fmt(edge)}"
                 if math.isfinite(edge) else "theory predicts no edge for this optimizer")
    if not div.any():
        top = float(part["lr"].max())
        if not math.isfinite(edge):
            return [f"No trial diverged; {edge_text}."]
        where = "below" if top < edge else "above"
        return [f"No trial diverged: the largest lr tried, {fmt(top)}, is {where} theory's edge "
                f"of stability lr_max = {fmt(edge)}" + ("." if top < edge else
                                                        ", but its budget was too short to "
                                                        "show the blow-up.")]
    ordered = part.sort_values("lr")
    tail = ordered["region"].to_numpy()[::-1] == "diverged"
    run = int(np.argmin(tail)) if not tail.all() else len(tail)
    out = []
    if run:
        out.append(f"Every trial with lr ≥ {fmt(float(ordered['lr'].iloc[-run]))} diverged "
                   f"({run} trials); {edge_text}.")
    else:
        out.append(f"{int(div.sum())} trials diverged, from lr {fmt(high)} up; {edge_text}.")
    above = part[(part["lr"] >= edge) & ~div]
    if len(above):
        out.append(f"{len(above)} trials at or above lr_max did not blow up within their "
                   f"budget (at most {fmt(int(above['epochs'].max()))} epochs): instability "
                   "needs epochs to show.")
    if low is not None and high is not None:
        holds = "holds" if row["bracket_holds_lr_max"] else "does NOT hold"
        out.append(f"The measured edge lies between {fmt(low)} (largest lr that converged) and "
                   f"{fmt(high)} (smallest lr that diverged); this bracket {holds} theory's "
                   f"lr_max.")
    return out


def _why_sentence(problem: Problem, part: pd.DataFrame, settings: Settings,
                  dist_tol: float) -> str | None:
    """Why the stable trials with the largest budget still fell short, at their largest lr."""
    stuck = part[(part["region"] == "not converged") & (part["lr"] < part["lr_max"])]
    if not len(stuck):
        return None
    stuck = stuck[stuck["epochs"] == stuck["epochs"].max()]
    trial = stuck.sort_values("lr").iloc[-1]
    lr, init = float(trial["lr"]), trial[init_columns(problem)].to_numpy(dtype=float)
    budget = int(trial["epochs"])

    def needs(n: Any) -> str:
        if n is None or n is pd.NA:
            return f"more than {fmt(scan_cap(settings, budget))} epochs"
        return f"about {fmt(int(n))} epoch{'s' if int(n) != 1 else ''}"

    facts = theory_facts(problem, settings)
    reasons = []
    if facts["condition_number"] > 100:
        reasons.append(f"the Hessian's eigenvalues differ by the condition number κ = "
                       f"{fmt(facts['condition_number'], 3)} ({facts['slow_direction']})")
    if lr < 0.1 * facts["lr_max"]:
        reasons.append(f"lr is only {fmt(lr / facts['lr_max'], 2)}·lr_max")
    text = (f"Even at lr {fmt(lr)} with {fmt(budget)} epochs from start "
            f"{start_text(init)}, theory says reaching ‖θ − θ*‖ ≤ {fmt(dist_tol)} takes "
            f"{needs(trial['predicted_epochs_to_dist_tol'])}: the slowest direction of the cost "
            f"surface {_shrinks(theory.time_constant(problem, settings, lr))}"
            + (", because " + " and ".join(reasons) if reasons else "") + ".")
    if settings.optimizer != "line_search":
        best = epochs_needed(problem, settings, facts["best_lr"], init, dist_tol, budget)
        text += (f" Even the best constant lr, 2/(λ_min + λ_max) = {fmt(facts['best_lr'])}, "
                 f"needs {needs(best)} from that start.")
    return text


def _shrinks(time_constant: float) -> str:
    """How fast the slowest direction shrinks, in words even where it does not."""
    if not math.isfinite(time_constant):
        return "does not shrink at all in double precision (its factor per epoch rounds to 1)"
    return f"shrinks by a factor e only every {fmt(time_constant, 3)} epochs"


def _group_line(label: str, row: Mapping[str, Any]) -> str:
    """One settings group in a sentence, for studies that compare settings."""
    counts = ", ".join(f"{int(row[r])} {r}" for r in REGIONS)
    edge = (f"lr_max = {fmt(row['lr_max'])}" if math.isfinite(row["lr_max"])
            else f"no lr_max ({theory.NO_EDGE})")
    text = f"[{label}] {edge}: {counts}"
    low, high = _value(row["largest_converged_lr"]), _value(row["smallest_diverged_lr"])
    ends = ([f"converged up to lr {fmt(low)}"] if low is not None else []) + \
        ([f"diverged from lr {fmt(high)}"] if high is not None else [])
    if ends:
        text += "; " + ", ".join(ends) + ("" if row["bracket_holds_lr_max"]
                                          else " (this does NOT hold lr_max)")
    return text + "."


def _convergence_sentence(part: pd.DataFrame, dist_tol: float) -> str | None:
    stable = part[part["region"] != "diverged"]
    if not len(stable):
        return None
    n_conv = int((stable["region"] == "converged").sum())
    reach = f"reached the OLS line (‖θ − θ*‖ ≤ {fmt(dist_tol)})"
    if n_conv == len(stable):
        return f"{'All' if n_conv > 1 else 'The'} {_count(n_conv, 'stable trial')} {reach}."
    return (f"Of the {_count(len(stable), 'stable trial')}, {n_conv} {reach}; the other "
            f"{len(stable) - n_conv} ran out of epochs first.")


def _agreement_sentence(table: pd.DataFrame) -> str | None:
    rate, differ = agreement(table)
    if rate is None:
        return None
    n = int(table["agrees"].notna().sum())
    text = f"Theory predicted the region of {n - len(differ)} of {n} trials ({rate:.0%})."
    if n < len(table):
        text += f" The other {len(table) - n} (backtracking line search) have no prediction."
    if len(differ):
        pairs = differ.groupby(["region", "predicted_region"]).size()
        text += " Measured ≠ predicted: " + "; ".join(
            f"{k} measured {m}, predicted {p}" for (m, p), k in pairs.items()) + \
            " (listed under 'Measured against predicted')."
    return text


def _at_top(values: pd.Series, value: float) -> bool:
    """True when ``value`` is in the top 5% of the (log) range of ``values``."""
    v = values.astype(float).to_numpy()
    lo, hi, x = v.min(), v.max(), float(value)
    if hi <= lo:
        return False
    if lo > 0:
        lo, hi, x = np.log(lo), np.log(hi), np.log(x)
    return bool((x - lo) / (hi - lo) >= 0.95)


def _best_sentences(table: pd.DataFrame, spec: ReportSpec) -> list[str]:
    """The best trial per objective, and whether the search space cut it short (a best point
    at the edge of the space means the space is too small)."""
    out = []
    for title, (obj, best) in best_by_objective(table, spec, 1).items():
        if not len(best):
            continue
        t = best.iloc[0]
        where = "".join(f", {c}={t[c]}" for c in group_columns(table))
        text = (f"Best by {title}: trial #{fmt(t.get('trial'))} (lr {fmt(float(t['lr']))}, "
                f"{fmt(int(t['epochs']))} epochs{where}) with {title} = "
                f"{fmt(float(t[obj.column]))}.")
        if "lr" in spec.swept and _at_top(table["lr"], t["lr"]) and \
                float(table["lr"].max()) < float(t["lr_max"]):
            text += (" Its lr is near the largest one searched, and the search stops below "
                     f"theory's lr_max = {fmt(float(t['lr_max']))}: widen the lr range upwards.")
        if "epochs" in spec.swept and t["region"] == "not converged" and \
                float(t["epochs"]) >= float(table["epochs"].max()):
            text += (" It used the largest epoch budget searched and still ran out of epochs: "
                     "more epochs would help.")
        out.append(text)
    return out


def conclusion(problem: Problem, table: pd.DataFrame, summary: pd.DataFrame,
               spec: ReportSpec) -> list[str]:
    """Plain-language findings, each sentence computed from the table and the theory. With
    several settings groups: one line per group, and the 'why' for the group with the most
    trials that ran out of epochs."""
    groups = list(zip(settings_groups(table), (row for _, row in summary.iterrows()), strict=True))
    if len(groups) == 1:
        (_, part), row = groups[0]
        out = _edge_sentences(part, row)
        out += [s for s in (_convergence_sentence(part, spec.dist_tol), _why_sentence(
            problem, part, group_settings(part, spec.settings), spec.dist_tol)) if s]
    else:
        out = [_group_line(label, row) for (label, _), row in groups]
        (label, part), _ = max(groups, key=lambda g: int(g[1]["not converged"]))
        why = _why_sentence(problem, part, group_settings(part, spec.settings), spec.dist_tol)
        if why:
            out.append(f"[{label}] {why}")
    agreed = _agreement_sentence(table)
    return out + ([agreed] if agreed else []) + _best_sentences(table, spec)
