"""The report's figures: plot data first (small tidy tables, tested as data), drawing second.

Each ``*_data`` function returns plain pandas/numpy data; each ``draw_*`` function turns it into
a matplotlib :class:`~matplotlib.figure.Figure` with the Agg canvas (no pyplot, no global state),
so figures can be inspected through their axes and artists and saved as PNG.

a. ``regions``: lr × epochs, one marker per trial coloured by region (diverged: red ✕), theory's
   lr_max as a vertical line and the convergence frontier (epochs needed to reach the tolerance);
b. ``distance``: log10 ‖θ − θ*‖ over lr × epochs, and over lr × start distance when starts vary;
c. ``cost``: relative cost gap (J − J*)/J* against epoch, log-log, for a few trials (re-run through
   the engine, which reproduces a logged trial exactly), with theory's curve dashed;
d. ``contour``: J − J* over (m, b) on log-spaced levels, GD paths from a few starts, θ* marked;
e. ``axes``: the primary objective against each swept setting (tuning-playbook axis plots);
f. ``pareto``: the first two objectives and their Pareto front.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from study import engine, report, theory
from study.problem import Problem

COLORS = {"converged": "#1b9e4b", "not converged": "#3b75af", "diverged": "#d62728"}
MARKERS = {"converged": "o", "not converged": "o", "diverged": "x"}
CAPTIONS = {
    "data": "The data set with its least-squares (OLS) line and the final lines of two trials.",
    "regions": "Where gradient descent converges: each trial by learning rate and epoch budget. "
               "Theory's edge of stability (dashed) and its convergence frontier (solid: trials "
               "above the curve should reach the OLS line).",
    "distance": "How far from the OLS line each trial ended (colour: log10 ‖θ − θ*‖).",
    "cost": "Cost curves of representative trials (solid: measured; dashed: theory).",
    "contour": "The cost surface over (m, b) with GD paths: the long, flat valley.",
    "axes": "The objective against each swept setting, one point per trial.",
    "pareto": "Trade-off between the first two objectives; the Pareto front in black.",
}


def log_scale(values: Any, decades: float = 1.5) -> bool:
    """Use a log axis when all values are positive and span at least ``decades``."""
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    v = v[np.isfinite(v)]
    return bool(v.size and v.min() > 0 and np.log10(v.max() / v.min()) >= decades)


# ── plot data ───────────────────────────────────────────────────────────────────────────────


def facets(problem: Problem, table: pd.DataFrame, most_starts: int = 6
           ) -> list[tuple[str, pd.DataFrame, str, bool]]:
    """(title, trials, group label, several starts?) per settings group, split by start when
    there are 2 to ``most_starts`` distinct starts (trials at one (lr, epochs) would hide each
    other). The title is empty for the only group of a study that compares no settings."""
    inits = report.init_columns(problem)
    out = []
    for label, part in report.settings_groups(table):
        name = "" if label == "all trials" else label
        starts = part[inits].drop_duplicates()
        if len(starts) == 1 or len(starts) > most_starts:
            out.append((name, part, label, len(starts) > 1))
            continue
        for start in starts.to_numpy(float):
            one = part[(part[inits].to_numpy(float) == start).all(axis=1)]
            title = f"{name}, start {report.start_text(start)}".lstrip(", ")
            out.append((title, one, label, False))
    return out


def region_data(problem: Problem, table: pd.DataFrame, spec: report.ReportSpec) -> list[dict]:
    """One panel per facet: trial points, lr_max and theory's frontier from the facet's start
    (or the median start)."""
    panels = []
    for title, part, group, _ in facets(problem, table):
        settings = report.group_settings(part, spec.settings)
        edge = float(part["lr_max"].iloc[0])
        starts = report.representative_starts(part, problem, most=1)
        front = report.frontier(problem, settings, starts, report.frontier_lrs(part, edge),
                                spec.dist_tol, int(part["epochs"].max()))
        points = part[["lr", "epochs", "region", "agrees"]].reset_index(drop=True)
        panels.append({"title": title, "group": group,
                       "points": points, "lr_max": edge, "frontier": front})
    return panels


def frontier_table(panels: list[dict], rows: int = 8) -> pd.DataFrame:
    """A few points of each frontier curve, for the document."""
    out = []
    for panel in panels:
        for _, curve in panel["frontier"].groupby("start", sort=False):
            pick = curve.iloc[np.unique(np.linspace(0, len(curve) - 1, rows).round().astype(int))]
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


def cost_curve_data(problem: Problem, table: pd.DataFrame, spec: report.ReportSpec,
                    n: int = 7) -> pd.DataFrame:
    """Measured and predicted (J − J*)/J* at the engine's checkpoints for representative trials.
    Columns: trial, lr, region, label, epoch, measured, theory."""
    picks = pick_cost_trials(table, n)
    cols = report.setting_columns(table)
    trials, rows = [], []
    for _, row in picks.iterrows():
        settings = report.trial_settings(spec.settings, row.to_dict(), cols)
        init = tuple(row[report.init_columns(problem)].to_numpy(float))
        seed = int(row["seed"]) if "seed" in row and pd.notna(row["seed"]) else None
        trials.append(engine.Trial(float(row["lr"]), int(row["epochs"]), init, settings, seed))
    for (_, row), trial, res in zip(picks.iterrows(), trials, engine.run(problem, trials),
                                    strict=True):
        j_star = problem.ols_cost(trial.settings.cost)
        den = j_star if j_star > 0 else 1.0
        measured = (res.history_cost - j_star) / den
        predicted = np.full(measured.shape, np.nan)
        if trial.settings.optimizer != "line_search":
            with np.errstate(all="ignore"):
                path = theory.trajectory(problem, trial.settings, trial.lr, trial.init,
                                         res.history_epoch)
                predicted = (np.atleast_1d(problem.cost(path, trial.settings.cost)) - j_star) / den
        label = ", ".join([f"lr {report.fmt(trial.lr, 3)}",
                           *(f"{c}={row[c]}" for c in report.group_columns(table)),
                           *([f"start {report.start_text(trial.init)}"] if problem.d == 1
                             else []), str(row["region"])])
        rows.append(pd.DataFrame({"trial": row.get("trial", _), "lr": trial.lr,
                                  "region": row["region"], "label": label,
                                  "epoch": res.history_epoch, "measured": measured,
                                  "theory": predicted}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def contour_data(problem: Problem, table: pd.DataFrame, spec: report.ReportSpec,
                 size: int = 240) -> dict | None:
    """J − J* on a grid over (m, b) around θ* and GD paths from 3 starts (nearest, middle and
    farthest from θ*; one feature).
    The paths use the largest lr tried up to 0.8·lr_max (closer to the edge the steep direction
    zigzags for thousands of epochs and hides the valley) and the longest budget."""
    if problem.d != 1:
        return None
    label, part = report.settings_groups(table)[0]
    settings = report.group_settings(part, spec.settings)
    calm = part[(part["region"] != "diverged") & (part["lr"] <= 0.8 * part["lr_max"])]
    lr = float(calm["lr"].max()) if len(calm) else 0.5 * theory.best_lr(problem, settings)
    epochs = int(part["epochs"].max())
    inits = report.init_columns(problem)
    distinct = part.drop_duplicates(inits).sort_values("start_distance")
    rows = distinct.iloc[np.unique(np.linspace(0, len(distinct) - 1, 3).round().astype(int))]
    starts = [tuple(map(float, r)) for r in rows[inits].to_numpy(float)]
    runs = engine.run(problem, [engine.Trial(lr, epochs, s, engine.replace(
        settings, record_path=True)) for s in starts])
    paths = pd.concat([pd.DataFrame({"start": report.start_text(s), "epoch": r.history_epoch,
                                     "m": r.history_theta[:, 0], "b": r.history_theta[:, 1]})
                       for s, r in zip(starts, runs, strict=True)], ignore_index=True)
    paths = paths[np.isfinite(paths[["m", "b"]]).all(axis=1)]
    star = problem.ols_theta
    pts = np.vstack([paths[["m", "b"]].to_numpy(), np.array(starts), star[None, :]])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = np.maximum(0.15 * (hi - lo), 1e-3 * (1 + np.abs(star)))
    m = np.linspace(lo[0] - pad[0], hi[0] + pad[0], size)
    b = np.linspace(lo[1] - pad[1], hi[1] + pad[1], size)
    mm, bb = np.meshgrid(m, b)
    gap = problem.cost(np.column_stack([mm.ravel(), bb.ravel()]), settings.cost) - \
        problem.ols_cost(settings.cost)
    return {"m": m, "b": b, "gap": np.maximum(gap.reshape(mm.shape), 0.0), "paths": paths,
            "ols": (float(star[0]), float(star[1])), "lr": lr, "epochs": epochs,
            "cost": settings.cost, "x_name": problem.x_names[0], "group": label,
            "lr_max": theory.lr_max(problem, settings)}


def data_data(problem: Problem, table: pd.DataFrame) -> dict | None:
    """The points, the OLS line and the final lines of two trials (one feature): the best
    non-diverged trial, and the trial that ran out of epochs farthest from θ* while its cost
    was within 10% of J* (the valley: a line that looks fitted, with the wrong (m, b))."""
    if problem.d != 1:
        return None
    lines = [("OLS line", *map(float, problem.ols_theta))]
    ok = table[table["region"] != "diverged"].sort_values("dist_to_ols")
    stuck = ok[ok["region"] == "not converged"]
    if "rel_cost_gap" in stuck.columns and (stuck["rel_cost_gap"] <= 0.1).any():
        stuck = stuck[stuck["rel_cost_gap"] <= 0.1]
    for title, rows in (("best trial", ok.head(1)), ("ran out of epochs", stuck.tail(1))):
        for _, t in rows.iterrows():
            gap = (f", cost {float(t['rel_cost_gap']):.1%} above J*"
                   if pd.notna(t.get("rel_cost_gap")) else "")
            lines.append((f"{title} (lr {report.fmt(float(t['lr']), 3)}, "
                          f"{report.fmt(int(t['epochs']))} epochs{gap})",
                          float(t["final_m"]), float(t["final_b"])))
    return {"x": problem.X[:, 0], "y": problem.y, "x_name": problem.x_names[0],
            "y_name": problem.y_name, "lines": lines}


def swept_names(table: pd.DataFrame, spec: report.ReportSpec) -> list[str]:
    """Swept space entries present in the table (inferred from varying columns if unknown)."""
    names = [n for n in spec.swept if n in table.columns]
    if not spec.swept:
        names = [c for c in table.columns if (c in ("lr", "epochs") or c.startswith("init_"))
                 and table[c].nunique() > 1]
    return names + [c for c in report.group_columns(table) if c not in names]


def axis_data(table: pd.DataFrame, spec: report.ReportSpec) -> dict | None:
    """Per swept setting: (value, objective, region) of every trial, and the axis kind."""
    obj = next((o for o in spec.objectives if o.column in table.columns),
               report.Objective("dist_to_ols", "minimize"))
    names = swept_names(table, spec)
    if not names:
        return None
    panels = []
    for name in names:
        values = table[name]
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        kind = ("log" if name in spec.log_scaled or name == "lr" or log_scale(values)
                else "linear") \
            if numeric else "category"
        panels.append({"name": name, "kind": kind, "points": pd.DataFrame({
            "value": values.to_numpy() if numeric else values.astype(str).to_numpy(),
            "objective": pd.to_numeric(table[obj.column], errors="coerce").to_numpy(float),
            "region": table["region"].to_numpy()})})
    return {"objective": obj.title, "panels": panels,
            "threshold": spec.dist_tol if obj.column == "dist_to_ols" else None}


def pareto_data(table: pd.DataFrame, spec: report.ReportSpec) -> dict | None:
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


def figure_data(problem: Problem, table: pd.DataFrame, spec: report.ReportSpec) -> dict:
    """Everything the figures draw, computed once."""
    regions = region_data(problem, table, spec)
    return {"data": data_data(problem, table), "regions": regions,
            "frontier_table": frontier_table(regions),
            "distance": distance_data(problem, table),
            "cost": cost_curve_data(problem, table, spec),
            "contour": contour_data(problem, table, spec), "axes": axis_data(table, spec),
            "pareto": pareto_data(table, spec)}


# ── drawing ─────────────────────────────────────────────────────────────────────────────────


def _figure(n_panels: int, width: float = 7.0, height: float = 4.8, ncols: int = 2
            ) -> tuple[Figure, list]:
    ncols = min(ncols, n_panels)
    nrows = math.ceil(n_panels / ncols)
    if n_panels == 1:  # room for the titles and the legend below
        width, height = width * 1.4, height * 1.2
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes[:n_panels])


def _edge_line(ax, edge: float) -> None:
    """Theory's edge of stability as a dashed vertical line, its value written along it (call
    after the x limits are set; an edge off the plot is only named in the title)."""
    lo, hi = ax.get_xlim()
    if not math.isfinite(edge):
        ax.set_title(ax.get_title() + "\n(no edge: line search picks its own step)", fontsize=9)
    elif not lo < edge < hi:
        ax.set_title(ax.get_title() + f"\n(lr_max = {edge:.4g}, off the plot)", fontsize=9)
    else:
        ax.axvline(edge, color="black", linestyle="--", linewidth=1.2,
                   label="theory: edge of stability lr_max")
        ax.annotate(f"lr_max = {edge:.4g}", xy=(edge, 0.97), xycoords=ax.get_xaxis_transform(),
                    xytext=(-4, 0), textcoords="offset points", rotation=90, ha="right",
                    va="top", fontsize=8, bbox={"facecolor": "white", "edgecolor": "none",
                                                "alpha": 0.8, "pad": 1})


def _wrap(title: str, width: int = 48) -> str:
    return textwrap.fill(title, width, break_on_hyphens=False)


def _figure_legend(fig: Figure, axes: list) -> None:
    """One legend below all panels, from the labelled artists of every panel."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    if seen:
        wide = fig.get_figwidth() >= 11
        fig.legend(list(seen.values()), list(seen), loc="outside lower center",
                   ncols=min(3 if wide else 2, len(seen)), fontsize=8, frameon=False)


