"""The report: trials table, regions and frontier against the engine and theory; figures through
their matplotlib objects; report.html self-contained; `study report` on a real sweep."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study import engine, figures, report, theory
from study.errors import StudyError
from study.problem import Problem

ARTICLE_EDGE = 4.013e-4  # 2/λ_max on the article's data (mse cost), rounded up
STARTS = ((0.0, 0.0), (-1.0, 0.0), (2.0, 8.0))


def engine_frame(problem: Problem, settings: engine.Settings, lrs, budgets, starts
                 ) -> tuple[pd.DataFrame, list[engine.Trial], list[engine.Result]]:
    """A trials table shaped like the sweep's, made by running the engine on a grid."""
    trials = [engine.Trial(float(lr), int(e), tuple(s), settings)
              for lr in lrs for e in budgets for s in starts]
    results = engine.run(problem, trials)
    rows = []
    for i, (t, r) in enumerate(zip(trials, results, strict=True)):
        row = {"trial": i, "lr": t.lr, "epochs": t.epochs}
        row.update({f"init_{n}": v for n, v in zip(problem.param_names, t.init, strict=True)})
        row.update({"status": r.status, "final_cost": r.cost, "dist_to_ols": r.dist_to_ols,
                    "cost_gap": r.cost_gap, "rel_cost_gap": r.rel_cost_gap,
                    "epochs_run": r.epochs_run, "diverged_at": r.diverged_at})
        row.update({f"final_{n}": v for n, v in zip(problem.param_names, r.theta, strict=True)})
        row.update({f"epochs_to_param_tol_{k:g}": v for k, v in r.first_param_epoch.items()})
        rows.append(row)
    return pd.DataFrame(rows), trials, results


DISTANCE = (report.Objective("dist_to_ols"),)


def spec(name: str = "test", settings: engine.Settings | None = None, dist_tol: float = 0.01,
         objectives=DISTANCE) -> report.ReportSpec:
    return report.ReportSpec(name=name, settings=settings or engine.Settings(),
                             dist_tol=dist_tol, objectives=tuple(objectives),
                             swept=("lr", "epochs", "init_m", "init_b"),
                             log_scaled=frozenset({"lr", "epochs"}))


@pytest.fixture(scope="module")
def article(nedrich):
    """The article's data swept over lr 1e-6 … 1e-3 × budgets × the three starts of the text."""
    frame, trials, results = engine_frame(nedrich, engine.Settings(),
                                          np.geomspace(1e-6, 1e-3, 22), (100, 1000, 20000),
                                          STARTS)
    return frame, trials, results, report.trials_table(nedrich, frame, spec("nedrich"))


@pytest.fixture(scope="module")
def valley() -> Problem:
    """A small problem with a long, flat valley (x far from 0: κ ≈ 2·10³), solved fast."""
    rng = np.random.default_rng(3)
    x = rng.uniform(8.0, 12.0, 30)
    return Problem(x[:, None], 1.5 * x + 2.0 + rng.normal(0.0, 0.5, 30))


@pytest.fixture(scope="module")
def small(valley):
    """A trials table on ``valley`` with every region present, and its report spec."""
    edge = theory.lr_max(valley)
    frame, _, _ = engine_frame(valley, engine.Settings(), edge * np.geomspace(0.01, 2.0, 9),
                               (300, 30000), ((0.0, 0.0), (3.0, -5.0)))
    sp = spec("small")
    return report.trials_table(valley, frame, sp), sp


# ── regions on the article's data ───────────────────────────────────────────────────────────


def test_article_edge_is_the_theorys(article, nedrich):
    _, _, _, table = article
    assert theory.lr_max(nedrich) == pytest.approx(ARTICLE_EDGE, abs=1e-7)
    above = table[table["lr"] > ARTICLE_EDGE]
    assert len(above) and (above["region"] == "diverged").all()
    converged = table[table["region"] == "converged"]
    assert len(converged) and (converged["lr"] < theory.lr_max(nedrich)).all()
    summary = report.region_summary(table)
    row = summary.iloc[0]
    assert row["largest_converged_lr"] < row["lr_max"] <= row["smallest_diverged_lr"]
    assert bool(row["bracket_holds_lr_max"])
    assert row["converged"] + row["not converged"] + row["diverged"] == len(table)


