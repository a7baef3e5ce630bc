"""The report's figures as data: small tidy tables, tested as data, drawn by
:mod:`study.report.drawing`.

a. ``regions``: lr × epochs, one marker per trial coloured by region (diverged: red ✕), theory's
   lr_max as a vertical line and the convergence frontier (epochs needed to reach the tolerance);
b. ``distance``: log10 ‖θ − θ*‖ over lr × epochs, and over lr × start distance when starts vary;
c. ``cost``: relative cost gap (J − J*)/J* against epoch, log-log, for a few trials (their logged
   histories, or re-run through the engine, which reproduces a logged trial exactly), with
   theory's curve dashed;
d. ``contour``: J − J* over (m, b) on log-spaced levels, GD paths from a few starts, θ* marked;
e. ``axes``: the primary objective against each swept setting (tuning-playbook axis plots);
f. ``pareto``: the first two objectives and their Pareto front;

and ``data``: the points with the OLS line and where two trials ended. This module imports no
matplotlib.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from study.core import engine, theory
from study.core.problem import Problem, cost_scale
from study.report.regions import (
    frontier,
    frontier_lrs,
    group_columns,
    group_settings,
    init_columns,
    setting_columns,
    settings_groups,
    trial_settings,
)
from study.report.spec import Objective, ReportSpec
from study.report.text import fmt, start_text

# The figures in the report's order, and what each shows (the report's captions).
FIGURES = ("regions", "distance", "cost", "data", "contour", "axes", "pareto")
CAPTIONS = {
    "data": "The data set with its least-squares (OLS) line and the final lines of two trials.",
    "regions": "Where gradient descent converges: each trial by learning rate and epoch budget. "
               "Theory's edge of stability (dashed) and its convergence frontier (solid: trials "
               "above the curve should reach the OLS line).",
    "distance": "How far from the OLS line each trial ended (colour: log10 ‖θ − θ*‖).",
    "cost": "Cost curves of representative trials (solid: measured; dashed: theory; red: a "
            "diverging trial).",
    "contour": "The cost surface over (m, b) with GD paths (for plain GD and momentum the "
               "iteration in closed form, equal to a run to rounding): the long, flat valley.",
    "axes": "The objective against each swept setting, one point per trial.",
    "pareto": "Trade-off between the first two objectives; the Pareto front in black.",
}
# A trial's logged history by its MLflow run id: (epochs, costs) at the engine's checkpoints,
# or None where it cannot be read.
StoredHistory = Callable[[str], "tuple[np.ndarray, np.ndarray] | None"]


def log_scale(values: Any, decades: float = 1.5) -> bool:
    """Use a log axis when all values are positive and span at least ``decades``."""
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    v = v[np.isfinite(v)]
    return bool(v.size and v.min() > 0 and np.log10(v.max() / v.min()) >= decades)


def _spread(n: int, k: int) -> np.ndarray:
    """At most ``k`` evenly spread positions among ``n`` rows, the first and last included."""
    return np.unique(np.linspace(0, n - 1, k).round().astype(int))


def representative_starts(table: pd.DataFrame, problem: Problem, most: int = 3
                          ) -> dict[str, tuple[float, ...]]:
    """Each distinct start when there are at most ``most``; else the coordinate-wise median."""
    starts = table[init_columns(problem)].drop_duplicates().to_numpy(dtype=float)
    if len(starts) <= most:
        return {f"start {start_text(s)}": tuple(map(float, s)) for s in starts}
    median = tuple(map(float, np.median(table[init_columns(problem)].to_numpy(float), axis=0)))
    return {f"median start {start_text(median)}": median}


def facets(problem: Problem, table: pd.DataFrame, most_starts: int = 6
           ) -> list[tuple[str, pd.DataFrame, str, bool]]:
    """(title, trials, group label, several starts?) per settings group, split by start when
    there are 2 to ``most_starts`` distinct starts (trials at one (lr, epochs) would hide each
    other). The title is empty for the only group of a study that compares no settings."""
    inits = init_columns(problem)
    out = []
    for label, part in settings_groups(table):
        name = "" if label == "all trials" else label
        starts = part[inits].drop_duplicates()
        if len(starts) == 1 or len(starts) > most_starts:
            out.append((name, part, label, len(starts) > 1))
            continue
        for start in starts.to_numpy(float):
            one = part[(part[inits].to_numpy(float) == start).all(axis=1)]
            title = f"{name}, start {start_text(start)}".lstrip(", ")
            out.append((title, one, label, False))
    return out


def region_data(problem: Problem, table: pd.DataFrame, spec: ReportSpec) -> list[dict]:
    """One panel per facet: trial points, lr_max and theory's frontier from the facet's start
    (or the median start)."""
    panels = []
    for title, part, group, _ in facets(problem, table):
        settings = group_settings(part, spec.settings)
        edge = float(part["lr_max"].iloc[0])
        starts = representative_starts(part, problem, most=1)
        front = frontier(problem, settings, starts, frontier_lrs(part, edge), spec.dist_tol,
                         int(part["epochs"].max()))
        points = part[["lr", "epochs", "region", "agrees"]].reset_index(drop=True)
        panels.append({"title": title, "group": group,
                       "points": points, "lr_max": edge, "frontier": front})
    return panels


def frontier_table(panels: list[dict], rows: int = 8) -> pd.DataFrame:
    """A few points of each frontier curve, for the document."""
    out = []
    for panel in panels:
        for _, curve in panel["frontier"].groupby("start", sort=False):
            pick = curve.iloc[_spread(len(curve), rows)]
            out.append(pick.assign(settings=panel["group"]))
    cols = ["settings", "start", "lr", "epochs needed"]
    if not out:
        return pd.DataFrame(columns=cols)
    frame = pd.concat(out, ignore_index=True).rename(columns={"epochs_needed": "epochs needed"})
    frame["epochs needed"] = frame["epochs needed"].round().astype("Int64")
    return frame[cols if frame["settings"].nunique() > 1 else cols[1:]]


def distance_data(problem: Problem, table: pd.DataFrame) -> list[dict]:
    """Per facet: lr, epochs, start distance, log10 ‖θ − θ*‖ and region of each trial."""
    panels = []
    for title, part, _, several in facets(problem, table):
        pts = part[["lr", "epochs", "start_distance", "region"]].reset_index(drop=True)
        pts["log10_dist"] = np.log10(np.maximum(part["dist_to_ols"].to_numpy(float), 1e-300))
        panels.append({"title": title, "points": pts, "lr_max": float(part["lr_max"].iloc[0]),
                       "starts_vary": several})
    return panels


def pick_cost_trials(table: pd.DataFrame, n: int = 7) -> pd.DataFrame:
    """About ``n`` trials spread over the stable lrs (longest budgets first), plus the
    diverging trial closest to the edge."""
    stable = table[table["region"] != "diverged"]
    longest = stable[stable["epochs"] == stable["epochs"].max()]
    pool = longest if longest["lr"].nunique() >= n - 1 else stable
    picks = []
    if len(pool):
        logs = np.log(pool["lr"].to_numpy(float))
        for target in np.linspace(logs.min(), logs.max(), n - 1):
            picks.append(pool.index[int(np.argmin(np.abs(logs - target)))])
    div = table[table["region"] == "diverged"].sort_values(["lr", "epochs"],
                                                           ascending=[True, False])
    if len(div):
        picks.append(div.index[0])
    return table.loc[list(dict.fromkeys(picks))].sort_values("lr")


def _relative_gaps(problem: Problem, trial: engine.Trial, epochs: np.ndarray,
                   costs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(J_n − J*)/J* at the checkpoints n, measured (``costs``) and from theory's closed form
    θ_n (NaN for line search, which has none), the latter from the quadratic form; J* = 0
    divides by 1."""
    j_star = problem.ols_cost(trial.settings.cost)
    den = j_star if j_star > 0 else 1.0
    measured = (costs - j_star) / den
    predicted = np.full(measured.shape, np.nan)
    if trial.settings.optimizer != "line_search":
        with np.errstate(all="ignore"):
            path = theory.trajectory(problem, trial.settings, trial.lr, trial.init, epochs)
            log_gap = log10_cost_gap(problem, np.atleast_2d(path), trial.settings.cost)
            predicted = 10.0 ** (log_gap - np.log10(den))  # O(checkpoints), whatever N
    return measured, predicted


