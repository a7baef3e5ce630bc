"""The report's figures drawn from their plot data (:mod:`study.report.figures`).

Each ``draw_*`` function turns plot data into a matplotlib :class:`~matplotlib.figure.Figure`
with the Agg canvas (no pyplot, no global state), so figures can be inspected through their axes
and artists; :func:`paint` draws one and writes it as PNG. Diverged trials are red ✕ throughout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from study.report.canvas import (
    COLORS,
    MARKERS,
    arrange,
    crowd,
    edge_line,
    epoch_limits,
    legend_columns,
    lr_limits,
    new_figure,
    power_of_ten,
    stacking,
    wrap,
)
from study.report.figures import FIGURES, log_scale
from study.report.regions import REGIONS


def draw_regions(panels: list[dict], dist_tol: float, name: str = "") -> Figure:
    """(a) Region map: lr × epochs (log-log), one panel per facet, shared axes over the
    budgets; the frontier is cut where it dips below the smallest budget."""
    fig, axes = new_figure(len(panels), 6.2, 4.6, ncols=3 if len(panels) > 4 else 2)
    xlim, ylim = lr_limits(panels), epoch_limits(panels)
    for ax, panel in zip(axes, panels, strict=True):
        pts, front = panel["points"], panel["frontier"]
        size, order = crowd(len(pts)), stacking(pts["region"])
        for region in REGIONS:
            sel = pts[pts["region"] == region]
            ax.scatter(sel["lr"], sel["epochs"], marker=MARKERS[region], c=COLORS[region],
                       s=(46 if region == "diverged" else 30) * size, alpha=0.85,
                       linewidths=1.6 * size ** 0.5 if region == "diverged" else 0,
                       label=f"measured: {region}", zorder=order.get(region, 2))
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
        ax.set_title((f"{wrap(panel['title'])}\n" if panel["title"] else "") + ", ".join(
            f"{int(counts.get(r, 0))} {r}" for r in REGIONS)
            + "".join(f"\n{wrap('frontier from the ' + m)}" for m in medians), fontsize=9)
        edge_line(ax, panel["lr_max"])
        ax.grid(True, which="major", alpha=0.3)
    arrange(fig, axes, f"{name + ': ' if name else ''}where gradient descent converges\n"
            f"(converged: ‖θ − θ*‖ ≤ {dist_tol:g} at the end of the epoch budget)",
            legend_columns(fig))
    return fig


def draw_distance(panels: list[dict], dist_tol: float | None = None) -> Figure:
    """(b) log10 ‖θ − θ*‖ over lr × epochs (and lr × start distance when starts vary within
    a panel), one colour scale for all panels; the region is the marker's shape (converged:
    circle ringed in green, not converged: triangle), so it does not rest on a shade."""
    layout = [(p, y) for p in panels for y in (("epochs", "start_distance") if p["starts_vary"]
                                               else ("epochs",))]
    fig, axes = new_figure(len(layout), 5.6, 4.3, ncols=3 if len(layout) > 4 else 2)
    stable = pd.concat([p["points"] for p in panels])
    stable = stable[stable["region"] != "diverged"]["log10_dist"]
    norm = Normalize(float(stable.min()), float(stable.max())) if len(stable) else Normalize()
    tol = f" (‖θ − θ*‖ ≤ {dist_tol:g})" if dist_tol else ""
    for ax, (panel, ycol) in zip(axes, layout, strict=True):
        pts = panel["points"]
        size, order = crowd(len(pts)), stacking(pts["region"])
        for region, style in (("converged", {"marker": "o", "s": 40, "linewidths": 1.4,
                                             "edgecolors": COLORS["converged"]}),
                              ("not converged", {"marker": "v", "s": 38, "linewidths": 0})):
            sel = pts[pts["region"] == region]
            ax.scatter(sel["lr"], sel[ycol], c=sel["log10_dist"], cmap="viridis", norm=norm,
                       label=f"_{region}", zorder=order.get(region, 2),
                       **{**style, "s": style["s"] * size})
            ax.scatter([], [], c="#999999", label=region + (tol if region == "converged"
                                                            else ""), **style)  # legend: shape
        bad = pts[pts["region"] == "diverged"]
        ax.scatter(bad["lr"], bad[ycol], marker="x", c=COLORS["diverged"], s=46 * size,
                   linewidths=1.6 * size ** 0.5, label="diverged",
                   zorder=order.get("diverged", 2))
        ax.set_xscale("log")
        ax.set_xlim(*lr_limits(panels))
        if log_scale(pts[ycol], 1.0):
            ax.set_yscale("log")
        ax.set_xlabel("learning rate lr (log scale)")
        ax.set_ylabel("epoch budget (epochs)" if ycol == "epochs"
                      else "start distance ‖θ₀ − θ*‖ (parameter units)")
        ax.set_title(wrap(panel["title"]), fontsize=9)
        edge_line(ax, panel["lr_max"])
    label = "log10 ‖θ − θ*‖ at the end (parameter units)"
    marked = bool(dist_tol) and norm.vmin is not None \
        and norm.vmin <= math.log10(dist_tol) <= norm.vmax
    if marked:
        label += f"\nred line: converged, ‖θ − θ*‖ ≤ {dist_tol:g}"
    cax = arrange(fig, axes, "How far from the OLS optimum θ* each trial ended",
                  legend_columns(fig), colorbar=True)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap="viridis"), cax=cax, label=label)
    if marked:
        bar.ax.axhline(math.log10(dist_tol), color="red", linewidth=3)
    return fig


def cost_colours(curves: pd.DataFrame) -> dict[Any, Any]:
    """One colour per trial: stable trials by lr rank along viridis, starting past its darkest
    purple (theory's black dashes vanish on it) and stopping short of its yellow (two
    near-yellows read as one), diverged trials red as everywhere."""
    firsts = curves.drop_duplicates("trial").sort_values("lr")
    stable = firsts[firsts["region"] != "diverged"]["trial"].tolist()
    cmap = colormaps["viridis"]
    out = {t: cmap(x) for t, x in zip(stable, np.linspace(0.2, 0.85, max(len(stable), 1)),
                                       strict=False)}
    out.update({t: COLORS["diverged"] for t in firsts[firsts["region"] == "diverged"]["trial"]})
    return out


def draw_cost(curves: pd.DataFrame) -> Figure:
    """(c) (J − J*)/J* against epoch, log-log, one colour per trial (by lr); theory dashed.
    Only positive finite values are drawn, so data at any scale draws."""
    fig, (ax,) = new_figure(1, 7.0, 4.8)
    colours = cost_colours(curves)
    floor = 1e-16
    for trial, c in curves.groupby("trial", sort=False):
        c = c[c["epoch"] >= 1]
        meas = c[np.isfinite(c["measured"]) & (c["measured"] > floor)]
        ax.plot(meas["epoch"], meas["measured"], color=colours[trial], linewidth=1.8,
                label=c["label"].iloc[0] if len(c) else str(trial))
        theo = c[np.isfinite(c["theory"]) & (c["theory"] > floor)]
        ax.plot(theo["epoch"], theo["theory"], color="black", linewidth=0.8, linestyle=(0, (4, 4)))
        if len(meas) and c["region"].iloc[0] == "diverged":
            ax.plot(meas["epoch"].iloc[-1], meas["measured"].iloc[-1], marker="x", ms=10,
                    mew=2, color=COLORS["diverged"])
    if not any(len(line.get_xdata()) for line in ax.get_lines()):
        ax.text(0.5, 0.5, "nothing to draw: the picked trials diverged before epoch 1",
                transform=ax.transAxes, ha="center", va="center")
    ax.plot([], [], color="black", linewidth=0.8, linestyle=(0, (4, 4)),
            label="theory: closed form θ_n = θ* + (iteration map)ⁿ(θ₀ − θ*)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    good = curves[np.isfinite(curves["measured"]) & (curves["measured"] > floor)]
    ok = good[good["region"] != "diverged"]["measured"]
    if len(ok):
        top = min(float(good["measured"].max()), float(ok.max()) * 1e3)
        ax.set_ylim(max(ok.min() / 3, floor), top * 3)
    ax.set_xlabel("epoch (log scale)")
    ax.set_ylabel("relative cost gap (J − J*)/J* (log scale)")
    ax.set_title("Cost against epoch: coloured measured, black dashes theory, red ✕ where a run "
                 "diverged", fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(True, which="major", alpha=0.3)
    arrange(fig, [ax])
    return fig


def draw_contour(data: Mapping[str, Any]) -> Figure:
    """(d) log10(J − J*) over (m, b) on decade-spaced levels (8 decades below the top), GD
    paths, θ*; each path's end a hollow square of its own size around θ*'s star (which hid
    them when drawn over them)."""
    fig, (ax,) = new_figure(1, 7.0, 5.4)
    log_gap = data["log10_gap"]
    finite = log_gap[np.isfinite(log_gap)]
    top = float(finite.max()) if finite.size else 0.0
    low = max(float(finite.min()) if finite.size else top - 8, top - 8)
    levels = np.linspace(low, top + 1e-9 * max(1.0, abs(top)), 25)
    shown = np.clip(np.nan_to_num(log_gap, nan=low, neginf=low, posinf=top), low, top)
    cs = ax.contourf(data["m"], data["b"], shown, levels=levels, cmap="viridis")
    ax.contour(data["m"], data["b"], shown, levels=levels[::3], colors="black", linewidths=0.3,
               alpha=0.5)
    palette = ["#ff7f0e", "#00e5ff", "#e31a1c", "#ff00ff"]
    for i, (start, path) in enumerate(data["paths"].groupby("start", sort=False)):
        colour = palette[i % len(palette)]
        ax.plot(path["m"], path["b"], color=colour, linewidth=1.4, marker=".", ms=3, zorder=4,
                label=f"GD from {start}: ends at ({path['m'].iloc[-1]:.3g}, "
                      f"{path['b'].iloc[-1]:.3g})")
        ax.plot(path["m"].iloc[0], path["b"].iloc[0], "o", color=colour, ms=8, mec="black",
                zorder=5)
        ax.plot(path["m"].iloc[-1], path["b"].iloc[-1], "s", mfc="none", mec=colour,
                ms=15 + 6 * i, mew=2.2, zorder=6)
    _epoch_marks(ax, data["paths"])
    m, b = data["ols"]  # over the ends, which squares around it leave visible
    ax.plot(m, b, "*", color="gold", ms=11, mec="black", zorder=7,
            label=f"OLS θ* = ({m:.4g}, {b:.4g})")
    ax.set_xlabel(f"slope m (units of y per unit of {data['x_name']})")
    ax.set_ylabel("intercept b (units of y)")
    ratio = data["lr"] / data["lr_max"] if math.isfinite(data["lr_max"]) else float("nan")
    ax.set_title(f"Cost surface J(m, b) and gradient-descent paths\n(lr {data['lr']:.3g} = "
                 f"{ratio:.2f}·lr_max, {data['epochs']:,} epochs; ○ start, □ end)", fontsize=10)
    cax = arrange(fig, [ax], legend_ncols=2, colorbar=True)
    bar = fig.colorbar(cs, cax=cax, label=f"J(m, b) − J*  ({data['cost']} cost, log scale)")
    decades = np.arange(math.ceil(low), math.floor(top) + 1)
    bar.set_ticks(decades, labels=[f"1e{d:d}" for d in decades])
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
        ax.annotate(f"epoch {power_of_ten(10.0 ** k)}", tuple(point), xytext=(6, 0),
                    textcoords="offset points",
                    fontsize=8, color="white", va="center")


def _positions(x: np.ndarray, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """x positions of the points: categories at 0, 1, …; a numeric setting with at most 12
    distinct values spread by up to an eighth of the gap between neighbours (in log10 on a log
    axis), so trials at one value do not hide each other. Returns (positions, jittered?)."""
    if kind == "category":
        cats = sorted(set(x))
        return np.array([cats.index(v) for v in x]) + rng.uniform(-0.15, 0.15, len(x)), True
    x = x.astype(float)
    ok = np.isfinite(x) & ((x > 0) if kind == "log" else True)
    values = np.unique(x[ok])
    if not 1 < values.size <= 12:
        return x, False
    t = np.log10(np.where(ok, x, np.nan)) if kind == "log" else x
    u = np.log10(values) if kind == "log" else values
    moved = t + rng.uniform(-0.12, 0.12, len(x)) * float(np.diff(u).min())
    return (10.0 ** moved if kind == "log" else moved), True


def _thousands(value: float, _pos: object = None) -> str:
    """A large count as a short tick label: 200k, 1.5M."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def draw_axes(data: Mapping[str, Any]) -> Figure:
    """(e) The objective against each swept setting; diverged and unreached drawn at the top."""
    panels = data["panels"]
    fig, axes = new_figure(len(panels), 5.6, 4.2, ncols=2 if len(panels) == 4 else 3)
    rng = np.random.default_rng(0)  # jitter of discrete positions, fixed for reproducibility
    for ax, panel in zip(axes, panels, strict=True):
        pts = panel["points"]
        x, jittered = _positions(pts["value"].to_numpy(), panel["kind"], rng)
        if panel["kind"] == "category":
            ax.set_xticks(range(len(set(pts["value"]))), sorted(set(pts["value"])))
        elif jittered and panel["kind"] == "linear":  # ticks at the values tried
            ax.set_xticks(np.unique(pts["value"].to_numpy(float)))
        y = pts["objective"].to_numpy(float)
        good = (pts["region"] != "diverged").to_numpy() & np.isfinite(y)
        ylog = log_scale(y[good]) if good.any() else False
        hi = float(y[good].max()) if good.any() else 1.0
        top = hi * 3 if ylog else hi + 0.1 * (hi - float(y[good].min()) if good.any() else 1)
        size, order = crowd(len(pts)), stacking(pts["region"])
        for region in ("converged", "not converged"):
            sel = good & (pts["region"] == region).to_numpy()
            if sel.any():  # a legend entry only for what the panels show
                ax.scatter(x[sel], y[sel], c=COLORS[region], s=26 * size, alpha=0.7,
                           label=region, zorder=order.get(region, 2))
        unreached = (pts["region"] != "diverged").to_numpy() & ~np.isfinite(y)
        if unreached.any():
            ax.scatter(x[unreached], np.full(unreached.sum(), top), marker="^", s=30,
                       facecolors="none", edgecolors="grey", label="not reached (at top)")
        div = (pts["region"] == "diverged").to_numpy()
        if div.any():
            ax.scatter(x[div], np.full(div.sum(), top), marker="x", c=COLORS["diverged"], s=40,
                       linewidths=1.6, label="diverged (drawn at the top)")
        if panel["kind"] == "log":
            ax.set_xscale("log")
        if ylog:
            ax.set_yscale("log")
        elif hi >= 1e4:  # epoch counts as 200k, not as 0.2 under a "1e6" in the corner
            ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
        ax.set_xlabel(panel["name"] + (" (log scale)" if panel["kind"] == "log" else ""))
        if data.get("threshold") is not None:
            ax.axhline(data["threshold"], color=COLORS["converged"], linestyle=":",
                       label=f"converged below {data['threshold']:g}")
        ax.set_ylabel(data["objective"] + (" (log scale)" if ylog else ""))
        ax.set_title(f"against {panel['name']}"
                     + (" (points spread sideways at each value)" if jittered else ""),
                     fontsize=10)
    arrange(fig, axes, f"{data['objective']} against each swept setting (one point per trial)",
            legend_columns(fig))
    return fig