def test_agreement_is_reported_with_the_disagreeing_trials(article):
    _, _, _, table = article
    rate, differ = report.agreement(table)
    expected = (table["region"] == table["predicted_region"]).mean()
    assert rate == pytest.approx(expected)
    assert len(differ) == round((1 - expected) * len(table))
    assert (differ["region"] != differ["predicted_region"]).all()
    assert report.region_summary(table)["agreement"].iloc[0] == pytest.approx(rate)


def test_table_against_engine_and_theory(article, nedrich):
    frame, trials, results, table = article
    assert list(table.columns[: len(frame.columns)]) == list(frame.columns)
    for col in ("start_distance", "region", "lr_max", "predicted_region",
                "predicted_epochs_to_dist_tol", "agrees"):
        assert col in table.columns
    for i in range(0, len(trials), 7):  # a spread of trials, every region among them
        t, r, row = trials[i], results[i], table.iloc[i]
        region = ("diverged" if r.status == "diverged" else
                  "converged" if r.dist_to_ols <= 0.01 else "not converged")
        assert row["region"] == region
        assert row["dist_to_ols"] == r.dist_to_ols
        assert row["final_m"] == r.theta[0] and row["final_b"] == r.theta[1]
        assert row["start_distance"] == pytest.approx(
            np.linalg.norm(np.array(t.init) - nedrich.ols_theta))
        assert row["predicted_region"] == theory.predicted_status(
            nedrich, t.settings, t.lr, t.init, t.epochs, 0.01)
        if row["predicted_region"] != "diverged":
            params, _ = theory.predicted_epochs(nedrich, t.settings, t.lr, t.init, (0.01,), (),
                                                10**9)
            got = row["predicted_epochs_to_dist_tol"]
            assert (None if got is pd.NA else int(got)) == params[0.01]


def test_conclusion_is_written_from_the_numbers(article, nedrich):
    _, _, _, table = article
    text = " ".join(report.conclusion(nedrich, table, report.region_summary(table),
                                      spec("nedrich")))
    smallest = table.loc[table["region"] == "diverged", "lr"].min()
    assert f"Every trial with lr ≥ {report.fmt(smallest)} diverged" in text
    assert f"lr_max = {report.fmt(theory.lr_max(nedrich))}" in text
    n_conv = int((table["region"] == "converged").sum())
    n_stable = int((table["region"] != "diverged").sum())
    assert f"Of the {n_stable} stable trials, {n_conv} reached the OLS line" in text
    assert "Theory predicted the region of" in text


# ── the frontier ────────────────────────────────────────────────────────────────────────────


def test_frontier_matches_trials_just_below_and_above(valley):
    settings, start, tol = engine.Settings(), (0.0, 0.0), 0.01
    edge = theory.lr_max(valley)
    curve = report.frontier(valley, settings, {"origin": start}, edge * np.array(
        [0.02, 0.1, 0.4, 0.8, 0.97]), tol, budget=10**6)
    assert len(curve) == 5 and curve["epochs_needed"].notna().all()
    assert curve["epochs_needed"].iloc[0] > curve["epochs_needed"].iloc[2]  # smaller lr: slower
    for lr, need in zip(curve["lr"], curve["epochs_needed"].astype(int), strict=True):
        below, at = engine.run(valley, [engine.Trial(lr, need - 1, start, settings),
                                        engine.Trial(lr, need, start, settings)])
        assert below.status != "diverged" and below.dist_to_ols > tol
        assert at.dist_to_ols <= tol