def _padded(lo: float, hi: float, log: bool, pad: float = 0.08) -> tuple[float, float]:
    if log:
        lo, hi = math.log10(lo), math.log10(hi)
    span = (hi - lo) or (abs(hi) or 1.0)
    lo, hi = lo - pad * span, hi + pad * span
    return (10 ** lo, 10 ** hi) if log else (lo, hi)


def _lr_limits(panels: list[dict]) -> tuple[float, float]:
    """One lr range for all panels: every lr tried, and lr_max when it is near them."""
    lrs = np.concatenate([p["points"]["lr"].to_numpy(float) for p in panels])
    lo, hi = float(lrs.min()), float(lrs.max())
    for edge in (p["lr_max"] for p in panels):
        if math.isfinite(edge) and lo / 10 < edge < hi * 10:
            lo, hi = min(lo, edge), max(hi, edge)
    return _padded(lo, hi, True)


def _epoch_limits(panels: list[dict]) -> tuple[float, float]:
    """One epoch range for all panels: the budgets, and down/up to the fewest epochs theory
    says convergence needs (at most 1000× the largest budget)."""
    pts = pd.concat([p["points"] for p in panels])
    low, high = float(pts["epochs"].min()), float(pts["epochs"].max())
    need = pd.concat([p["frontier"]["epochs_needed"] for p in panels]).dropna()
    if len(need):
        low = min(low, max(float(need.min()), 1.0))
        fewest = [float(p["frontier"]["epochs_needed"].min()) for p in panels
                  if p["frontier"]["epochs_needed"].notna().any()]
        high = max(high, min(4 * max(fewest), 1000 * high))
    return low / 2, high * 2




