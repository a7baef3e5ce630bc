"""The trials table, regions, agreement and frontier against the engine and theory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from study.core import engine, prediction, theory
from study.report import regions

ARTICLE_EDGE = 4.013e-4  # 2/λ_max on the article's data (mse cost), rounded up


# ── regions on the article's data ───────────────────────────────────────────────────────────


def test_article_edge_is_the_theorys(article, nedrich):
    _, _, _, table = article
    assert theory.lr_max(nedrich) == pytest.approx(ARTICLE_EDGE, abs=1e-7)
    above = table[table["lr"] > ARTICLE_EDGE]
    assert len(above) and (above["region"] == "diverged").all()
    converged = table[table["region"] == "converged"]
    assert len(converged) and (converged["lr"] < theory.lr_max(nedrich)).all()
    summary = regions.region_summary(table)
    row = summary.iloc[0]
    assert row["largest_converged_lr"] < row["lr_max"] <= row["smallest_diverged_lr"]
    assert bool(row["bracket_holds_lr_max"])
    assert row["converged"] + row["not converged"] + row["diverged"] == len(table)


def test_agreement_is_reported_with_the_disagreeing_trials(article):
    _, _, _, table = article
    rate, differ = regions.agreement(table)
    expected = (table["region"] == table["predicted_region"]).mean()
    assert rate == pytest.approx(expected)
    assert len(differ) == round((1 - expected) * len(table))
    assert (differ["region"] != differ["predicted_region"]).all()
    assert regions.region_summary(table)["agreement"].iloc[0] == pytest.approx(rate)


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
        assert row["predicted_region"] == prediction.predicted_status(
            nedrich, t.settings, t.lr, t.init, t.epochs, 0.01)
        if row["predicted_region"] != "diverged":
            params, _ = prediction.predicted_epochs(nedrich, t.settings, t.lr, t.init, (0.01,), (),
                                                10**9)
            got = row["predicted_epochs_to_dist_tol"]
            assert (None if got is pd.NA else int(got)) == params[0.01]


def test_trials_without_a_prediction_have_no_agreement(valley, engine_frame, report_spec):
    settings = engine.Settings(optimizer="line_search", line_search="backtracking")
    frame, _, _ = engine_frame(valley, settings, [1e-4], (50,), [(0.0, 0.0)])
    table = regions.trials_table(valley, frame, report_spec(settings=settings))
    assert table["predicted_region"].isna().all() and table["agrees"].isna().all()
    assert str(table["agrees"].dtype) == "boolean"
    assert regions.agreement(table)[0] is None
    assert regions.region_summary(table)["agreement"].iloc[0] is None


def test_settings_groups_split_by_a_varying_setting(update_groups):
    table = update_groups
    assert regions.group_columns(table) == ["update"]
    groups = regions.settings_groups(table)
    assert [label for label, _ in groups] == ["update=sequential", "update=simultaneous"]
    assert [regions.group_settings(part, engine.Settings()).update for _, part in groups] \
        == ["sequential", "simultaneous"]
    assert list(regions.region_summary(table)["group"]) == [label for label, _ in groups]


def test_best_trials_never_diverged(valley_table):
    table, sp = valley_table
    best = regions.best_trials(table, sp)["distance to OLS ‖θ − θ*‖"]
    assert len(best) == 3 and (best["region"] != "diverged").all()
    assert best["dist_to_ols"].is_monotonic_increasing
    assert best["dist_to_ols"].iloc[0] == table.loc[table["region"] != "diverged",
                                                    "dist_to_ols"].min()


# ── the frontier ────────────────────────────────────────────────────────────────────────────


def test_frontier_matches_trials_just_below_and_above(valley):
    settings, start, tol = engine.Settings(), (0.0, 0.0), 0.01
    edge = theory.lr_max(valley)
    curve = regions.frontier(valley, settings, {"origin": start}, edge * np.array(
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
    curve = regions.frontier(valley, engine.Settings(), {"s": (0.0, 0.0)},
                             [0.5 * edge, edge, 1.5 * edge], 0.01, 1000)
    assert list(curve["lr"]) == [0.5 * edge]
    table = pd.DataFrame({"lr": [1e-6, 1e-2]})
    lrs = regions.frontier_lrs(table, 1e-3)
    assert lrs.min() == pytest.approx(1e-6) and lrs.max() == pytest.approx(0.999e-3)
