"""Where gradient descent converges, where it diverges, measured and predicted, as tables.

1. The **trials table**: the sweep's tidy table plus, for every trial, theory's prediction for the
   same (settings, lr, start, budget) and the trial's **region**:

   - ``diverged``: the engine stopped the run because the cost blew up;
   - ``converged``: ‖θ − θ*‖ ≤ ``dist_tol`` (the report's tolerance) at the end of the budget;
   - ``not converged``: stable, but the epoch budget ran out before reaching the OLS line.

   Theory predicts ``diverged`` iff lr ≥ lr_max (2/λ_max for plain GD), else ``converged`` iff the
   first epoch n with ‖θ_n − θ*‖ ≤ dist_tol (exact,
   :func:`study.core.prediction.predicted_epochs`) is within the budget. Backtracking line
   search has no prediction.
2. The **regions**: counts, the measured edge bracket (largest converging lr, smallest diverging
   lr) beside lr_max, per combination of swept algorithm settings; the agreement between measured
   and predicted regions, with the disagreeing trials.
3. Theory's **frontier**: per stable lr, the epochs needed to reach the tolerance.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from study.core import theory
from study.core.engine import Settings
from study.core.prediction import predicted_epochs
from study.core.problem import Problem
from study.errors import StudyError
from study.report import forecast
from study.report.spec import Objective, ReportSpec

REGIONS = ("converged", "not converged", "diverged")
# Settings a sweep may vary per trial; the others describe what the engine records.
# (The table's ``seed`` column is each trial's minibatch seed, not a shared setting.)
SETTING_COLUMNS = tuple(f.name for f in dataclasses.fields(Settings) if f.name not in {
    "param_tols", "cost_tols", "record_path", "history_points", "history_dense", "seed"})
_MONOTONE_CAP = 1_000_000_000  # bisection on a monotone error: any cap costs ~30 evaluations
_SCAN_FACTOR = 4  # other updates are scanned epoch by epoch up to this × the budget


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


def group_settings(part: pd.DataFrame, base: Settings) -> Settings:
    """The settings shared by the trials of one group."""
    return trial_settings(base, part.iloc[0].to_dict(), setting_columns(part))


def measured_region(trials: pd.DataFrame, dist_tol: float) -> pd.Series:
    """diverged / converged (‖θ − θ*‖ ≤ dist_tol) / not converged, from the engine's results."""
    region = np.where(trials["dist_to_ols"].astype(float) <= dist_tol, REGIONS[0], REGIONS[1])
    region = np.where(trials["status"] == "diverged", REGIONS[2], region)
    return pd.Series(region, index=trials.index, name="region")


def scan_cap(settings: Settings, epochs: int) -> int:
    """The last epoch theory looks at when asked when a tolerance is first reached."""
    monotone = (settings.update == "simultaneous" and settings.optimizer in ("gd", "minibatch")
                and not settings.standardize)
    return _MONOTONE_CAP if monotone else max(_SCAN_FACTOR * int(epochs), 1000)


def prediction(problem: Problem, settings: Settings, lr: float, init: Sequence[float],
               epochs: int, dist_tol: float) -> dict[str, Any]:
    """Theory's view of one trial: ``lr_max``, ``predicted_region`` (None without a prediction)
    and the first epochs at which each tolerance is reached (None: unstable or beyond the cap,
    see :func:`scan_cap`). The region agrees with :func:`study.core.prediction.predicted_status`."""
    edge = theory.lr_max(problem, settings)
    ptols = tuple(sorted({*map(float, settings.param_tols), float(dist_tol)}))
    ctols = tuple(map(float, settings.cost_tols))
    out: dict[str, Any] = {"lr_max": edge}
    if settings.optimizer != "line_search" and lr >= edge:
        params, costs = dict.fromkeys(ptols), dict.fromkeys(ctols)
        out["predicted_region"] = "diverged"
    else:
        params, costs = predicted_epochs(problem, settings, lr, init, ptols, ctols,
                                                scan_cap(settings, epochs))
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


def predictions(problem: Problem, settings: Settings, lrs: Sequence[float], inits: np.ndarray,
                epochs: Sequence[int], dist_tol: float) -> list[dict[str, Any]]:
    """:func:`prediction` for many trials of one settings; plain GD in one vectorized pass
    (:mod:`study.report.forecast`), whose time does not grow with the trials one by one."""
    if not forecast.vectorizable(settings):
        return [prediction(problem, settings, float(lr), tuple(init), int(e), dist_tol)
                for lr, init, e in zip(lrs, inits, epochs, strict=True)]
    edge = theory.lr_max(problem, settings)
    ptols = tuple(sorted({*map(float, settings.param_tols), float(dist_tol)}))
    ctols = tuple(map(float, settings.cost_tols))
    targets = [("param", t) for t in ptols] + [("cost", t) for t in ctols]
    found = forecast.first_epochs(problem, settings, lrs, inits, targets, _MONOTONE_CAP)
    rows = []
    for lr, e, hits in zip(lrs, epochs, found, strict=True):
        first = {tg: (int(h) if h >= 0 and lr < edge else None)
                 for tg, h in zip(targets, hits, strict=True)}
        reached = first[("param", float(dist_tol))]
        out: dict[str, Any] = {"lr_max": edge, "predicted_region": "diverged" if lr >= edge
                               else "converged" if reached is not None and reached <= e
                               else "not converged", "predicted_epochs_to_dist_tol": reached}
        out.update({f"predicted_epochs_to_param_tol_{t:g}": first[("param", float(t))]
                    for t in settings.param_tols})
        out.update({f"predicted_epochs_to_cost_tol_{t:g}": first[("cost", float(t))]
                    for t in settings.cost_tols})
        rows.append(out)
    return rows