def draw_regions(panels: list[dict], dist_tol: float, name: str = "") -> Figure:
    """(a) Region map: lr × epochs (log-log), one panel per facet, shared axes. The epoch axis
    reaches the fewest epochs theory says convergence needs, so the frontier shows how far the
    budgets fell short."""
    fig, axes = _figure(len(panels), 6.2, 4.6, ncols=3 if len(panels) > 4 else 2)
    xlim, ylim = _lr_limits(panels), _epoch_limits(panels)
    for ax, panel in zip(axes, panels, strict=True):
        pts, front = panel["points"], panel["frontier"]
        for region in report.REGIONS:
            sel = pts[pts["region"] == region]
            ax.scatter(sel["lr"], sel["epochs"], marker=MARKERS[region], c=COLORS[region],
                       s=46 if region == "diverged" else 30, alpha=0.85, linewidths=1.6
                       if region == "diverged" else 0, label=f"measured: {region}")
        odd = pts[pts["agrees"].eq(False).fillna(False).astype(bool)]
        if len(odd):
            ax.scatter(odd["lr"], odd["epochs"], s=120, facecolors="none", edgecolors="black",
                       linewidths=0.9, label="measured ≠ theory's prediction")
        medians = []
        for start, curve in front.groupby("start", sort=False):
            if start.startswith("median"):
                medians.append(start)
            ax.plot(curve["lr"], curve["epochs_needed"], color="#555555", linewidth=1.8,
                    label="theory: epochs needed to converge from the "
                          + ("median start" if medians else "panel's start"))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_xlabel("learning rate lr (log scale)")
        ax.set_ylabel("epoch budget (epochs, log scale)")
        counts = pts["region"].value_counts()
        ax.set_title((f"{_wrap(panel['title'])}\n" if panel["title"] else "") + ", ".join(
            f"{int(counts.get(r, 0))} {r}" for r in report.REGIONS)
            + "".join(f"\n{_wrap('frontier from the ' + m)}" for m in medians), fontsize=9)
        _edge_line(ax, panel["lr_max"])
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(f"{name + ': ' if name else ''}where gradient descent converges\n"
                 f"(converged: ‖θ − θ*‖ ≤ {dist_tol:g} at the end of the epoch budget)")
    _figure_legend(fig, axes)
    return fig


