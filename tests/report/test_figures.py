"""The report's figures: plot data checked as data (:mod:`study.report.figures`), drawings checked
through their matplotlib objects, axes and artists (:mod:`study.report.drawing`, :mod:`study.report.canvas`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from study.core import engine
from study.report import canvas, drawing, figures, regions
from study.report.spec import Objective, ReportSpec


def _scatter_points(ax, prefix: str) -> int:
    return sum(len(c.get_offsets()) for c in ax.collections
               if str(c.get_label()).startswith(prefix))


def test_region_map(valley_table, valley):
    table, sp = valley_table
    data = figures.region_data(valley, table, sp)
    assert len(data) == 2  # one panel per start
    assert sum(len(p["points"]) for p in data) == len(table)
    fig = drawing.draw_regions(data, sp.dist_tol, sp.name)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2
    for ax, panel in zip(axes, data, strict=True):
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        assert "learning rate" in ax.get_xlabel() and "epoch" in ax.get_ylabel()
        assert _scatter_points(ax, "measured: ") == len(panel["points"])
        diverged = next(c for c in ax.collections if c.get_label() == "measured: diverged")
        assert len(diverged.get_offsets()) == (panel["points"]["region"] == "diverged").sum()
        edges = [ln for ln in ax.get_lines() if ln.get_label().startswith("theory: edge")]
        assert len(edges) == 1 and edges[0].get_xdata()[0] == pytest.approx(panel["lr_max"])
        fronts = [ln for ln in ax.get_lines() if "epochs needed" in ln.get_label()]
        assert len(fronts) == 1 and len(fronts[0].get_xdata()) == len(panel["frontier"]) > 10
    assert fig.legends and fig.get_suptitle()


def test_distance_map(valley_table, valley):
    table, _ = valley_table
    data = figures.distance_data(valley, table)
    fig = drawing.draw_distance(data, 0.01)
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_xlabel()]
    assert len(axes) == 2
    stable = [c for ax in axes for c in ax.collections if c.get_array() is not None
              and len(c.get_offsets())]
    assert sum(len(c.get_offsets()) for c in stable) == (table["region"] != "diverged").sum()
    assert any("log10" in ax.get_ylabel() for ax in fig.axes)  # the colour bar
    np.testing.assert_allclose(pd.concat([p["points"] for p in data])["log10_dist"].sort_values(),
                               np.log10(table["dist_to_ols"]).sort_values())


def test_distance_map_over_start_distance_when_starts_vary(valley, engine_frame, report_spec):
    rng = np.random.default_rng(0)
    starts = rng.uniform(-5, 5, (8, 2))
    frame, _, _ = engine_frame(valley, engine.Settings(), [1e-4, 1e-3], (500,), starts)
    table = regions.trials_table(valley, frame, report_spec())
    data = figures.distance_data(valley, table)
    assert len(data) == 1 and data[0]["starts_vary"]
    fig = drawing.draw_distance(data)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert any("start distance" in label for label in labels)


def test_cost_curves(valley_table, valley):
    table, sp = valley_table
    picks = figures.pick_cost_trials(table)
    assert 3 <= len(picks) <= 7 and (picks["region"] == "diverged").sum() == 1
    curves = figures.cost_curve_data(valley, table, sp)
    assert curves["trial"].nunique() == len(picks)
    ok = curves[curves["region"] != "diverged"]
    # the engine and the closed form agree on every checkpoint of a stable trial
    np.testing.assert_allclose(ok["theory"], ok["measured"], rtol=1e-6, atol=1e-12)
    fig = drawing.draw_cost(curves)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    measured = [ln for ln in ax.get_lines() if ln.get_label().startswith("lr ")]
    assert len(measured) == len(picks)
    assert "epoch" in ax.get_xlabel() and "J*" in ax.get_ylabel()


def test_contour_shows_valley_paths_and_ols(valley_table, valley):
    table, sp = valley_table
    data = figures.contour_data(valley, table, sp)
    star = valley.ols_theta
    assert data["m"][0] < star[0] < data["m"][-1] and data["b"][0] < star[1] < data["b"][-1]
    for start in ((0.0, 0.0), (3.0, -5.0)):  # every start inside the picture
        assert data["m"][0] < start[0] < data["m"][-1]
        assert data["b"][0] < start[1] < data["b"][-1]
    assert data["gap"].min() >= 0 and data["gap"].max() / data["gap"][data["gap"] > 0].min() > 1e3
    assert data["paths"]["start"].nunique() == 2
    fig = drawing.draw_contour(data)
    ax = fig.axes[0]
    assert "slope m" in ax.get_xlabel() and "intercept b" in ax.get_ylabel()
    ols = [ln for ln in ax.get_lines() if ln.get_label().startswith("OLS")]
    assert len(ols) == 1 and ols[0].get_xdata()[0] == pytest.approx(star[0])
    paths = [ln for ln in ax.get_lines() if ln.get_label().startswith("GD from")]
    assert len(paths) == 2
    bar = fig.axes[1]
    assert bar.get_yscale() == "log"  # log-spaced levels


def test_data_figure_shows_ols_and_where_trials_ended(valley_table, valley):
    table, _ = valley_table
    data = figures.data_data(valley, table)
    assert data["lines"][0][1:] == tuple(valley.ols_theta)
    best = table[table["region"] != "diverged"].sort_values("dist_to_ols").iloc[0]
    assert data["lines"][1][1:] == (best["final_m"], best["final_b"])
    fig = drawing.draw_data(data)
    ax = fig.axes[0]
    assert len(ax.collections[0].get_offsets()) == valley.n
    assert len(ax.get_lines()) == len(data["lines"]) and "data units" in ax.get_xlabel()


def test_contour_only_for_one_feature(multivariate, engine_frame, report_spec):
    frame, _, _ = engine_frame(multivariate, engine.Settings(), [0.01], (50,), [(0, 0, 0, 0)])
    table = regions.trials_table(multivariate, frame, report_spec())
    assert figures.contour_data(multivariate, table, report_spec()) is None
    assert figures.data_data(multivariate, table) is None


def test_axis_plots_one_per_swept_setting(valley_table):
    table, sp = valley_table
    data = figures.axis_data(table, sp)
    assert [p["name"] for p in data["panels"]] == ["lr", "epochs", "init_m", "init_b"]
    assert data["panels"][0]["kind"] == "log"
    fig = drawing.draw_axes(data)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 4
    n_div = int((table["region"] == "diverged").sum())
    for ax in axes:
        red = [c for c in ax.collections if c.get_label().startswith("diverged")]
        assert len(red[0].get_offsets()) == n_div
        assert ax.get_ylabel().startswith("distance to OLS")
    assert axes[0].get_xscale() == "log"


def test_axis_plot_of_a_categorical_setting(update_groups):
    data = figures.axis_data(update_groups, ReportSpec("t", swept=("lr", "update")))
    kinds = {p["name"]: p["kind"] for p in data["panels"]}
    assert kinds == {"lr": "log", "update": "category"}
    fig = drawing.draw_axes(data)
    ax = next(a for a in fig.axes if a.get_xlabel() == "update")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["sequential", "simultaneous"]


def test_pareto_front_as_data():
    table = pd.DataFrame({"region": ["converged"] * 4 + ["diverged"],
                          "a": [1.0, 2.0, 3.0, 2.5, 0.0], "b": [3.0, 1.0, 0.5, 2.0, 0.0]})
    sp = ReportSpec("t", objectives=(Objective("a"), Objective("b")))
    data = figures.pareto_data(table, sp)
    assert list(data["points"]["front"]) == [True, True, True, False]  # diverged left out
    fig = drawing.draw_pareto(data)
    front = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("Pareto")]
    assert len(front[0].get_xdata()) == 3
    assert figures.pareto_data(table, ReportSpec("t", objectives=sp.objectives[:1])) \
        is None


def test_shared_ranges_reach_the_frontier_and_the_edge():
    points = pd.DataFrame({"lr": [1e-4, 1e-3], "epochs": [100, 1000]})
    frontier = pd.DataFrame({"epochs_needed": [50.0, 5000.0, np.nan]})
    assert canvas.epoch_limits([{"points": points, "frontier": frontier}]) == (25.0, 2000.0)
    unreached = frontier.assign(epochs_needed=np.nan)
    assert canvas.epoch_limits([{"points": points, "frontier": unreached}]) == (50.0, 2000.0)
    lo, hi = canvas.lr_limits([{"points": points, "lr_max": 4e-3}])
    assert lo < 1e-4 and 4e-3 < hi < 1e-2
    lo, hi = canvas.lr_limits([{"points": points, "lr_max": 1.0}])  # far away: left out
    assert hi < 2e-3