def draw_pareto(data: Mapping[str, Any]) -> Figure:
    """(f) Two objectives, with the non-dominated trials joined."""
    fig, (ax,) = new_figure(1, 7.0, 5.0)
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
    arrange(fig, [ax])
    return fig


def draw_data(data: Mapping[str, Any]) -> Figure:
    """The data set (or a random sample of it, said in the legend) with the OLS line and where
    two trials ended."""
    fig, (ax,) = new_figure(1, 5.0, 3.8)
    shown, total = len(data["x"]), data.get("n_rows", len(data["x"]))
    ax.scatter(data["x"], data["y"], s=14 if shown <= 2000 else 3, c="#777777",
               alpha=1.0 if shown <= 2000 else 0.3, linewidths=0,
               label="data" if shown == total else
               f"data: {shown:,} of {total:,} rows drawn at random")
    grid = np.array([data["x_range"][0], data["x_range"][1]]) if "x_range" in data \
        else np.linspace(data["x"].min(), data["x"].max(), 2)
    for (label, m, b), style in zip(data["lines"], ("-k", "--g", ":b"), strict=False):
        ax.plot(grid, m * grid + b, style, linewidth=1.8,
                label=f"{label}: y = {m:.4g}·x {'+' if b >= 0 else '−'} {abs(b):.4g}")
    ax.set_xlabel(f"{data['x_name']} (data units)")
    ax.set_ylabel(f"{data['y_name']} (data units)")
    ax.set_title("The data, its least-squares line, and where gradient descent ended",
                 fontsize=10)
    arrange(fig, [ax], legend_ncols=1)
    return fig