def draw_distance(panels: list[dict], dist_tol: float | None = None) -> Figure:
    """(b) log10 ‖θ − θ*‖ over lr × epochs (and lr × start distance when starts vary within
    a panel), one colour scale for all panels."""
    layout = [(p, y) for p in panels for y in (("epochs", "start_distance") if p["starts_vary"]
                                               else ("epochs",))]
    fig, axes = _figure(len(layout), 5.6, 4.3, ncols=3 if len(layout) > 4 else 2)
    stable = pd.concat([p["points"] for p in panels])
    stable = stable[stable["region"] != "diverged"]["log10_dist"]
    norm = Normalize(float(stable.min()), float(stable.max())) if len(stable) else Normalize()
    for ax, (panel, ycol) in zip(axes, layout, strict=True):
        pts = panel["points"]
        ok, bad = pts[pts["region"] != "diverged"], pts[pts["region"] == "diverged"]
        ax.scatter(ok["lr"], ok[ycol], c=ok["log10_dist"], cmap="viridis", norm=norm, s=34)
        ax.scatter(bad["lr"], bad[ycol], marker="x", c=COLORS["diverged"], s=46, linewidths=1.6,
                   label="diverged")
        ax.set_xscale("log")
        ax.set_xlim(*_lr_limits(panels))
        if log_scale(pts[ycol], 1.0):
            ax.set_yscale("log")
        ax.set_xlabel("learning rate lr (log scale)")
        ax.set_ylabel("epoch budget (epochs)" if ycol == "epochs"
                      else "start distance ‖θ₀ − θ*‖ (parameter units)")
        ax.set_title(_wrap(panel["title"]), fontsize=9)
        _edge_line(ax, panel["lr_max"])
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap="viridis"), ax=axes, shrink=0.8,
                       label="log10 ‖θ − θ*‖ at the end (parameter units)")
    if dist_tol and norm.vmin is not None and norm.vmin < math.log10(dist_tol) < norm.vmax:
        bar.ax.axhline(math.log10(dist_tol), color="red", linewidth=2)
        bar.ax.text(-0.15, math.log10(dist_tol), f"converged\nbelow {dist_tol:g}", color="red",
                    ha="right", va="center", fontsize=8, transform=bar.ax.get_yaxis_transform())
    fig.suptitle("How far from the OLS optimum θ* each trial ended")
    _figure_legend(fig, axes)
    return fig