def test_frontier_stops_at_the_edge(valley):
    edge = theory.lr_max(valley)
    curve = report.frontier(valley, engine.Settings(), {"s": (0.0, 0.0)},
                            [0.5 * edge, edge, 1.5 * edge], 0.01, 1000)
    assert list(curve["lr"]) == [0.5 * edge]
    table = pd.DataFrame({"lr": [1e-6, 1e-2]})
    lrs = report.frontier_lrs(table, 1e-3)
    assert lrs.min() == pytest.approx(1e-6) and lrs.max() == pytest.approx(0.999e-3)


# ── figures, as data and as matplotlib objects ──────────────────────────────────────────────


def _scatter_points(ax, prefix: str) -> int:
    return sum(len(c.get_offsets()) for c in ax.collections
               if str(c.get_label()).startswith(prefix))


def test_region_map(small, valley):
    table, sp = small
    data = figures.region_data(valley, table, sp)
    assert len(data) == 2  # one panel per start
    assert sum(len(p["points"]) for p in data) == len(table)
    fig = figures.draw_regions(data, sp.dist_tol, sp.name)
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


def test_distance_map(small, valley):
    table, _ = small
    data = figures.distance_data(valley, table)
    fig = figures.draw_distance(data, 0.01)
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_xlabel()]
    assert len(axes) == 2
    stable = [c for ax in axes for c in ax.collections if c.get_array() is not None
              and len(c.get_offsets())]
    assert sum(len(c.get_offsets()) for c in stable) == (table["region"] != "diverged").sum()
    assert any("log10" in ax.get_ylabel() for ax in fig.axes)  # the colour bar
    np.testing.assert_allclose(pd.concat([p["points"] for p in data])["log10_dist"].sort_values(),
                               np.log10(table["dist_to_ols"]).sort_values())


def test_distance_map_over_start_distance_when_starts_vary(valley):
    rng = np.random.default_rng(0)
    starts = rng.uniform(-5, 5, (8, 2))
    frame, _, _ = engine_frame(valley, engine.Settings(), [1e-4, 1e-3], (500,), starts)
    table = report.trials_table(valley, frame, spec())
    data = figures.distance_data(valley, table)
    assert len(data) == 1 and data[0]["starts_vary"]
    fig = figures.draw_distance(data)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert any("start distance" in label for label in labels)


def test_cost_curves(small, valley):
    table, sp = small
    picks = figures.pick_cost_trials(table)
    assert 3 <= len(picks) <= 7 and (picks["region"] == "diverged").sum() == 1
    curves = figures.cost_curve_data(valley, table, sp)
    assert curves["trial"].nunique() == len(picks)
    ok = curves[curves["region"] != "diverged"]
    # the engine and the closed form agree on every checkpoint of a stable trial
    np.testing.assert_allclose(ok["theory"], ok["measured"], rtol=1e-6, atol=1e-12)
    fig = figures.draw_cost(curves)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    measured = [ln for ln in ax.get_lines() if ln.get_label().startswith("lr ")]
    assert len(measured) == len(picks)
    assert "epoch" in ax.get_xlabel() and "J*" in ax.get_ylabel()


def test_contour_shows_valley_paths_and_ols(small, valley):
    table, sp = small
    data = figures.contour_data(valley, table, sp)
    star = valley.ols_theta
    assert data["m"][0] < star[0] < data["m"][-1] and data["b"][0] < star[1] < data["b"][-1]
    for start in ((0.0, 0.0), (3.0, -5.0)):  # every start inside the picture
        assert data["m"][0] < start[0] < data["m"][-1]
        assert data["b"][0] < start[1] < data["b"][-1]
    assert data["gap"].min() >= 0 and data["gap"].max() / data["gap"][data["gap"] > 0].min() > 1e3
    assert data["paths"]["start"].nunique() == 2
    fig = figures.draw_contour(data)
    ax = fig.axes[0]
    assert "slope m" in ax.get_xlabel() and "intercept b" in ax.get_ylabel()
    ols = [ln for ln in ax.get_lines() if ln.get_label().startswith("OLS")]
    assert len(ols) == 1 and ols[0].get_xdata()[0] == pytest.approx(star[0])
    paths = [ln for ln in ax.get_lines() if ln.get_label().startswith("GD from")]
    assert len(paths) == 2
    bar = fig.axes[1]
    assert bar.get_yscale() == "log"  # log-spaced levels


