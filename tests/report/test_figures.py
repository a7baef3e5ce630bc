"""The report's figures: plot data checked as data (:mod:`study.report.figures`), drawings checked
through their matplotlib objects, axes and artists (:mod:`study.report.drawing`,
:mod:`study.report.canvas`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from study.core import engine, theory
from study.core.problem import Problem
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
    gap = data["log10_gap"]
    assert np.isfinite(gap).all() and gap.max() - gap.min() > 3  # decades of the valley
    assert data["paths"]["start"].nunique() == 2
    fig = drawing.draw_contour(data)
    ax = fig.axes[0]
    assert "slope m" in ax.get_xlabel() and "intercept b" in ax.get_ylabel()
    ols = [ln for ln in ax.get_lines() if ln.get_label().startswith("OLS")]
    assert len(ols) == 1 and ols[0].get_xdata()[0] == pytest.approx(star[0])
    paths = [ln for ln in ax.get_lines() if ln.get_label().startswith("GD from")]
    assert len(paths) == 2
    bar = fig.axes[1]
    assert "log scale" in bar.get_ylabel()
    assert all(t.get_text().startswith("1e") for t in bar.get_yticklabels())  # decades
    ends = [ln for ln in ax.get_lines() if ln.get_marker() == "s"]
    assert len(ends) == 2 and len({ln.get_markersize() for ln in ends}) == 2
    # the ends are hollow squares around θ*'s star, which sits over them (it hid them)
    assert all(ln.get_markerfacecolor() == "none" for ln in ends)
    assert all(ln.get_markersize() > ols[0].get_markersize() for ln in ends)
    assert ols[0].get_zorder() > max(ln.get_zorder() for ln in ends)


def test_data_figure_shows_ols_and_where_trials_ended(valley_table, valley):
    table, sp = valley_table
    data = figures.data_data(valley, table, sp)
    assert data["lines"][0][1:] == tuple(valley.ols_theta)
    best = table[table["region"] != "diverged"].sort_values("dist_to_ols").iloc[0]
    assert data["lines"][1][1:] == (best["final_m"], best["final_b"])
    assert data["lines"][1][0].startswith(f"best trial #{best['trial']} ")
    fig = drawing.draw_data(data)
    ax = fig.axes[0]
    assert len(ax.collections[0].get_offsets()) == valley.n
    assert len(ax.get_lines()) == len(data["lines"]) and "data units" in ax.get_xlabel()


def test_data_figure_best_trial_is_the_objectives_best(valley_table, valley):
    """The best line is the trial ``study run`` names: the primary objective's best among the
    trials that did not diverge, the first of equals (the distance to θ* ties at the tolerance
    for every trial that stopped there)."""
    table, sp = valley_table
    column = next(c for c in table.columns if c.startswith("epochs_to_param_tol_"))
    for direction in ("minimize", "maximize"):
        spec = dataclasses.replace(sp, objectives=(Objective(column, direction),))
        data = figures.data_data(valley, table, spec)
        ok = table[(table["region"] != "diverged") & table[column].notna()]
        sign = 1 if direction == "minimize" else -1
        pick = min(ok.to_dict("records"), key=lambda r: (sign * r[column], r["trial"]))
        assert data["lines"][1][0].startswith(f"best trial #{pick['trial']} ")
        assert data["lines"][1][1:] == (pick["final_m"], pick["final_b"])


def test_contour_only_for_one_feature(multivariate, engine_frame, report_spec):
    frame, _, _ = engine_frame(multivariate, engine.Settings(), [0.01], (50,), [(0, 0, 0, 0)])
    table = regions.trials_table(multivariate, frame, report_spec())
    assert figures.contour_data(multivariate, table, report_spec()) is None
    assert figures.data_data(multivariate, table, report_spec()) is None


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
    # a frontier below the budgets is cut (reaching down to it emptied half of each panel)
    assert canvas.epoch_limits([{"points": points, "frontier": frontier}]) == (50.0, 2000.0)
    short = pd.DataFrame({"epochs_needed": [5000.0, 8000.0]})  # every budget falls short
    assert canvas.epoch_limits([{"points": points, "frontier": short}]) == (50.0, 15000.0)
    unreached = frontier.assign(epochs_needed=np.nan)
    assert canvas.epoch_limits([{"points": points, "frontier": unreached}]) == (50.0, 2000.0)
    lo, hi = canvas.lr_limits([{"points": points, "lr_max": 4e-3}])
    assert lo < 1e-4 and 4e-3 < hi < 1e-2
    lo, hi = canvas.lr_limits([{"points": points, "lr_max": 1.0}])  # far away: left out
    assert hi < 2e-3


# ── the cost surface from the sufficient statistics ──────────────────────────────────────────


def _per_point_gap(problem, thetas, cost):
    """The independent reference: J(θ) − J* from the residuals over every data point, in exact
    arithmetic enough for small data (θ* from np.linalg.lstsq)."""
    A = np.column_stack([problem.X, np.ones(problem.n)])
    star, *_ = np.linalg.lstsq(A, problem.y, rcond=None)
    scale = {"mse": 1 / problem.n, "half_mse": 0.5 / problem.n, "sse": 1.0}[cost]
    r = problem.y[None, :] - thetas @ A.T
    r_star = problem.y - A @ star
    return scale * (np.einsum("ij,ij->i", r, r) - r_star @ r_star)


@pytest.mark.parametrize("cost", ["mse", "half_mse", "sse"])
def test_cost_gap_from_sufficient_statistics_matches_the_points(valley, multivariate, cost):
    rng = np.random.default_rng(5)
    for problem in (valley, multivariate):
        thetas = problem.ols_theta + rng.normal(0.0, 1.0, (50, problem.d + 1)) \
            * np.geomspace(1e-3, 10, 50)[:, None]
        np.testing.assert_allclose(figures.log10_cost_gap(problem, thetas, cost),
                                   np.log10(_per_point_gap(problem, thetas, cost)), atol=1e-6)
        assert figures.log10_cost_gap(problem, problem.ols_theta, cost)[0] == -np.inf


@pytest.mark.parametrize("scale", [1e100, 1e-100, 1e150, 1e-150])
def test_cost_surface_at_any_data_scale(valley, scale):
    """x and y × k: θ* = (m*, k·b*), and the mse gap at (m, k·b) is k² times the original's."""
    scaled = Problem(valley.X * scale, valley.y * scale)
    rng = np.random.default_rng(2)
    thetas = valley.ols_theta + rng.normal(0.0, 1.0, (20, 2))
    moved = thetas * np.array([1.0, scale])
    got = figures.log10_cost_gap(scaled, moved, "mse")
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, figures.log10_cost_gap(valley, thetas, "mse")
                               + 2 * np.log10(scale), atol=1e-6)
    _, _, gap = figures._gap_grid(scaled, "mse", moved, 60)
    assert gap.shape == (60, 60) and np.isfinite(gap).all()


