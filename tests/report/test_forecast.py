"""Theory's first epochs for many plain-GD trials at once, against theory one trial at a time
(:func:`study.core.prediction.predicted_epochs`)."""

from __future__ import annotations

import numpy as np
import pytest

from study.core import engine, prediction, theory
from study.report import forecast, regions

TARGETS = [("param", 0.1), ("param", 0.01), ("param", 0.001), ("cost", 1e-2), ("cost", 1e-4)]


@pytest.mark.parametrize("fixture", ["valley", "well_conditioned", "multivariate"])
def test_first_epochs_match_theory_trial_by_trial(fixture, request):
    problem = request.getfixturevalue(fixture)
    settings = engine.Settings()
    edge = theory.lr_max(problem, settings)
    lam_max = theory.spectrum(problem, settings).lam_max
    rng = np.random.default_rng(4)
    lrs = np.concatenate([edge * np.geomspace(1e-3, 0.999, 12), [1.0 / lam_max, 1.5 * edge]])
    inits = problem.ols_theta + rng.normal(0.0, 3.0, (lrs.size, problem.d + 1))
    inits[0] = problem.ols_theta  # already there: epoch 0
    cap = 10_000_000
    got = forecast.first_epochs(problem, settings, lrs, inits, TARGETS, cap)
    for k, (lr, init) in enumerate(zip(lrs, inits, strict=True)):
        params, costs = prediction.predicted_epochs(
            problem, settings, float(lr), tuple(init), [t for kind, t in TARGETS
                                                        if kind == "param"],
            [t for kind, t in TARGETS if kind == "cost"], cap)
        want = [params[t] if kind == "param" else costs[t] for kind, t in TARGETS]
        assert [None if n < 0 else int(n) for n in got[k]] == want, (lr, init)
    assert (got[0] == 0).all()


def test_vectorized_predictions_equal_the_one_by_one_predictions(valley_table, valley):
    table, sp = valley_table
    inits = table[["init_m", "init_b"]].to_numpy(float)
    fast = regions.predictions(valley, sp.settings, table["lr"].tolist(), inits,
                               table["epochs"].tolist(), sp.dist_tol)
    for row, init, pred in zip(table.itertuples(), inits, fast, strict=True):
        assert pred == regions.prediction(valley, sp.settings, row.lr, tuple(init), row.epochs,
                                          sp.dist_tol)


def test_only_plain_simultaneous_gd_is_vectorized():
    assert forecast.vectorizable(engine.Settings())
    for changes in ({"update": "sequential"}, {"optimizer": "momentum"}, {"standardize": True},
                    {"optimizer": "line_search"}):
        assert not forecast.vectorizable(engine.Settings(**changes))