def draw_cost(curves: pd.DataFrame) -> Figure:
    """(c) (J − J*)/J* against epoch, log-log, coloured by lr; theory dashed."""
    fig, (ax,) = _figure(1, 7.0, 4.8)
    norm = LogNorm(curves["lr"].min(), curves["lr"].max()) if curves["lr"].nunique() > 1 \
        else Normalize(curves["lr"].min() * 0.9, curves["lr"].max() * 1.1)
    cmap = colormaps["viridis"]
    floor = 1e-16
    for _, c in curves.groupby("trial", sort=False):
        c = c[c["epoch"] >= 1]
        colour = cmap(norm(c["lr"].iloc[0]))
        meas = c[c["measured"] > floor]
        ax.plot(meas["epoch"], meas["measured"], color=colour, linewidth=1.8,
                label=c["label"].iloc[0])
        theo = c[c["theory"] > floor]
        ax.plot(theo["epoch"], theo["theory"], color="black", linewidth=0.8, linestyle=(0, (4, 4)))
        if c["region"].iloc[0] == "diverged" and len(meas):
            ax.plot(meas["epoch"].iloc[-1], meas["measured"].iloc[-1], marker="x", ms=10,
                    mew=2, color=COLORS["diverged"])
    ax.plot([], [], color="black", linewidth=0.8, linestyle=(0, (4, 4)),
            label="theory: closed form θ_n = θ* + (iteration map)ⁿ(θ₀ − θ*)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ok = curves[(curves["region"] != "diverged") & (curves["measured"] > floor)]["measured"]
    if len(ok):
        top = min(float(curves["measured"].max()), float(ok.max()) * 1e3)
        ax.set_ylim(max(ok.min() / 3, floor), top * 3)
    ax.set_xlabel("epoch (log scale)")
    ax.set_ylabel("relative cost gap (J − J*)/J* (log scale)")
    ax.set_title("Cost against epoch: coloured measured, black dashes theory, ✕ where a run "
                 "diverged", fontsize=10)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="learning rate lr")
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(True, which="major", alpha=0.3)
    return fig