def test_cost_surface_memory_does_not_grow_with_rows():
    import tracemalloc

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 400_000)
    problem = Problem(x[:, None], 2 * x + 1 + rng.normal(0, 0.1, x.size))
    problem.ols_theta  # noqa: B018  (the statistics, computed once, are the problem's)
    tracemalloc.start()
    figures._gap_grid(problem, "mse", np.array([[0.0, 0.0], [3.0, 2.0]]), 240)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 240 * 240 * 8  # a few grid-sized arrays, nothing × N


# ── figures a reader can read ───────────────────────────────────────────────────────────────


def test_data_figure_draws_a_sample_of_many_rows_and_says_so(valley_table):
    table, sp = valley_table
    rng = np.random.default_rng(1)
    x = rng.uniform(8, 12, 50_000)
    big = Problem(x[:, None], 1.5 * x + 2 + rng.normal(0, 0.5, x.size))
    data = figures.data_data(big, table, sp, most_points=5_000)
    assert len(data["x"]) == 5_000 and data["n_rows"] == 50_000
    assert data["x_range"] == (x.min(), x.max())
    assert set(zip(data["x"], data["y"], strict=True)) <= set(zip(x, big.y, strict=True))
    fig = drawing.draw_data(data)
    points = fig.axes[0].collections[0]
    assert len(points.get_offsets()) == 5_000 and "5,000 of 50,000" in points.get_label()


def test_distance_regions_differ_by_shape(valley_table, valley):
    table, _ = valley_table
    fig = drawing.draw_distance(figures.distance_data(valley, table), 0.01)
    labels = {t.get_text(): h for t, h in zip(fig.legends[0].get_texts(),
                                              fig.legends[0].legend_handles, strict=True)}
    converged = next(h for k, h in labels.items() if k.startswith("converged"))
    assert converged.get_paths()[0] != labels["not converged"].get_paths()[0] or \
        len(converged.get_paths()[0].vertices) != len(labels["not converged"].get_paths()[0]
                                                      .vertices)


