"""Theory against closed forms, direct matrix powers and the iterated engine."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from study.core import engine as E
from study.core import prediction as P
from study.core import theory as T


def design(p):
    return np.column_stack([p.X, np.ones(p.n)])


def test_spectrum_and_edge_on_the_articles_data(nedrich):
    A = design(nedrich)
    lam = np.linalg.eigvalsh((2.0 / nedrich.n) * A.T @ A)
    sp = T.spectrum(nedrich)
    assert sp.lam_min == pytest.approx(lam[0], rel=1e-8)
    assert sp.lam_max == pytest.approx(lam[-1], rel=1e-12)
    assert T.lr_max(nedrich) == pytest.approx(4.013e-4, rel=1e-3)
    assert sp.condition_number == pytest.approx(lam[-1] / lam[0], rel=1e-8)
    assert T.best_lr(nedrich) == pytest.approx(2.0 / (lam[0] + lam[-1]), rel=1e-8)
    # the slow direction mostly moves b: its eigenvector is nearly (0, ±1)
    assert abs(sp.vectors[1, 0]) > 0.99
    assert "b changes" in T.slow_direction_text(nedrich)


def test_closed_form_trajectory_matches_the_engine(nedrich):
    epochs = [0, 1, 10, 1000, 5000]
    want = T.trajectory(nedrich, E.Settings(), 1e-4, (-1.0, 0.0), epochs)
    got = [E.run_one(nedrich, E.Trial(1e-4, n, (-1.0, 0.0))).theta if n else (-1.0, 0.0)
           for n in epochs]  # the engine runs at least one epoch
    np.testing.assert_allclose(got, want, rtol=1e-9)
    # and the closed form itself is θ* + (I − lr·H)ⁿ(θ₀ − θ*)
    H = (2.0 / nedrich.n) * design(nedrich).T @ design(nedrich)
    direct = nedrich.ols_theta + np.linalg.matrix_power(np.eye(2) - 1e-4 * H, 1000) @ (
        np.array([-1.0, 0.0]) - nedrich.ols_theta)
    np.testing.assert_allclose(want[3], direct, rtol=1e-9)


@pytest.mark.parametrize("start", [(0.0, 0.0), (-1.0, 0.0), (2.0, 8.0)])
def test_predicted_epochs_agree_with_the_iterated_engine_within_one_percent(nedrich, start):
    ptols, ctols = (0.1, 0.01, 0.001), (1e-2, 1e-3, 1e-4)
    pred_p, pred_c = P.predicted_epochs(nedrich, E.Settings(), 1e-4, start, ptols, ctols,
                                        5_000_000)
    r = E.run_one(nedrich, E.Trial(1e-4, 5_000_000, start,
                                   E.Settings(param_tols=ptols, cost_tols=ctols,
                                              tol_param=0.001)))
    for t in ptols:
        assert pred_p[t] == pytest.approx(r.first_param_epoch[t], rel=0.01, abs=1)
    for t in ctols:
        assert pred_c[t] == pytest.approx(r.first_cost_epoch[t], rel=0.01, abs=1)
    if start == (0.0, 0.0):  # the readers' "about a million iterations"
        assert 1_000_000 < pred_p[0.001] < 1_300_000


@pytest.mark.parametrize("settings", [
    dict(update="sequential"),
    dict(optimizer="momentum", momentum=0.6),
    dict(optimizer="momentum", momentum=0.3, update="sequential"),
    dict(standardize=True),
    dict(cost="half_mse"),
])
def test_predictions_for_other_updates_match_the_engine(nedrich, settings):
    s = E.Settings(**settings, param_tols=(1.0, 0.01), cost_tols=(1e-3,))
    lr = 0.6 * T.lr_max(nedrich, s)
    pred_p, pred_c = P.predicted_epochs(nedrich, s, lr, (0.0, 0.0), (1.0, 0.01), (1e-3,),
                                        3_000_000)
    r = E.run_one(nedrich, E.Trial(lr, 3_000_000, (0.0, 0.0),
                                   E.Settings(**settings, param_tols=(1.0, 0.01),
                                              cost_tols=(1e-3,), tol_param=0.01)))
    assert pred_p == {t: r.first_param_epoch[t] for t in (1.0, 0.01)}
    assert pred_c == {1e-3: r.first_cost_epoch[1e-3]}


@pytest.mark.parametrize("settings", [
    dict(update="sequential"),
    dict(optimizer="momentum", momentum=0.9),
    dict(optimizer="momentum", momentum=0.4, update="sequential"),
])
def test_numerical_edge_separates_engine_outcomes(nedrich, settings):
    s = E.Settings(**settings)
    edge = T.lr_max(nedrich, s)
    assert T.spectral_radius(nedrich, s, 0.999 * edge) < 1.0 < T.spectral_radius(
        nedrich, s, 1.001 * edge)
    stable = E.run_one(nedrich, E.Trial(0.98 * edge, 20_000, (0.0, 0.0), s))
    unstable = E.run_one(nedrich, E.Trial(1.05 * edge, 20_000, (0.0, 0.0), s))
    assert stable.status == "max_epochs" and unstable.status == "diverged"


def test_heavy_ball_edge_has_its_closed_form(nedrich):
    s = E.Settings(optimizer="momentum", momentum=0.5)
    assert T.lr_max(nedrich, s) == pytest.approx(2 * 1.5 / T.spectrum(nedrich).lam_max)


def test_tuned_momentum_is_much_faster_than_plain_gd(nedrich):
    lr, beta = T.tuned_momentum(nedrich)
    sp = T.spectrum(nedrich)
    k = sp.condition_number
    assert beta == pytest.approx(((np.sqrt(k) - 1) / (np.sqrt(k) + 1)) ** 2)
    rate = T.spectral_radius(nedrich, E.Settings(optimizer="momentum", momentum=beta), lr)
    assert rate == pytest.approx((np.sqrt(k) - 1) / (np.sqrt(k) + 1), rel=1e-3)


def test_time_constant_is_one_over_lr_lambda_min(nedrich):
    tau = T.time_constant(nedrich, E.Settings(), 1e-4)
    assert tau == pytest.approx(1.0 / (1e-4 * T.spectrum(nedrich).lam_min), rel=1e-3)


def test_predicted_status(nedrich):
    s = E.Settings()
    assert P.predicted_status(nedrich, s, 5e-4, (0, 0), 2000, 0.01) == "diverged"
    assert P.predicted_status(nedrich, s, 1e-4, (0, 0), 2000, 0.01) == "not converged"
    assert P.predicted_status(nedrich, s, 1e-4, (2, 8), 2000, 0.01) == "converged"


def test_exact_line_search_bound_is_an_upper_bound(nedrich):
    s = E.Settings(optimizer="line_search", line_search="exact")
    pred_p, pred_c = P.predicted_epochs(nedrich, s, 1.0, (0.0, 0.0), (0.01,), (1e-3,), 10**9)
    r = E.run_one(nedrich, E.Trial(1.0, 10**7, (0.0, 0.0),
                                   dataclasses.replace(s, param_tols=(0.01,), cost_tols=(1e-3,),
                                                       tol_param=0.01)))
    assert r.first_param_epoch[0.01] <= pred_p[0.01]
    assert r.first_cost_epoch[1e-3] <= pred_c[1e-3]


# ── any conditioning: against 60-digit arithmetic ───────────────────────────────────────────


def _mp_spectrum(problem, cost_scale):
    """Eigenvalues of H = 2s·AᵀA, A = [X 1], from the float data in 60-digit arithmetic."""
    import mpmath as mp

    with mp.workdps(60):
        A = mp.matrix([[mp.mpf(float(v)) for v in row] + [mp.mpf(1)] for row in problem.X])
        H = (A.T * A) * (2 * mp.mpf(cost_scale))
        return sorted(mp.eigsy(H)[0])


def _ill(offset, spread, n=20, d=1, seed=0):
    rng = np.random.default_rng(seed)
    X = offset + spread * rng.standard_normal((n, d))
    y = X @ np.arange(1.0, d + 1) + rng.standard_normal(n)
    return E.Problem(X, y)


@pytest.mark.parametrize("offset, spread, d", [
    (1e5, 1.0, 1),       # κ ≈ (x̄/σ)⁴ ≈ 1e20
    (1e8, 1e-3, 1),      # the case: exact λ_min ≈ 1e-22, κ ≈ 1e38
    (0.0, 1.0, 3),       # well conditioned
    (1e3, 1e-2, 2),      # κ ≈ 1e20 with two features
])
def test_spectrum_matches_60_digit_arithmetic_at_any_conditioning(offset, spread, d):
    p = _ill(offset, spread, d=d)
    want = [float(v) for v in _mp_spectrum(p, 1.0 / p.n)]
    sp = T.spectrum(p)
    np.testing.assert_allclose(sp.values, want, rtol=1e-6)
    assert sp.lam_min > 0 and np.isfinite(sp.condition_number)
    # the slow eigenvector really is one: H v ≈ λ_min v relative to λ_min, via the factor
    G = T.factor(p)
    v = sp.vectors[:, 0]
    assert 2.0 / p.n * np.sum((G @ v) ** 2) == pytest.approx(sp.lam_min, rel=1e-6)


def test_kappa_1e20_lam_min_to_1e6_relative():
    p = _ill(1e5, 1.0)
    want = _mp_spectrum(p, 1.0 / p.n)
    kappa = float(want[-1] / want[0])
    assert 1e19 < kappa < 1e21
    assert T.spectrum(p).lam_min == pytest.approx(float(want[0]), rel=1e-6)


def test_line_search_rate_that_rounds_to_one_is_kept_through_log1p():
    import mpmath as mp

    p = _ill(1e5, 1.0)
    s = E.Settings(optimizer="line_search", line_search="exact")
    kappa = T.spectrum(p, s).condition_number
    assert ((kappa - 1.0) / (kappa + 1.0)) ** 2 == 1.0  # the naive rate is useless here
    _, costs = P.predictions(p, s, 1.0, (0.0, 0.0), (0.1,), (1e-2,), 10**6)
    with mp.workdps(60):
        k = mp.mpf(kappa)
        log_rate = 2 * mp.log((k - 1) / (k + 1))
        gap0 = mp.mpf(T.gap(p, s, (0.0, 0.0)))
        target = mp.mpf(1e-2) * mp.mpf(T.gap_denominator(p)[0])
        want = mp.ceil(mp.log(target / gap0) / log_rate)
    assert costs[1e-2].epochs is None
    assert costs[1e-2].estimate == pytest.approx(float(want), rel=1e-9)
    assert "not reachable in double precision" in costs[1e-2].reason


def test_plain_gd_epochs_far_beyond_the_cap_match_60_digit_arithmetic():
    """First epoch with ‖θ_n − θ*‖ ≤ t from Σ c_i²(1 − lr·λ_i)²ⁿ, solved in 60 digits."""
    import mpmath as mp

    p = _ill(3e3, 1.0)  # κ ≈ 1e14: the slow factor 1 − lr·λ_min is about 1 − 1e-14
    lr = 0.5 * T.lr_max(p)
    init = (0.0, 0.0)
    params, _ = P.predictions(p, E.Settings(), lr, init, (1e-3,), (), 10**6)
    sp = T.spectrum(p)
    c = sp.vectors.T @ (np.array(init) - p.ols_theta)
    with mp.workdps(60):
        lam = [mp.mpf(float(v)) for v in sp.values]
        cc = [mp.mpf(float(v)) for v in c]

        def dist2(n):
            return sum(ci ** 2 * (1 - mp.mpf(lr) * li) ** (2 * n)
                       for ci, li in zip(cc, lam, strict=True))

        lo, hi = mp.mpf(0), mp.mpf(10) ** 30
        while hi - lo > 1:
            mid = mp.floor((lo + hi) / 2)
            lo, hi = (lo, mid) if dist2(mid) <= mp.mpf(1e-3) ** 2 else (mid, hi)
    assert params[1e-3].epochs is None and params[1e-3].estimate > 10**6
    assert params[1e-3].estimate == pytest.approx(float(hi), rel=1e-6)
    assert params[1e-3].reason.startswith("more than 10^")
