"""The study's answer: where gradient descent converges, where it diverges, and why.

From the complete trials of a sweep this module builds, in order:

1. the **trials table**: the sweep's tidy table plus, for every trial, theory's prediction for the
   same (settings, lr, start, budget) and the trial's **region**:

   - ``diverged``: the engine stopped the run because the cost blew up;
   - ``converged``: ‖θ − θ*‖ ≤ ``dist_tol`` (the report's tolerance) at the end of the budget;
   - ``not converged``: stable, but the epoch budget ran out before reaching the OLS line.

   Theory predicts ``diverged`` iff lr ≥ lr_max (2/λ_max for plain GD), else ``converged`` iff the
   first epoch n with ‖θ_n − θ*‖ ≤ dist_tol (exact, :func:`study.theory.predicted_epochs`) is
   within the budget. Backtracking line search has no prediction.
2. the **regions**: counts, the measured edge bracket (largest converging lr, smallest diverging
   lr) beside lr_max, per combination of swept algorithm settings; the agreement between measured
   and predicted regions, with the disagreeing trials.
3. the figures (:mod:`study.figures`), and ``report.md`` plus one self-contained ``report.html``
   whose conclusion is written from the numbers above.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from study import theory
from study.engine import Settings
from study.errors import StudyError
from study.problem import Problem

REGIONS = ("converged", "not converged", "diverged")
# Settings a sweep may vary per trial; the others describe what the engine records.
# (The table's ``seed`` column is each trial's minibatch seed, not a shared setting.)
SETTING_COLUMNS = tuple(f.name for f in fields(Settings) if f.name not in {
    "param_tols", "cost_tols", "record_path", "history_points", "history_dense", "seed"})
_MONOTONE_CAP = 1_000_000_000  # bisection on a monotone error: any cap costs ~30 evaluations
_SCAN_FACTOR = 4  # other updates are scanned epoch by epoch up to this × the budget


@dataclass(frozen=True)
class Objective:
    """One objective of the sweep as a column of the trials table."""

    column: str
    direction: str = "minimize"  # or "maximize"
    label: str = ""

    @property
    def title(self) -> str:
        return self.label if self.label and self.label != self.column \
            else metric_label(self.column)


METRIC_LABELS = {"dist_to_ols": "distance to OLS ‖θ − θ*‖", "final_cost": "final cost J",
                 "cost_gap": "cost gap J − J*", "rel_cost_gap": "relative cost gap (J − J*)/J*",
                 "epochs_run": "epochs run"}


def metric_label(column: str) -> str:
    """A reader's name for a metric column (``epochs_to_param_tol_0.01`` → epochs to
    ‖θ − θ*‖ ≤ 0.01)."""
    for prefix, what in (("epochs_to_param_tol_", "‖θ − θ*‖"),
                         ("epochs_to_cost_tol_", "(J − J*)/J*")):
        if column.startswith(prefix):
            return f"epochs to {what} ≤ {column.removeprefix(prefix)}"
    return METRIC_LABELS.get(column, column)


@dataclass(frozen=True)
class ReportSpec:
    """What the report needs from a config (see :func:`spec_from_config`)."""

    name: str
    settings: Settings = field(default_factory=Settings)  # the base algorithm settings
    dist_tol: float = 0.01
    objectives: tuple[Objective, ...] = ()
    swept: tuple[str, ...] = ()  # space entries that vary: lr, epochs, init_m, …, settings
    log_scaled: frozenset[str] = frozenset()  # space entries sampled on a log scale
    constants: Mapping[str, Any] = field(default_factory=dict)  # fixed space entries
    data: str = ""  # where the data came from


def spec_from_config(cfg: Any) -> ReportSpec:
    """A :class:`ReportSpec` from a ``study.config.StudyConfig``. Objectives are read from the
    metric columns (``dist_to_ols``, ``epochs_to_param_tol_0.01``, …), not from the values told
    to Optuna, which are capped for diverged and unreached trials."""
    space = cfg.search.space
    objectives = tuple(
        Objective(o.metric if o.tol is None else f"{o.metric}_{float(o.tol):g}", o.direction)
        for o in cfg.search.objectives)
    return ReportSpec(
        name=cfg.name, settings=cfg.settings(), dist_tol=float(cfg.report.dist_tol),
        objectives=objectives, swept=tuple(cfg.search.swept),
        log_scaled=frozenset(k for k, v in space.items() if v.kind == "range" and v.log),
        constants={k: v.value for k, v in space.items() if v.kind == "const"},
        data=str(cfg.data.path))


# ── the trials table ────────────────────────────────────────────────────────────────────────


def init_columns(problem: Problem) -> list[str]:
    """``init_m, init_b`` (one feature) or ``init_w1, …, init_b``."""
    return [f"init_{n}" for n in problem.param_names]


def _coerce(default: Any, value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(default, bool):
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes")
        return bool(value)
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float) or default is None:
        return float(value)
    return str(value)


def trial_settings(base: Settings, row: Mapping[str, Any], columns: Sequence[str]) -> Settings:
    """The base settings with the trial's swept algorithm settings applied."""
    changes = {c: _coerce(getattr(base, c), row[c]) for c in columns}
    return dataclasses.replace(base, **changes) if changes else base