def cost_curve_data(problem: Problem, table: pd.DataFrame, spec: ReportSpec, n: int = 7,
                    stored: StoredHistory | None = None) -> pd.DataFrame:
    """Measured and predicted (J − J*)/J* at the engine's checkpoints for representative trials.
    The measured costs are each trial's logged history (``stored(run id)``) where it can be
    read, else the trial re-run through the engine (the same numbers: the engine is
    deterministic). Columns: trial, lr, region, label, epoch, measured, theory."""
    picks = pick_cost_trials(table, n)
    cols = setting_columns(table)
    trials, histories = [], []
    for _, row in picks.iterrows():
        settings = trial_settings(spec.settings, row.to_dict(), cols)
        init = tuple(row[init_columns(problem)].to_numpy(float))
        seed = int(row["seed"]) if "seed" in row and pd.notna(row["seed"]) else None
        trials.append(engine.Trial(float(row["lr"]), int(row["epochs"]), init, settings, seed))
        run_id = row.get("mlflow_run_id")
        histories.append(stored(run_id) if stored and isinstance(run_id, str) else None)
    missing = [t for t, h in zip(trials, histories, strict=True) if h is None]
    rerun = iter(engine.run(problem, missing) if missing else [])
    rows = []
    for (i, row), trial, history in zip(picks.iterrows(), trials, histories, strict=True):
        if history is None:
            res = next(rerun)
            history = (res.history_epoch, res.history_cost)
        epochs, costs = history
        measured, predicted = _relative_gaps(problem, trial, epochs, costs)
        label = ", ".join([f"lr {fmt(trial.lr, 3)}",
                           *(f"{c}={row[c]}" for c in group_columns(table)),
                           *([f"start {start_text(trial.init)}"] if problem.d == 1 else []),
                           str(row["region"])])
        rows.append(pd.DataFrame({"trial": row.get("trial", i), "lr": trial.lr,
                                  "region": row["region"], "label": label,
                                  "epoch": epochs, "measured": measured, "theory": predicted}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def log10_cost_gap(problem: Problem, thetas: np.ndarray, cost: str) -> np.ndarray:
    """log10(J(θ) − J*) for rows θ = (w, b), from the sufficient statistics alone:

        J(θ) − J* = s·(δwᵀ Sxx δw + N δc²),   δ = θ − θ*,  δc = δb + x̄·δw,

    written as s·‖z‖² with z = (√Λ Vᵀδw, √N δc) (Sxx = VΛVᵀ), and evaluated as
    log10 s + 2 log10 ‖z‖ with ‖z‖ scaled by its largest entry, so neither the squares nor the
    sum overflow or underflow at any data scale; memory and time do not depend on N.
    −inf at θ* itself."""
    st = problem.stats
    delta = np.atleast_2d(np.asarray(thetas, dtype=float)) - problem.ols_theta
    dw, dc = delta[:, :-1], delta[:, -1] + delta[:, :-1] @ st.x_mean
    values, vectors = np.linalg.eigh(st.sxx)
    z = np.column_stack([(dw @ vectors) * np.sqrt(np.maximum(values, 0.0)),
                         np.sqrt(float(st.n)) * dc])
    big = np.max(np.abs(z), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = np.log10(big) + 0.5 * np.log10(np.sum((z / big[:, None]) ** 2, axis=1))
        out = np.log10(cost_scale(cost, st.n)) + 2.0 * norm
    return np.where(big > 0, out, -np.inf)


def _gap_grid(problem: Problem, cost: str, points: np.ndarray, size: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(m, b, log10(J(m, b) − J*) on a size × size grid) over the box around ``points`` and
    θ*, padded by 15% of its sides and at least 0.001·(1 + |θ*|) so a flat box still has a
    width. From the quadratic form (:func:`log10_cost_gap`): memory O(size²), whatever N."""
    star = problem.ols_theta
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = np.maximum(0.15 * (hi - lo), 1e-3 * (1 + np.abs(star)))
    m = np.linspace(lo[0] - pad[0], hi[0] + pad[0], size)
    b = np.linspace(lo[1] - pad[1], hi[1] + pad[1], size)
    mm, bb = np.meshgrid(m, b)
    gap = log10_cost_gap(problem, np.column_stack([mm.ravel(), bb.ravel()]), cost)
    return m, b, gap.reshape(mm.shape)


def contour_data(problem: Problem, table: pd.DataFrame, spec: ReportSpec,
                 size: int = 240) -> dict | None:
    """J − J* on a grid over (m, b) around θ* and GD paths from 3 starts (nearest, middle and
    farthest from θ*; one feature).
    The paths use the largest lr tried up to 0.8·lr_max (closer to the edge the steep direction
    zigzags for thousands of epochs and hides the valley) and the longest budget."""
    if problem.d != 1:
        return None
    label, part = settings_groups(table)[0]
    settings = group_settings(part, spec.settings)
    calm = part[(part["region"] != "diverged") & (part["lr"] <= 0.8 * part["lr_max"])]
    lr = float(calm["lr"].max()) if len(calm) else 0.5 * theory.best_lr(problem, settings)
    epochs = int(part["epochs"].max())
    inits = init_columns(problem)
    distinct = part.drop_duplicates(inits).sort_values("start_distance")
    rows = distinct.iloc[_spread(len(distinct), 3)]
    starts = [tuple(map(float, r)) for r in rows[inits].to_numpy(float)]
    paths = pd.concat([pd.DataFrame({"start": start_text(s), "epoch": at, "m": theta[:, 0],
                                     "b": theta[:, 1]})
                       for s, (at, theta) in zip(starts, gd_paths(problem, settings, lr, epochs,
                                                                  starts), strict=True)],
                      ignore_index=True)
    paths = paths[np.isfinite(paths[["m", "b"]]).all(axis=1)]
    star = problem.ols_theta
    m, b, log_gap = _gap_grid(problem, settings.cost, np.vstack(
        [paths[["m", "b"]].to_numpy(), np.array(starts), star[None, :]]), size)
    return {"m": m, "b": b, "log10_gap": log_gap, "paths": paths,
            "ols": (float(star[0]), float(star[1])), "lr": lr, "epochs": epochs,
            "cost": settings.cost, "x_name": problem.x_names[0], "group": label,
            "lr_max": theory.lr_max(problem, settings)}


def gd_paths(problem: Problem, settings: engine.Settings, lr: float, epochs: int,
             starts: list[tuple[float, ...]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(epochs, θ at those epochs) of gradient descent from each start, at the engine's
    checkpoints. Plain GD and momentum are linear maps, θ_n = θ* + Mⁿ(θ₀ − θ*), so their
    paths come from that closed form (:func:`study.core.theory.trajectory`, equal to the
    engine's recorded path to rounding; tested) without loading the engine's compiled code;
    other optimizers are run through the engine."""
    if settings.optimizer in ("gd", "momentum"):
        at = np.unique(np.r_[0, engine.checkpoints(epochs, settings.history_points,
                                                   settings.history_dense), epochs])
        with np.errstate(all="ignore"):
            return [(at, theory.trajectory(problem, settings, lr, s, at)) for s in starts]
    runs = engine.run(problem, [engine.Trial(lr, epochs, s, dataclasses.replace(
        settings, record_path=True)) for s in starts])
    return [(r.history_epoch, r.history_theta) for r in runs]


def data_data(problem: Problem, table: pd.DataFrame, spec: ReportSpec,
              most_points: int = 20_000) -> dict | None:
    """The points (a seeded random sample of ``most_points`` when there are more; ``n_rows``
    says how many there are), the OLS line and the final lines of two trials (one feature): the
    sweep's best trial by its primary objective (the one ``study run`` names; ties to the first
    trial), and the trial that ran out of epochs farthest from θ* while its cost was within 10%
    of J* (the valley: a line that looks fitted, with the wrong (m, b))."""
    if problem.d != 1:
        return None
    lines = [("OLS line", *map(float, problem.ols_theta))]
    ok = table[table["region"] != "diverged"]
    obj = primary_objective(table, spec)
    sign = 1.0 if obj.direction == "minimize" else -1.0
    ranked = ok.assign(_rank=sign * pd.to_numeric(ok[obj.column], errors="coerce"))
    best = ranked[np.isfinite(ranked["_rank"])].sort_values(["_rank", "trial"], kind="stable")
    stuck = ok[ok["region"] == "not converged"].sort_values("dist_to_ols", kind="stable")
    if "rel_cost_gap" in stuck.columns and (stuck["rel_cost_gap"] <= 0.1).any():
        stuck = stuck[stuck["rel_cost_gap"] <= 0.1]
    for title, rows in (("best trial", best.head(1)), ("ran out of epochs", stuck.tail(1))):
        for _, t in rows.iterrows():
            gap = (f", cost {float(t['rel_cost_gap']):.1%} above J*"
                   if pd.notna(t.get("rel_cost_gap")) else "")
            lines.append((f"{title} #{int(t['trial'])} (lr {fmt(float(t['lr']), 3)}, "
                          f"{fmt(int(t['epochs']))} epochs{gap})",
                          float(t["final_m"]), float(t["final_b"])))
    x, y = problem.X[:, 0], problem.y
    x_range = (float(x.min()), float(x.max()))
    if problem.n > most_points:  # millions of points draw slowly and read as one blot
        keep = np.sort(np.random.default_rng(0).choice(problem.n, most_points, replace=False))
        x, y = x[keep], y[keep]
    return {"x": x, "y": y, "n_rows": problem.n, "x_range": x_range,
            "x_name": problem.x_names[0], "y_name": problem.y_name, "lines": lines}


def swept_names(table: pd.DataFrame, spec: ReportSpec) -> list[str]:
    """Swept space entries present in the table (inferred from varying columns if unknown)."""
    names = [n for n in spec.swept if n in table.columns]
    if not spec.swept:
        names = [c for c in table.columns if (c in ("lr", "epochs") or c.startswith("init_"))
                 and table[c].nunique() > 1]
    return names + [c for c in group_columns(table) if c not in names]


def primary_objective(table: pd.DataFrame, spec: ReportSpec) -> Objective:
    """The sweep's first objective found in the table (the distance to θ* if none is)."""
    return next((o for o in spec.objectives if o.column in table.columns),
                Objective("dist_to_ols", "minimize"))


def axis_data(table: pd.DataFrame, spec: ReportSpec) -> dict | None:
    """Per swept setting: (value, objective, region) of every trial, and the axis kind."""
    obj = primary_objective(table, spec)
    names = swept_names(table, spec)
    if not names:
        return None
    panels = []
    for name in names:
        values = table[name]
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        if not numeric:
            kind = "category"
        else:
            kind = "log" if name in spec.log_scaled or name == "lr" or log_scale(values) \
                else "linear"
        panels.append({"name": name, "kind": kind, "points": pd.DataFrame({
            "value": values.to_numpy() if numeric else values.astype(str).to_numpy(),
            "objective": pd.to_numeric(table[obj.column], errors="coerce").to_numpy(float),
            "region": table["region"].to_numpy()})})
    return {"objective": obj.title, "panels": panels,
            "threshold": spec.dist_tol if obj.column == "dist_to_ols" else None}


def pareto_data(table: pd.DataFrame, spec: ReportSpec) -> dict | None:
    """The first two objectives of non-diverged trials and which trials are non-dominated;
    trials without both values (a tolerance never reached) are left out and counted."""
    objs = [o for o in spec.objectives if o.column in table.columns][:2]
    if len(objs) < 2:
        return None
    ok = table[table["region"] != "diverged"]
    vals = ok[[o.column for o in objs]].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    keep = np.isfinite(vals).all(axis=1)
    vals = vals[keep]
    signed = vals * np.array([1.0 if o.direction == "minimize" else -1.0 for o in objs])
    front = np.array([not np.any(np.all(signed <= s, axis=1) & np.any(signed < s, axis=1))
                      for s in signed], dtype=bool)
    return {"x": objs[0].title, "y": objs[1].title, "left_out": int((~keep).sum()),
            "points": pd.DataFrame({"x": vals[:, 0], "y": vals[:, 1], "front": front})}


def figure_data(problem: Problem, table: pd.DataFrame, spec: ReportSpec,
                stored: StoredHistory | None = None) -> dict:
    """Everything the figures draw, computed once; ``stored`` as in :func:`cost_curve_data`."""
    regions = region_data(problem, table, spec)
    return {"data": data_data(problem, table, spec), "regions": regions,
            "frontier_table": frontier_table(regions),
            "distance": distance_data(problem, table),
            "cost": cost_curve_data(problem, table, spec, stored=stored),
            "contour": contour_data(problem, table, spec), "axes": axis_data(table, spec),
            "pareto": pareto_data(table, spec)}