def test_cost_colours_are_distinct_and_diverged_red(valley_table, valley):
    table, sp = valley_table
    curves = figures.cost_curve_data(valley, table, sp)
    colours = drawing.cost_colours(curves)
    firsts = curves.drop_duplicates("trial").set_index("trial")
    stable = [colours[t] for t in firsts.index if firsts.loc[t, "region"] != "diverged"]
    rgb = np.array([c[:3] for c in stable])
    gaps = np.linalg.norm(rgb[:, None] - rgb[None, :], axis=2)[np.triu_indices(len(rgb), 1)]
    assert gaps.min() > 0.08  # no two near-identical colours (viridis stops short of yellow)
    assert all(colours[t] == canvas.COLORS["diverged"] for t in firsts.index
               if firsts.loc[t, "region"] == "diverged")


def test_discrete_settings_are_spread_sideways_within_their_value():
    rng = np.random.default_rng(0)
    x = np.repeat([-1.0, 0.0, 2.0], 20)
    moved, jittered = drawing._positions(x, "linear", rng)
    assert jittered and np.all(np.abs(moved - x) <= 0.125) and np.unique(moved).size > 3
    logs, jittered = drawing._positions(np.repeat([1e3, 1e4], 5), "log", rng)
    assert jittered and np.all(np.abs(np.log10(logs) - np.log10(np.repeat([1e3, 1e4], 5)))
                               <= 0.125)
    _, jittered = drawing._positions(rng.uniform(0, 1, 40), "linear", rng)
    assert not jittered  # a continuous setting stays where it is


def test_power_of_ten_labels():
    assert canvas.power_of_ten(1000.0) == "10³" and canvas.power_of_ten(1e-4) == "10⁻⁴"
    assert canvas.power_of_ten(2e5) == "2×10⁵" and canvas.power_of_ten(0.0) == ""


def _boxes(fig):
    """Window extents of the texts a reader must see apart: suptitle, legends, and each visible
    panel's tight box (ticks, labels, title)."""
    renderer = fig.canvas.get_renderer()
    fig.draw_without_rendering()
    panels = [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()]
    extra = [leg.get_window_extent(renderer) for leg in fig.legends]
    if fig.get_suptitle():
        extra.append(fig._suptitle.get_window_extent(renderer))
    return panels, extra


def test_fixed_layout_keeps_texts_apart_and_inside(valley_table, valley, update_groups):
    table, sp = valley_table
    figs = drawing.draw_all(figures.figure_data(valley, table, sp), sp.dist_tol, sp.name)
    figs["groups"] = drawing.draw_regions(figures.region_data(valley, update_groups, sp), 0.01)
    for key, fig in figs.items():
        assert fig.get_layout_engine() is None, key  # laid out once, not at every draw
        panels, extra = _boxes(fig)
        width, height = fig.bbox.width, fig.bbox.height
        for box in panels + extra:
            assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= width + 1 \
                and box.y1 <= height + 1, key
        for i, a in enumerate(panels + extra):
            for b in (panels + extra)[i + 1:]:
                assert not a.overlaps(b), key


def test_crowded_panels_shrink_markers_and_keep_rare_regions_on_top():
    assert canvas.crowd(100) == 1.0 and canvas.crowd(10_000) == pytest.approx(0.3)
    assert canvas.crowd(1600) == pytest.approx(0.5)
    order = canvas.stacking(["not converged"] * 50 + ["diverged"] * 9 + ["converged"] * 2)
    assert order["converged"] > order["diverged"] > order["not converged"]


@pytest.mark.parametrize("settings", [engine.Settings(), engine.Settings(update="sequential"),
                                      engine.Settings(optimizer="momentum", momentum=0.9)])
def test_contour_paths_in_closed_form_are_the_engines(valley, settings):
    """The contour's paths for linear-map optimizers come from θ_n = θ* + Mⁿ(θ₀ − θ*) rather
    than a run; the engine's recorded path at the same epochs agrees to rounding."""
    lr, epochs = 0.5 * theory.lr_max(valley, settings), 3000
    starts = [(0.0, 0.0), (3.0, -5.0)]
    paths = figures.gd_paths(valley, settings, lr, epochs, starts)
    runs = engine.run(valley, [engine.Trial(lr, epochs, s, dataclasses.replace(
        settings, record_path=True)) for s in starts])
    for (at, theta), run in zip(paths, runs, strict=True):
        assert at[0] == 0 and at[-1] == epochs
        recorded = dict(zip(run.history_epoch.tolist(), run.history_theta, strict=True))
        shared = [k for k in at.tolist() if k in recorded]
        assert len(shared) >= 0.9 * len(at)
        got = theta[np.searchsorted(at, shared)]
        want = np.array([recorded[k] for k in shared])
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())