def setting_columns(trials: pd.DataFrame) -> list[str]:
    """Algorithm settings present as columns of the trials table."""
    return [c for c in SETTING_COLUMNS if c in trials.columns]


def group_columns(trials: pd.DataFrame) -> list[str]:
    """Swept algorithm settings that take more than one value: the report's groups."""
    return [c for c in setting_columns(trials) if trials[c].nunique(dropna=False) > 1]


def measured_region(trials: pd.DataFrame, dist_tol: float) -> pd.Series:
    """diverged / converged (‖θ − θ*‖ ≤ dist_tol) / not converged, from the engine's results."""
    region = np.where(trials["dist_to_ols"].astype(float) <= dist_tol, REGIONS[0], REGIONS[1])
    region = np.where(trials["status"] == "diverged", REGIONS[2], region)
    return pd.Series(region, index=trials.index, name="region")


def _scan_cap(settings: Settings, epochs: int) -> int:
    monotone = (settings.update == "simultaneous" and settings.optimizer in ("gd", "minibatch")
                and not settings.standardize)
    return _MONOTONE_CAP if monotone else max(_SCAN_FACTOR * int(epochs), 1000)


def prediction(problem: Problem, settings: Settings, lr: float, init: Sequence[float],
               epochs: int, dist_tol: float) -> dict[str, Any]:
    """Theory's view of one trial: ``lr_max``, ``predicted_region`` (None without a prediction)
    and the first epochs at which each tolerance is reached (None: unstable or beyond the cap,
    see :func:`_scan_cap`). The region agrees with :func:`study.theory.predicted_status`."""
    edge = theory.lr_max(problem, settings)
    ptols = tuple(sorted({*map(float, settings.param_tols), float(dist_tol)}))
    ctols = tuple(map(float, settings.cost_tols))
    out: dict[str, Any] = {"lr_max": edge}
    if settings.optimizer != "line_search" and lr >= edge:
        params, costs = dict.fromkeys(ptols), dict.fromkeys(ctols)
        out["predicted_region"] = "diverged"
    else:
        params, costs = theory.predicted_epochs(problem, settings, lr, init, ptols, ctols,
                                                _scan_cap(settings, epochs))
        reached = params[float(dist_tol)]
        no_prediction = settings.optimizer == "line_search" and settings.line_search != "exact"
        out["predicted_region"] = None if no_prediction else (
            "converged" if reached is not None and reached <= epochs else "not converged")
    out["predicted_epochs_to_dist_tol"] = params[float(dist_tol)]
    for t in settings.param_tols:
        out[f"predicted_epochs_to_param_tol_{t:g}"] = params[float(t)]
    for t in settings.cost_tols:
        out[f"predicted_epochs_to_cost_tol_{t:g}"] = costs[float(t)]
    return out