def _predictions(problem: Problem, table: pd.DataFrame, start: np.ndarray,
                 spec: ReportSpec) -> pd.DataFrame:
    """:func:`prediction` for every row, per settings at once, each distinct (lr, start,
    budget) once."""
    cols = setting_columns(table)
    by_settings: dict[Settings, dict[tuple, list[int]]] = {}
    for i, row in enumerate(table.to_dict("records")):
        settings = trial_settings(spec.settings, row, cols)
        key = (float(row["lr"]), tuple(start[i]), int(row["epochs"]))
        by_settings.setdefault(settings, {}).setdefault(key, []).append(i)
    rows: list[dict] = [{}] * len(table)
    for settings, keys in by_settings.items():
        lrs, inits, epochs = zip(*keys, strict=True)
        for where, pred in zip(keys.values(), predictions(
                problem, settings, lrs, np.array(inits), epochs, spec.dist_tol), strict=True):
            for i in where:
                rows[i] = pred
    pred = pd.DataFrame(rows, index=table.index)
    for c in pred.columns:
        if c.startswith("predicted_epochs"):
            pred[c] = pred[c].astype("Int64")
    return pred


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
    table = pd.concat([table, _predictions(problem, table, start, spec)], axis=1)
    agrees = (table["region"] == table["predicted_region"]).astype("boolean")
    table["agrees"] = agrees.where(table["predicted_region"].notna(), pd.NA)
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


def agreement(table: pd.DataFrame) -> tuple[float | None, pd.DataFrame]:
    """(share of trials whose measured region is the predicted one, the trials that differ)."""
    has = table["agrees"].notna()
    if not has.any():
        return None, table.iloc[:0]
    agrees = table.loc[has, "agrees"].astype(bool)
    return float(agrees.mean()), table.loc[has][~agrees.to_numpy()]


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
        row.update(largest_converged_lr=low, smallest_diverged_lr=high, lr_max=edge,
                   bracket_holds_lr_max=bool((low is None or low <= edge)
                                             and (high is None or edge <= high)),
                   agreement=agreement(part)[0])
        rows.append(row)
    return pd.DataFrame(rows)


def best_by_objective(table: pd.DataFrame, spec: ReportSpec, k: int = 3
                      ) -> dict[str, tuple[Objective, pd.DataFrame]]:
    """{title: (objective, its ``k`` best non-diverged trials)} per objective in the table
    (dist_to_ols if the spec has none)."""
    out = {}
    for obj in spec.objectives or (Objective("dist_to_ols"),):
        if obj.column not in table.columns:
            continue
        ok = table[(table["region"] != "diverged") & table[obj.column].notna()]
        ok = ok[np.isfinite(ok[obj.column].astype(float))]
        out[obj.title] = obj, ok.sort_values(obj.column,
                                             ascending=obj.direction == "minimize").head(k)
    return out


def best_trials(table: pd.DataFrame, spec: ReportSpec, k: int = 3) -> dict[str, pd.DataFrame]:
    """The ``k`` best non-diverged trials per objective title."""
    return {title: best for title, (_, best) in best_by_objective(table, spec, k).items()}


# ── theory beside the measurements ──────────────────────────────────────────────────────────


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


def epochs_needed(problem: Problem, settings: Settings, lr: float, init: Sequence[float],
                  dist_tol: float, budget: int) -> int | None:
    """The first epoch n with ‖θ_n − θ*‖ ≤ dist_tol (None: not within the scan cap)."""
    params, _ = predicted_epochs(problem, settings, float(lr), init, (dist_tol,), (),
                                        scan_cap(settings, budget))
    return params[float(dist_tol)]


def frontier(problem: Problem, settings: Settings, starts: Mapping[str, Sequence[float]],
             lrs: Sequence[float], dist_tol: float, budget: int) -> pd.DataFrame:
    """Theory's convergence frontier: per start and stable lr, the first epoch with
    ‖θ_n − θ*‖ ≤ dist_tol (NaN beyond the scan cap). Columns start, lr, epochs_needed."""
    edge = theory.lr_max(problem, settings)
    stable = [float(lr) for lr in lrs if settings.optimizer != "line_search" and lr < edge]
    rows = []
    for label, init in starts.items():
        if forecast.vectorizable(settings) and stable:
            found = forecast.first_epochs(problem, settings, stable, np.tile(init, (len(
                stable), 1)), [("param", float(dist_tol))], scan_cap(settings, budget))[:, 0]
            needed = [float(n) if n >= 0 else float("nan") for n in found]
        else:
            needed = [float("nan") if n is None else float(n) for n in (
                epochs_needed(problem, settings, lr, init, dist_tol, budget) for lr in stable)]
        rows += [{"start": label, "lr": lr, "epochs_needed": n}
                 for lr, n in zip(stable, needed, strict=True)]
    return pd.DataFrame(rows, columns=["start", "lr", "epochs_needed"])


def frontier_lrs(table: pd.DataFrame, edge: float, points: int = 60) -> np.ndarray:
    """Log-spaced lrs from the smallest tried to the largest tried or 0.999·lr_max (right at
    the edge the oscillating fast mode needs ~1/(1 − |1 − lr·λ_max|) epochs to settle)."""
    low, high = float(table["lr"].min()), float(table["lr"].max())
    if math.isfinite(edge):
        high = min(high, 0.999 * edge)
    return np.geomspace(low, high, points) if high > low else np.array([low])