def draw_contour(data: Mapping[str, Any]) -> Figure:
    """(d) J − J* over (m, b), log-spaced levels, GD paths and θ*."""
    fig, (ax,) = _figure(1, 7.0, 5.4)
    gap = data["gap"]
    top = float(gap.max())
    low = max(float(gap[gap > 0].min()) if np.any(gap > 0) else top * 1e-8, top * 1e-8)
    levels = np.geomspace(low, top, 25)
    cs = ax.contourf(data["m"], data["b"], np.maximum(gap, low), levels=levels, norm=LogNorm(),
                     cmap="viridis")
    ax.contour(data["m"], data["b"], gap, levels=levels[::3], colors="black", linewidths=0.3,
               alpha=0.5)
    bar = fig.colorbar(cs, ax=ax, label=f"J(m, b) − J*  ({data['cost']} cost, log scale)")
    decades = np.arange(math.ceil(math.log10(low)), math.floor(math.log10(top)) + 1)
    bar.set_ticks(10.0 ** decades, labels=[f"1e{d:d}" for d in decades])
    palette = ["#ff7f0e", "#00e5ff", "#e31a1c", "#ff00ff"]
    for i, (start, path) in enumerate(data["paths"].groupby("start", sort=False)):
        colour = palette[i % len(palette)]
        ax.plot(path["m"], path["b"], color=colour, linewidth=1.4, marker=".", ms=3,
                label=f"GD from {start}: ends at ({path['m'].iloc[-1]:.3g}, "
                      f"{path['b'].iloc[-1]:.3g})")
        ax.plot(path["m"].iloc[0], path["b"].iloc[0], "o", color=colour, ms=8, mec="black")
        ax.plot(path["m"].iloc[-1], path["b"].iloc[-1], "s", color=colour, ms=7, mec="black")
    _epoch_marks(ax, data["paths"])
    m, b = data["ols"]
    ax.plot(m, b, "*", color="gold", ms=18, mec="black", label=f"OLS θ* = ({m:.4g}, {b:.4g})")
    ax.set_xlabel(f"slope m (units of y per unit of {data['x_name']})")
    ax.set_ylabel("intercept b (units of y)")
    ratio = data["lr"] / data["lr_max"] if math.isfinite(data["lr_max"]) else float("nan")
    ax.set_title(f"Cost surface J(m, b) and gradient-descent paths\n(lr {data['lr']:.3g} = "
                 f"{ratio:.2f}·lr_max, {data['epochs']:,} epochs; ○ start, □ end)", fontsize=10)
    fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return fig