def trials_table(problem: Problem, trials: pd.DataFrame, spec: ReportSpec) -> pd.DataFrame:
    """The sweep's table with the trial's start distance, region and theory's prediction."""
    table = trials.reset_index(drop=True).copy()
    for name, value in spec.constants.items():
        if name not in table.columns and value is not None:
            table[name] = value
    inits = init_columns(problem)
    missing = [c for c in ("lr", "epochs", "status", "dist_to_ols", *inits)
               if c not in table.columns]
    if missing:
        raise StudyError(f"the trials table lacks the columns {missing}")
    start = table[inits].to_numpy(dtype=float)
    table["start_distance"] = np.linalg.norm(start - problem.ols_theta, axis=1)
    table["region"] = measured_region(table, spec.dist_tol)
    cols = setting_columns(table)
    cache: dict[tuple, dict] = {}
    rows = []
    for i, row in enumerate(table.to_dict("records")):
        settings = trial_settings(spec.settings, row, cols)
        key = (settings, float(row["lr"]), tuple(start[i]), int(row["epochs"]))
        if key not in cache:
            cache[key] = prediction(problem, settings, key[1], key[2], key[3], spec.dist_tol)
        rows.append(cache[key])
    pred = pd.DataFrame(rows, index=table.index)
    for c in pred.columns:
        if c.startswith("predicted_epochs"):
            pred[c] = pred[c].astype("Int64")
    table = pd.concat([table, pred], axis=1)
    has = table["predicted_region"].notna()
    table["agrees"] = pd.array(np.where(has, table["region"] == table["predicted_region"], False),
                               dtype="boolean")
    table.loc[~has, "agrees"] = pd.NA
    return table


# ── regions ─────────────────────────────────────────────────────────────────────────────────