def test_data_figure_shows_ols_and_where_trials_ended(small, valley):
    table, _ = small
    data = figures.data_data(valley, table)
    assert data["lines"][0][1:] == tuple(valley.ols_theta)
    best = table[table["region"] != "diverged"].sort_values("dist_to_ols").iloc[0]
    assert data["lines"][1][1:] == (best["final_m"], best["final_b"])
    fig = figures.draw_data(data)
    ax = fig.axes[0]
    assert len(ax.collections[0].get_offsets()) == valley.n
    assert len(ax.get_lines()) == len(data["lines"]) and "data units" in ax.get_xlabel()


def test_contour_only_for_one_feature(multivariate):
    frame, _, _ = engine_frame(multivariate, engine.Settings(), [0.01], (50,), [(0, 0, 0, 0)])
    table = report.trials_table(multivariate, frame, spec())
    assert figures.contour_data(multivariate, table, spec()) is None
    assert figures.data_data(multivariate, table) is None


def test_axis_plots_one_per_swept_setting(small):
    table, sp = small
    data = figures.axis_data(table, sp)
    assert [p["name"] for p in data["panels"]] == ["lr", "epochs", "init_m", "init_b"]
    assert data["panels"][0]["kind"] == "log"
    fig = figures.draw_axes(data)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 4
    n_div = int((table["region"] == "diverged").sum())
    for ax in axes:
        red = [c for c in ax.collections if c.get_label().startswith("diverged")]
        assert len(red[0].get_offsets()) == n_div
        assert ax.get_ylabel().startswith("distance to OLS")
    assert axes[0].get_xscale() == "log"


def test_axis_plot_of_a_categorical_setting(valley):
    rows = []
    for update in ("simultaneous", "sequential"):
        f, _, _ = engine_frame(valley, engine.Settings(update=update), [1e-4, 1e-3], (200,),
                               [(0.0, 0.0)])
        rows.append(f.assign(update=update))
    frame = pd.concat(rows, ignore_index=True)
    table = report.trials_table(valley, frame, spec())
    assert report.group_columns(table) == ["update"]
    assert len(report.region_summary(table)) == 2
    data = figures.axis_data(table, report.ReportSpec("t", swept=("lr", "update")))
    kinds = {p["name"]: p["kind"] for p in data["panels"]}
    assert kinds == {"lr": "log", "update": "category"}
    fig = figures.draw_axes(data)
    ax = next(a for a in fig.axes if a.get_xlabel() == "update")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["sequential", "simultaneous"]


def test_pareto_front_as_data():
    table = pd.DataFrame({"region": ["converged"] * 4 + ["diverged"],
                          "a": [1.0, 2.0, 3.0, 2.5, 0.0], "b": [3.0, 1.0, 0.5, 2.0, 0.0]})
    sp = report.ReportSpec("t", objectives=(report.Objective("a"), report.Objective("b")))
    data = figures.pareto_data(table, sp)
    assert list(data["points"]["front"]) == [True, True, True, False]  # diverged left out
    fig = figures.draw_pareto(data)
    front = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("Pareto")]
    assert len(front[0].get_xdata()) == 3
    assert figures.pareto_data(table, report.ReportSpec("t", objectives=sp.objectives[:1])) \
        is None


def test_best_trials_never_diverged(small):
    table, sp = small
    best = report.best_trials(table, sp)["distance to OLS ‖θ − θ*‖"]
    assert len(best) == 3 and (best["region"] != "diverged").all()
    assert best["dist_to_ols"].is_monotonic_increasing
    assert best["dist_to_ols"].iloc[0] == table.loc[table["region"] != "diverged",
                                                    "dist_to_ols"].min()