def draw_figure(key: str, piece: Any, dist_tol: float, name: str = "") -> Figure | None:
    """Figure ``key`` drawn from its plot data; None when there is nothing to draw (no contour
    or data figure for several features, no cost curves, a single objective)."""
    if key == "regions":
        return draw_regions(piece, dist_tol, name)
    if key == "distance":
        return draw_distance(piece, dist_tol)
    if piece is None or (key == "cost" and not len(piece)):
        return None
    return {"cost": draw_cost, "data": draw_data, "contour": draw_contour, "axes": draw_axes,
            "pareto": draw_pareto}[key](piece)


def draw_all(data: Mapping[str, Any], dist_tol: float, name: str = "") -> dict[str, Figure]:
    """Every figure the data allows, by key, in the report's order."""
    figs = {key: draw_figure(key, data[key], dist_tol, name) for key in FIGURES}
    return {key: fig for key, fig in figs.items() if fig is not None}


def paint(key: str, piece: Any, folder: Path, dist_tol: float, name: str = "") -> Path | None:
    """Figure ``key`` drawn and saved as ``folder/<key>.png``; its path, or None when there is
    nothing to draw."""
    fig = draw_figure(key, piece, dist_tol, name)
    return None if fig is None else save_figure(key, fig, folder)


def save_figure(key: str, fig: Figure, folder: Path) -> Path:
    """Write one figure as ``folder/<key>.png``."""
    path = folder / f"{key}.png"
    fig.savefig(path, dpi=100)
    return path