def _epoch_marks(ax, paths: pd.DataFrame) -> None:
    """Label where the longest path is after 10, 100, 1000, … epochs: how slowly GD crawls
    along the valley."""
    if not len(paths):
        return
    travel = paths.groupby("start", sort=False).apply(
        lambda p: float(np.hypot(p["m"].diff(), p["b"].diff()).sum()), include_groups=False)
    path = paths[paths["start"] == travel.idxmax()]
    span = np.array([np.diff(ax.get_xlim())[0], np.diff(ax.get_ylim())[0]])
    last = None
    for k in range(1, int(np.log10(max(path["epoch"].max(), 1))) + 1):
        at = path[path["epoch"] >= 10 ** k]
        if not len(at):
            continue
        point = np.array([at["m"].iloc[0], at["b"].iloc[0]])
        if last is not None and np.all(np.abs(point - last) < 0.04 * span):
            continue  # too close to the previous label to read
        last = point
        ax.plot(*point, "o", color="white", ms=4, mec="black")
        ax.annotate(f"epoch $10^{k}$", tuple(point), xytext=(6, 0), textcoords="offset points",
                    fontsize=8, color="white", va="center")


def draw_axes(data: Mapping[str, Any]) -> Figure:
    """(e) The objective against each swept setting; diverged and unreached drawn at the top."""
    panels = data["panels"]
    fig, axes = _figure(len(panels), 5.6, 4.2, ncols=2 if len(panels) == 4 else 3)
    rng = np.random.default_rng(0)  # jitter of categorical positions, fixed for reproducibility
    for ax, panel in zip(axes, panels, strict=True):
        pts = panel["points"]
        x = pts["value"].to_numpy()
        if panel["kind"] == "category":
            cats = sorted(set(x))
            x = np.array([cats.index(v) for v in x]) + rng.uniform(-0.15, 0.15, len(x))
            ax.set_xticks(range(len(cats)), cats)
        y = pts["objective"].to_numpy(float)
        good = (pts["region"] != "diverged").to_numpy() & np.isfinite(y)
        ylog = log_scale(y[good]) if good.any() else False
        hi = float(y[good].max()) if good.any() else 1.0
        top = hi * 3 if ylog else hi + 0.1 * (hi - float(y[good].min()) if good.any() else 1)
        for region in ("converged", "not converged"):
            sel = good & (pts["region"] == region).to_numpy()
            ax.scatter(x[sel], y[sel], c=COLORS[region], s=26, alpha=0.8, label=region)
        unreached = (pts["region"] != "diverged").to_numpy() & ~np.isfinite(y)
        if unreached.any():
            ax.scatter(x[unreached], np.full(unreached.sum(), top), marker="^", s=30,
                       facecolors="none", edgecolors="grey", label="not reached (at top)")
        div = (pts["region"] == "diverged").to_numpy()
        ax.scatter(x[div], np.full(div.sum(), top), marker="x", c=COLORS["diverged"], s=40,
                   linewidths=1.6, label="diverged (drawn at the top)")
        if panel["kind"] == "log":
            ax.set_xscale("log")
        if ylog:
            ax.set_yscale("log")
        ax.set_xlabel(panel["name"] + (" (log scale)" if panel["kind"] == "log" else ""))
        if data.get("threshold") is not None:
            ax.axhline(data["threshold"], color=COLORS["converged"], linestyle=":",
                       label=f"converged below {data['threshold']:g}")
        ax.set_ylabel(data["objective"] + (" (log scale)" if ylog else ""))
        ax.set_title(f"against {panel['name']}", fontsize=10)
    fig.suptitle(f"{data['objective']} against each swept setting (one point per trial)")
    _figure_legend(fig, axes)
    return fig