# ── the documents ───────────────────────────────────────────────────────────────────────────


def test_build_report_writes_self_contained_html(small, valley, tmp_path):
    table, sp = small
    frame = table[[c for c in table.columns if c not in (
        "start_distance", "region", "lr_max", "agrees") and not c.startswith("predicted")]]
    out = report.build_report(sp, valley, frame, tmp_path / "rep")
    folder = tmp_path / "rep"
    assert out == folder / "report.html"
    for name in ("trials.csv", "trials.parquet", "report.md", "summary.json"):
        assert (folder / name).is_file()
    pngs = sorted((folder / "figures").glob("*.png"))
    assert {p.stem for p in pngs} == {"data", "regions", "distance", "cost", "contour", "axes"}
    page = out.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == len(pngs)
    assert re.findall(r'src="(?!data:)', page) == [] and "<link" not in page
    saved = pd.read_parquet(folder / "trials.parquet")
    assert len(saved) == len(frame) and list(saved["region"]) == list(table["region"])
    assert len(pd.read_csv(folder / "trials.csv")) == len(frame)
    md = (folder / "report.md").read_text(encoding="utf-8")
    assert md.count("](figures/") == len(pngs)
    for heading in ("Conclusion", "What theory says", "Regions", "Measured against predicted",
                    "Best trials"):
        assert f"## {heading}" in md
    assert "λ_min" in md and "condition number" in md and "2/(λ_min+λ_max)" in md


def test_no_trials_is_an_error(valley, tmp_path):
    with pytest.raises(StudyError, match="no complete trials"):
        report.build_report(spec(), valley, pd.DataFrame(), tmp_path)


def test_fmt():
    assert report.fmt(None) == "—" and report.fmt(float("nan")) == "—"
    assert report.fmt(1234567) == "1,234,567" and report.fmt(0.000401296) == "0.0004013"
    assert report.fmt(True) == "yes" and math.isfinite(float(report.fmt(2.5)))


# ── the command on a real sweep ─────────────────────────────────────────────────────────────

CONFIG = """\
name: tiny
data: {{path: {data}}}
algorithm: {{tol_param: 0.01}}
search:
  sampler: random
  seed: 1
  n_trials: 12
  batch_size: 12
  space:
    lr: {{low: 1.0e-5, high: 1.0e-3, log: true}}
    epochs: {{values: [100, 3000]}}
    init_m: 0.0
    init_b: 0.0
"""


@pytest.fixture()
def tiny_config(tmp_path, monkeypatch) -> Path:
    data = Path(__file__).resolve().parents[1] / "data" / "blog_like.csv"
    if not data.is_file():
        pytest.skip(f"{data} is missing")
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tiny.yaml"
    path.write_text(CONFIG.format(data=data), encoding="utf-8")
    return path


def test_study_report_on_a_real_sweep(tiny_config, tmp_path, capsys):
    from mlflow import MlflowClient

    from study.cli import main

    assert main(["run", str(tiny_config), "--no-progress", "--no-report"]) == 0
    capsys.readouterr()
    assert main(["report", str(tiny_config), "--set", "report.dist_tol=0.05"]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "reports" / "tiny"
    assert f"report: {folder / 'report.html'}" in out and "logged as artifacts" in out
    assert len(pd.read_parquet(folder / "trials.parquet")) == 12
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tiny")
    parent = client.search_runs([exp.experiment_id], "tags.`study.role` = 'sweep'")[0]
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.html", "report/trials.parquet", "report/figures"} <= logged


def test_study_report_without_complete_trials(tiny_config, capsys):
    from study import sweep
    from study.cli import main
    from study.config import load_config

    assert main(["report", str(tiny_config)]) == 2  # no study at all
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "study: error:" in err
    cfg = load_config(tiny_config)
    sweep.open_study(cfg, sweep.make_sampler(cfg, sweep.build_space(cfg, 1)))
    assert main(["report", str(tiny_config)]) == 2  # a study with no complete trial
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no complete trials" in err
