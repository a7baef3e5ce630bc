"""study.core.problem: sufficient statistics, the OLS optimum and the cost conventions, each
checked against numpy on the raw data (np.linalg.lstsq, direct sums)."""

from __future__ import annotations

import numpy as np
import pytest

from study.core.problem import COST_SCALES, Problem, cost_scale


def _lstsq(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    A = np.column_stack([X, np.ones(len(y))])
    return np.linalg.lstsq(A, y, rcond=None)[0]


def _data(n: int, d: int, seed: int, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = offset + rng.normal(0.0, 3.0, (n, d))
    w = rng.uniform(-2.0, 2.0, d)
    y = (X - offset) @ w + 5.0 + rng.normal(0.0, 0.5, n)
    return X, y


@pytest.mark.parametrize("d", [1, 3])
def test_stats_match_numpy_on_the_raw_data(d):
    X, y = _data(50, d, seed=d)
    stats = Problem(X, y).stats
    U, v = X - X.mean(axis=0), y - y.mean()
    assert stats.n == 50
    np.testing.assert_allclose(stats.x_mean, X.mean(axis=0), rtol=1e-14)
    assert stats.y_mean == pytest.approx(y.mean(), rel=1e-14)
    np.testing.assert_allclose(stats.sxx, np.cov(X.T, bias=True).reshape(d, d) * 50, rtol=1e-12)
    np.testing.assert_allclose(stats.sxy, U.T @ v, rtol=1e-12)
    assert stats.syy == pytest.approx(np.var(y) * 50, rel=1e-12)


def test_stats_hand_written_loop_one_feature():
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    y = [1.0, 3.0, 3.0, 3.0, 5.0]
    stats = Problem(x, y).stats
    xm, ym = sum(x) / 5, sum(y) / 5
    sxx = sum((a - xm) ** 2 for a in x)
    sxy = sum((a - xm) * (b - ym) for a, b in zip(x, y, strict=True))
    syy = sum((b - ym) ** 2 for b in y)
    assert stats.sxx.shape == (1, 1) and stats.sxx[0, 0] == pytest.approx(sxx)
    assert stats.sxy[0] == pytest.approx(sxy) and stats.syy == pytest.approx(syy)
    assert (xm, ym) == (3.0, 3.0)


@pytest.mark.parametrize("d", [1, 2, 5])
def test_ols_theta_matches_lstsq(d):
    X, y = _data(80, d, seed=10 + d)
    problem = Problem(X, y)
    np.testing.assert_allclose(problem.ols_theta, _lstsq(X, y), rtol=1e-10, atol=1e-10)
    assert problem.ols_theta.shape == (d + 1,)


def test_ols_of_tutorial_c_is_the_closed_form():
    problem = Problem([1, 2, 3, 4, 5], [1, 3, 3, 3, 5])
    np.testing.assert_allclose(problem.ols_theta, [0.8, 0.6], rtol=1e-12)
    # residuals 0.6, −0.2, −1.0, 0.2, 0.6 → Σ r² = 1.6
    assert problem.ols_sse == pytest.approx(1.6, rel=1e-12)


@pytest.mark.parametrize("d", [1, 3])
def test_large_offset_keeps_full_precision(d):
    """x ≈ 1e6 with unit spread: the slope is exact to ~1e-9 against lstsq on centered data."""
    rng = np.random.default_rng(3)
    Z = rng.normal(0.0, 1.0, (200, d))
    w = np.arange(1.0, d + 1.0)
    y = Z @ w + 2.0 + rng.normal(0.0, 0.01, 200)
    X = 1e6 + Z  # representable exactly enough: the spread is far above float64 rounding of 1e6
    problem = Problem(X, y)
    # independent reference: lstsq with the offset removed by hand, intercept shifted back
    ref = _lstsq(X - 1e6, y)
    np.testing.assert_allclose(problem.ols_theta[:-1], ref[:-1], rtol=1e-8)
    b_ref = ref[-1] - 1e6 * ref[:-1].sum()
    assert problem.ols_theta[-1] == pytest.approx(b_ref, rel=1e-8)
    np.testing.assert_allclose(problem.ols_theta[:-1], w, atol=0.01)
    r = y - (X - 1e6) @ ref[:-1] - ref[-1]
    assert problem.ols_sse == pytest.approx(r @ r, rel=1e-5)


def test_cost_scale_values_and_refusal():
    assert cost_scale("mse", 8) == 1 / 8
    assert cost_scale("half_mse", 8) == 1 / 16
    assert cost_scale("sse", 8) == 1.0
    assert set(COST_SCALES) == {"mse", "half_mse", "sse"}
    with pytest.raises(ValueError, match=r"cost must be one of .*; got 'mae'"):
        cost_scale("mae", 8)


@pytest.mark.parametrize("cost,scale", [("mse", lambda n: 1 / n), ("half_mse",
                                         lambda n: 1 / (2 * n)), ("sse", lambda n: 1.0)])
def test_cost_conventions_match_direct_sums(cost, scale):
    X, y = _data(30, 2, seed=5)
    problem = Problem(X, y)
    theta = np.array([0.5, -1.0, 3.0])
    sse = sum((y[i] - X[i, 0] * 0.5 + X[i, 1] * 1.0 - 3.0) ** 2 for i in range(30))
    assert problem.cost(theta, cost) == pytest.approx(scale(30) * sse, rel=1e-12)
    thetas = np.array([theta, problem.ols_theta, np.zeros(3)])
    many = problem.cost(thetas, cost)
    assert many.shape == (3,)
    for k, t in enumerate(thetas):
        r = y - X @ t[:-1] - t[-1]
        assert many[k] == pytest.approx(scale(30) * (r @ r), rel=1e-12)
    assert problem.ols_cost(cost) == pytest.approx(many[1], rel=1e-10)
    assert problem.ols_cost(cost) <= many.min() * (1 + 1e-12)


def test_cost_default_is_mse():
    problem = Problem([1, 2, 3, 4, 5], [1, 3, 3, 3, 5])
    assert problem.cost(np.array([0.0, 0.0])) == pytest.approx((1 + 9 + 9 + 9 + 25) / 5)
    assert problem.ols_cost() == pytest.approx(1.6 / 5)


def test_shapes_names_and_refusals():
    one = Problem(np.arange(4.0), np.arange(4.0))
    assert one.X.shape == (4, 1) and one.y.dtype == np.float64
    assert (one.n, one.d, one.param_names, one.x_names) == (4, 1, ("m", "b"), ("x",))
    three = Problem(np.ones((4, 3)), np.zeros((4, 1)))
    assert three.param_names == ("w1", "w2", "w3", "b")
    assert three.x_names == ("x1", "x2", "x3") and three.y.shape == (4,)
    named = Problem(np.ones((4, 2)), np.zeros(4), x_names=("a", "c"))
    assert named.x_names == ("a", "c")
    with pytest.raises(ValueError, match="X has 4 rows but y has 3"):
        Problem(np.ones(4), np.ones(3))