def draw_pareto(data: Mapping[str, Any]) -> Figure:
    """(f) Two objectives, with the non-dominated trials joined."""
    fig, (ax,) = _figure(1, 7.0, 5.0)
    pts = data["points"]
    note = f"; {data['left_out']} without both values left out" if data.get("left_out") else ""
    ax.scatter(pts["x"], pts["y"], c="#bbbbbb", s=22, label=f"trials (not diverged{note})")
    front = pts[pts["front"]].sort_values("x")
    ax.plot(front["x"], front["y"], "o-", color="black", ms=5, label=f"Pareto front "
                                                                     f"({len(front)})")
    if log_scale(pts["x"]):
        ax.set_xscale("log")
    if log_scale(pts["y"]):
        ax.set_yscale("log")
    ax.set_xlabel(data["x"])
    ax.set_ylabel(data["y"])
    ax.set_title(f"Trade-off: {data['y']} against {data['x']}")
    ax.legend(fontsize=8)
    return fig


def draw_data(data: Mapping[str, Any]) -> Figure:
    """The data set with the OLS line and where two trials ended."""
    fig, (ax,) = _figure(1, 5.0, 3.8)
    ax.scatter(data["x"], data["y"], s=14, c="#777777", label="data")
    grid = np.linspace(data["x"].min(), data["x"].max(), 2)
    for (label, m, b), style in zip(data["lines"], ("-k", "--g", ":b"), strict=False):
        ax.plot(grid, m * grid + b, style, linewidth=1.8,
                label=f"{label}: y = {m:.4g}·x {'+' if b >= 0 else '−'} {abs(b):.4g}")
    ax.set_xlabel(f"{data['x_name']} (data units)")
    ax.set_ylabel(f"{data['y_name']} (data units)")
    ax.set_title("The data, its least-squares line, and where gradient descent ended",
                 fontsize=10)
    fig.legend(loc="outside lower center", ncols=1, fontsize=8, frameon=False)
    return fig


def draw_all(data: Mapping[str, Any], dist_tol: float, name: str = "") -> dict[str, Figure]:
    """Every figure the data allows, by key."""
    figs = {"regions": draw_regions(data["regions"], dist_tol, name),
            "distance": draw_distance(data["distance"], dist_tol)}
    if len(data["cost"]):
        figs["cost"] = draw_cost(data["cost"])
    for key, draw in (("data", draw_data), ("contour", draw_contour), ("axes", draw_axes),
                      ("pareto", draw_pareto)):
        if data[key] is not None:
            figs[key] = draw(data[key])
    return figs


def save_figures(data: Mapping[str, Any], folder: Path, dist_tol: float, name: str = ""
                 ) -> dict[str, tuple[Path, str]]:
    """Draw and save every figure as ``folder/<key>.png``; returns {key: (path, caption)}."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for key, fig in draw_all(data, dist_tol, name).items():
        path = folder / f"{key}.png"
        fig.savefig(path, dpi=100)
        out[key] = (path, CAPTIONS[key])
    return out