def settings_groups(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(label, trials) per combination of the varying algorithm settings ('all trials' if none)."""
    cols = group_columns(table)
    if not cols:
        return [("all trials", table)]
    return [(", ".join(f"{c}={v}" for c, v in zip(cols, key if isinstance(key, tuple)
                                                     else (key,), strict=True)), part)
            for key, part in table.groupby(cols, sort=True, dropna=False)]


def edge_bracket(part: pd.DataFrame) -> tuple[float | None, float | None]:
    """(largest lr that converged, smallest lr that diverged); None where there is none."""
    conv = part.loc[part["region"] == "converged", "lr"]
    div = part.loc[part["region"] == "diverged", "lr"]
    return (float(conv.max()) if len(conv) else None, float(div.min()) if len(div) else None)


def region_summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per group: counts measured and predicted, the edge bracket beside lr_max, and
    whether the bracket holds it (open ends count as holding)."""
    rows = []
    for label, part in settings_groups(table):
        low, high = edge_bracket(part)
        edge = float(part["lr_max"].iloc[0])
        row: dict[str, Any] = {"group": label, "trials": len(part)}
        for r in REGIONS:
            row[r] = int((part["region"] == r).sum())
        for r in REGIONS:
            row[f"predicted {r}"] = int((part["predicted_region"] == r).sum())
        has = part["agrees"].notna()
        row.update(largest_converged_lr=low, smallest_diverged_lr=high, lr_max=edge,
                   bracket_holds_lr_max=bool((low is None or low <= edge)
                                             and (high is None or edge <= high)),
                   agreement=float(part.loc[has, "agrees"].astype(bool).mean())
                   if has.any() else None)
        rows.append(row)
    return pd.DataFrame(rows)


def agreement(table: pd.DataFrame) -> tuple[float | None, pd.DataFrame]:
    """(share of trials whose measured region is the predicted one, the trials that differ)."""
    has = table["agrees"].notna()
    if not has.any():
        return None, table.iloc[:0]
    agrees = table.loc[has, "agrees"].astype(bool)
    return float(agrees.mean()), table.loc[has][~agrees.to_numpy()]


def objective_column(table: pd.DataFrame, objective: Objective) -> str | None:
    """The table column holding an objective's values, if any."""
    return objective.column if objective.column in table.columns else None


def best_trials(table: pd.DataFrame, spec: ReportSpec, k: int = 3) -> dict[str, pd.DataFrame]:
    """The ``k`` best non-diverged trials per objective (dist_to_ols if the spec has none)."""
    objectives = spec.objectives or (Objective("dist_to_ols", "minimize", "dist_to_ols"),)
    out = {}
    for obj in objectives:
        col = objective_column(table, obj)
        if col is None:
            continue
        ok = table[(table["region"] != "diverged") & table[col].notna()]
        ok = ok[np.isfinite(ok[col].astype(float))]
        out[obj.title] = ok.sort_values(col, ascending=obj.direction == "minimize").head(k)
    return out


# ── numbers in words ────────────────────────────────────────────────────────────────────────


def fmt(value: Any, digits: int = 4) -> str:
    """A number for people: 4 significant digits, '—' for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return f"{float(value):.{digits}g}"
    return str(value)


def start_text(values: Sequence[float]) -> str:
    return "(" + ", ".join(fmt(float(v), 3) for v in values) + ")"


# ── theory beside the measurements ──────────────────────────────────────────────────────────


def group_settings(part: pd.DataFrame, base: Settings) -> Settings:
    """The settings shared by the trials of one group."""
    return trial_settings(base, part.iloc[0].to_dict(), setting_columns(part))


def theory_facts(problem: Problem, settings: Settings) -> dict[str, Any]:
    """λ_min, λ_max, κ, lr_max, the best constant lr and the slow direction in words."""
    sp = theory.spectrum(problem, settings)
    best = theory.best_lr(problem, settings)
    with np.errstate(divide="ignore"):  # z-scored x: the slow direction is pure b
        slow = theory.slow_direction_text(problem, settings)
    return {"lam_min": sp.lam_min, "lam_max": sp.lam_max, "condition_number": sp.condition_number,
            "lr_max": theory.lr_max(problem, settings), "best_lr": best,
            "time_constant_at_best_lr": theory.time_constant(problem, settings, best),
            "slow_direction": slow}


def representative_starts(table: pd.DataFrame, problem: Problem, most: int = 3
                          ) -> dict[str, tuple[float, ...]]:
    """Each distinct start when there are at most ``most``; else the coordinate-wise median."""
    starts = table[init_columns(problem)].drop_duplicates().to_numpy(dtype=float)
    if len(starts) <= most:
        return {f"start {start_text(s)}": tuple(map(float, s)) for s in starts}
    median = tuple(map(float, np.median(table[init_columns(problem)].to_numpy(float), axis=0)))
    return {f"median start {start_text(median)}": median}


def frontier(problem: Problem, settings: Settings, starts: Mapping[str, Sequence[float]],
             lrs: Sequence[float], dist_tol: float, budget: int) -> pd.DataFrame:
    """Theory's convergence frontier: per start and stable lr, the first epoch with
    ‖θ_n − θ*‖ ≤ dist_tol (NaN beyond the scan cap). Columns start, lr, epochs_needed."""
    edge = theory.lr_max(problem, settings)
    rows = []
    for label, init in starts.items():
        for lr in lrs:
            if settings.optimizer == "line_search" or lr >= edge:
                continue
            params, _ = theory.predicted_epochs(problem, settings, float(lr), init, (dist_tol,),
                                                (), _scan_cap(settings, budget))
            n = params[float(dist_tol)]
            rows.append({"start": label, "lr": float(lr),
                         "epochs_needed": float("nan") if n is None else float(n)})
    return pd.DataFrame(rows, columns=["start", "lr", "epochs_needed"])


def frontier_lrs(table: pd.DataFrame, edge: float, points: int = 60) -> np.ndarray:
    """Log-spaced lrs from the smallest tried to the largest tried or 0.999·lr_max (right at
    the edge the oscillating fast mode needs ~1/(1 − |1 − lr·λ_max|) epochs to settle)."""
    low, high = float(table["lr"].min()), float(table["lr"].max())
    if math.isfinite(edge):
        high = min(high, 0.999 * edge)
    return np.geomspace(low, high, points) if high > low else np.array([low])


# ── the conclusion, written from the numbers ────────────────────────────────────────────────


def _value(v: Any) -> float | None:
    """A summary cell as a number, or None where it is missing (None or NaN)."""
    return None if v is None or pd.isna(v) else float(v)


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
    cap = _scan_cap(settings, int(trial["epochs"]))

    def needs(n: Any) -> str:
        if n is None or n is pd.NA:
            return f"more than {fmt(cap)} epochs"
        return f"about {fmt(int(n))} epoch{'s' if int(n) != 1 else ''}"

    facts = theory_facts(problem, settings)
    reasons = []
    if facts["condition_number"] > 100:
        reasons.append(f"the Hessian's eigenvalues differ by the condition number κ = "
                       f"{fmt(facts['condition_number'], 3)} ({facts['slow_direction']})")
    if lr < 0.1 * facts["lr_max"]:
        reasons.append(f"lr is only {fmt(lr / facts['lr_max'], 2)}·lr_max")
    text = (f"Even at lr {fmt(lr)} with {fmt(int(trial['epochs']))} epochs from start "
            f"{start_text(init)}, theory says reaching ‖θ − θ*‖ ≤ {fmt(dist_tol)} takes "
            f"{needs(trial['predicted_epochs_to_dist_tol'])}: the slowest direction of the cost "
            f"surface shrinks by a factor e only every "
            f"{fmt(theory.time_constant(problem, settings, lr), 3)} epochs"
            + (", because " + " and ".join(reasons) if reasons else "") + ".")
    if settings.optimizer != "line_search":
        best, _ = theory.predicted_epochs(problem, settings, facts["best_lr"], init,
                                          (dist_tol,), (), cap)
        text += (f" Even the best constant lr, 2/(λ_min + λ_max) = {fmt(facts['best_lr'])}, "
                 f"needs {needs(best[float(dist_tol)])} from that start.")
    return text


def _group_line(label: str, part: pd.DataFrame, row: Mapping[str, Any]) -> str:
    """One settings group in a sentence, for studies that compare settings."""
    counts = ", ".join(f"{int(row[r])} {r}" for r in REGIONS)
    edge = (f"lr_max = {fmt(row['lr_max'])}" if math.isfinite(row["lr_max"])
            else "no lr_max (line search picks its own step)")
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


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


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
        out = [_group_line(label, part, row) for (label, part), row in groups]
        (label, part), _ = max(groups, key=lambda g: int(g[1]["not converged"]))
        why = _why_sentence(problem, part, group_settings(part, spec.settings), spec.dist_tol)
        if why:
            out.append(f"[{label}] {why}")
    rate, differ = agreement(table)
    if rate is not None:
        n = int(table["agrees"].notna().sum())
        text = f"Theory predicted the region of {n - len(differ)} of {n} trials ({rate:.0%})."
        if n < len(table):
            text += (f" The other {len(table) - n} (backtracking line search) have no "
                     "prediction.")
        if len(differ):
            pairs = differ.groupby(["region", "predicted_region"]).size()
            text += " Measured ≠ predicted: " + "; ".join(
                f"{k} measured {m}, predicted {p}" for (m, p), k in pairs.items()) + \
                " (listed under 'Measured against predicted')."
        out.append(text)
    for title, best in best_trials(table, spec, 1).items():
        if not len(best):
            continue
        t = best.iloc[0]
        obj_col = next((o.column for o in spec.objectives if o.title == title), "dist_to_ols")
        where = "".join(f", {c}={t[c]}" for c in group_columns(table))
        text = (f"Best by {title}: trial #{fmt(t.get('trial'))} (lr {fmt(float(t['lr']))}, "
                f"{fmt(int(t['epochs']))} epochs{where}) with {title} = "
                f"{fmt(float(t[obj_col]))}.")
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


def _at_top(values: pd.Series, value: float) -> bool:
    """True when ``value`` is in the top 5% of the (log) range of ``values``."""
    v = values.astype(float).to_numpy()
    lo, hi, x = v.min(), v.max(), float(value)
    if hi <= lo:
        return False
    if lo > 0:
        lo, hi, x = np.log(lo), np.log(hi), np.log(x)
    return bool((x - lo) / (hi - lo) >= 0.95)


# ── report.md and report.html ───────────────────────────────────────────────────────────────

SUMMARY_HEADERS = {"group": "settings", "trials": "trials", "converged": "converged",
                   "not converged": "not converged", "diverged": "diverged",
                   "largest_converged_lr": "largest converging lr",
                   "smallest_diverged_lr": "smallest diverging lr", "lr_max": "theory lr_max",
                   "bracket_holds_lr_max": "bracket holds lr_max",
                   "agreement": "agreement with theory"}


def trial_columns(table: pd.DataFrame, problem: Problem, spec: ReportSpec) -> list[str]:
    """The columns worth showing for a trial in a document table."""
    wanted = ["trial", "lr", "epochs", *init_columns(problem), *group_columns(table),
              "region", "predicted_region", *(f"final_{n}" for n in problem.param_names),
              "dist_to_ols", "predicted_epochs_to_dist_tol",
              *(o.column for o in spec.objectives)]
    return list(dict.fromkeys(c for c in wanted if c in table.columns))


def report_blocks(problem: Problem, table: pd.DataFrame, summary: pd.DataFrame,
                  spec: ReportSpec, images: Mapping[str, tuple[Path, str]],
                  frontier_table: pd.DataFrame) -> list[tuple]:
    """The document as blocks ('h1'|'h2'|'p', text), ('ul', items), ('table', frame),
    ('img', path, caption), rendered by :func:`to_markdown` and :func:`to_html`."""
    counts = table["region"].value_counts()
    b: list[tuple] = [
        ("h1", f"Gradient descent study: {spec.name}"),
        ("p", f"{len(table)} complete trials: " + ", ".join(
            f"{int(counts.get(r, 0))} {r}" for r in REGIONS) + f". A trial is converged when "
            f"its final (m, b) lies within ‖θ − θ*‖ ≤ {fmt(spec.dist_tol)} of the least-squares "
            "(OLS) optimum θ*, diverged when its cost blew up, and not converged when it was "
            "stable but its epoch budget ran out first."),
        ("h2", "Conclusion"), ("ul", conclusion(problem, table, summary, spec)),
        ("h2", "The data and its least-squares line"),
        ("p", f"{problem.n} points from {spec.data or problem.source}; feature(s) "
              f"{', '.join(problem.x_names)}, target {problem.y_name}. " + ols_text(problem)
              + f" Cost J = {spec.settings.cost}; "
              f"J* = {fmt(problem.ols_cost(spec.settings.cost))}."),
        *([("img", *images["data"])] if "data" in images else []),
        ("h2", "What theory says"),
    ]
    facts, worst = [], (-1.0, "", "")
    for label, part in settings_groups(table):
        s = group_settings(part, spec.settings)
        f = theory_facts(problem, s)
        facts.append({"settings": label, "λ_min": f["lam_min"], "λ_max": f["lam_max"],
                      "condition number κ": f["condition_number"], "lr_max": f["lr_max"],
                      "best constant lr 2/(λ_min+λ_max)": f["best_lr"],
                      "epochs per e-fold at best lr": f["time_constant_at_best_lr"]})
        if label == "all trials" or f["condition_number"] >= worst[0]:
            worst = (f["condition_number"], f["slow_direction"],
                     "" if label == "all trials" else f" (for {label}, the largest κ)")
    b += [("table", pd.DataFrame(facts)),
          ("p", f"Slowest direction of the cost surface{worst[2]}: {worst[1]}. Plain GD is "
                "stable only for "
                "lr < lr_max, and along the slowest direction the error shrinks by "
                "(1 − lr·λ_min) per epoch: with a large κ, any lr small enough for the steep "
                "direction is tiny for the flat one."),
          ("h2", "Regions: where gradient descent converges, runs out of epochs, or diverges"),
          ("table", summary[list(SUMMARY_HEADERS)].assign(agreement=summary["agreement"].map(
              lambda a: "—" if a is None or pd.isna(a) else f"{a:.0%}"))
           .rename(columns=SUMMARY_HEADERS))]
    b += [("img", *images[k]) for k in ("regions", "distance") if k in images]
    rate, differ = agreement(table)
    b += [("h2", "Measured against predicted"),
          ("p", "Theory's frontier: the epochs needed to reach ‖θ − θ*‖ ≤ "
                f"{fmt(spec.dist_tol)}, by lr (from the start(s) shown)."),
          ("table", frontier_table)]
    if rate is not None:
        b.append(("p", f"Measured and predicted regions agree for {rate:.1%} of the trials; "
                       f"{len(differ)} differ" + (":" if len(differ) else ".")))
        if len(differ):
            b.append(("table", differ[trial_columns(table, problem, spec)].head(30)))
    b += [("h2", "Cost curves and the error surface")]
    b += [("img", *images[k]) for k in ("cost", "contour") if k in images]
    if "axes" in images or "pareto" in images:
        b.append(("h2", "Each swept setting against the objective"))
        b += [("img", *images[k]) for k in ("axes", "pareto") if k in images]
    b.append(("h2", "Best trials (diverged trials are never best)"))
    for title, best in best_trials(table, spec).items():
        b += [("p", f"By {title}:"), ("table", best[trial_columns(table, problem, spec)])]
    b += [("h2", "Files"), ("ul", ["trials.csv and trials.parquet: every complete trial with "
                                   "its region and theory's prediction",
                                   "summary.json: the region table and the theory figures",
                                   "figures/: the figures as PNG"])]
    return b


def ols_text(problem: Problem) -> str:
    theta = problem.ols_theta
    if problem.d == 1:
        return (f"Its least-squares line is {problem.y_name} = {fmt(theta[0])}·{problem.x_names[0]}"
                f" + {fmt(theta[1])}.").replace("+ -", "− ")
    terms = " + ".join(f"{fmt(w)}·{n}" for w, n in zip(theta[:-1], problem.x_names, strict=True))
    return (f"Its least-squares fit is {problem.y_name} = {terms} + {fmt(theta[-1])}."
            .replace("+ -", "− "))


def _cell(value: Any) -> str:
    return fmt(value) if not isinstance(value, str) else value


def _md_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def to_markdown(blocks: Sequence[tuple], folder: Path) -> str:
    """Markdown with images linked relative to ``folder``."""
    out = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2"):
            out.append(("# " if kind == "h1" else "## ") + rest[0])
        elif kind == "p":
            out.append(rest[0])
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in rest[0]))
        elif kind == "table":
            out.append(_md_table(rest[0]))
        elif kind == "img":
            out.append(f"![{rest[1]}]({rest[0].relative_to(folder).as_posix()})\n\n*{rest[1]}*")
    return "\n\n".join(out) + "\n"


_CSS = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
        "line-height:1.45}table{border-collapse:collapse;margin:.5em 0;font-size:90%}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f3f3f3}"
        "img{max-width:100%}figure{margin:1em 0}figcaption{color:#444;font-size:90%}")


def to_html(blocks: Sequence[tuple], title: str) -> str:
    """One self-contained HTML page: images embedded as base64 data URIs."""
    esc = html.escape
    body = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "p"):
            body.append(f"<{kind}>{esc(rest[0])}</{kind}>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in rest[0]) + "</ul>")
        elif kind == "table":
            frame = rest[0]
            head = "".join(f"<th>{esc(str(c))}</th>" for c in frame.columns)
            rows = "".join("<tr>" + "".join(f"<td>{esc(_cell(v))}</td>" for v in row) + "</tr>"
                           for row in frame.itertuples(index=False))
            body.append(f"<table><tr>{head}</tr>{rows}</table>")
        elif kind == "img":
            data = base64.b64encode(rest[0].read_bytes()).decode("ascii")
            body.append(f'<figure><img alt="{esc(rest[1])}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{esc(rest[1])}</figcaption></figure>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}'
            f"</title><style>{_CSS}</style></head><body>\n" + "\n".join(body)
            + "\n</body></html>\n")


# ── putting it together ─────────────────────────────────────────────────────────────────────


def build_report(cfg: Any, problem: Problem, trials: pd.DataFrame, out_dir: str | Path) -> Path:
    """Write trials.csv/.parquet, summary.json, figures/*.png, report.md and report.html under
    ``out_dir`` from the complete trials; ``cfg`` is a StudyConfig or a :class:`ReportSpec`.
    Returns the path of report.html."""
    from study import figures  # matplotlib is loaded only when drawing

    spec = cfg if isinstance(cfg, ReportSpec) else spec_from_config(cfg)
    if trials is None or len(trials) == 0:
        raise StudyError(f"study {spec.name!r} has no complete trials yet: nothing to report")
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    table = trials_table(problem, trials, spec)
    summary = region_summary(table)
    table.to_csv(out / "trials.csv", index=False)
    table.to_parquet(out / "trials.parquet", index=False)
    data = figures.figure_data(problem, table, spec)
    images = figures.save_figures(data, out / "figures", spec.dist_tol, spec.name)
    blocks = report_blocks(problem, table, summary, spec, images, data["frontier_table"])
    (out / "report.md").write_text(to_markdown(blocks, out), encoding="utf-8")
    (out / "report.html").write_text(to_html(blocks, f"Study report: {spec.name}"),
                                     encoding="utf-8")
    rate, _ = agreement(table)
    doc = {"name": spec.name, "dist_tol": spec.dist_tol, "trials": len(table),
           "agreement": rate, "regions": json.loads(summary.to_json(orient="records")),
           "theory": [{"group": label, **{k: v for k, v in theory_facts(
               problem, group_settings(part, spec.settings)).items()}}
               for label, part in settings_groups(table)]}
    (out / "summary.json").write_text(json.dumps(doc, indent=2, default=str) + "\n",
                                      encoding="utf-8")
    return out / "report.html"


def publish(cfg: Any) -> tuple[Path, str | None]:
    """The report of ``cfg``'s study from its COMPLETE trials (a finished, resumed or running
    study) under ``cfg.report.dir``, also logged as artifacts (``report/``) of the sweep's
    latest parent MLflow run when there is one: (path of report.html, that run's id or None).
    Raises :class:`StudyError` when the study is missing or has no complete trial."""
    from study import sweep, tracking
    from study.data import load_problem

    problem = load_problem(cfg.data.path, cfg.data.x, cfg.data.y)
    trials = sweep.trials_frame(cfg)
    if len(trials) == 0:
        raise StudyError(f"study {cfg.name!r} has no complete trials yet: nothing to report")
    path = build_report(cfg, problem, trials, cfg.report.dir)
    return path, tracking.log_report_artifacts(cfg.tracking.mlflow_uri, cfg.name,
                                               cfg.report.dir)


def write_report(cfg: Any) -> Path:
    """:func:`publish`, returning the path of report.html."""
    return publish(cfg)[0]
