"""The compiled update rules, one epoch each, against numpy written from their equations."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from study.core import kernels as K


@njit
def _seed(seed):
    np.random.seed(seed)  # noqa: NPY002  (numba's generator, the one the kernels draw from)


def _problem(d: int, seed: int = 0):
    """A quadratic in working coordinates, and the (X | 1), y it comes from: J = s‖Xθ − y‖²."""
    rng = np.random.default_rng(seed)
    n = 30
    X = rng.normal(1.0, 2.0, (n, d))
    Xa = np.column_stack([X, np.ones(n)])
    y = Xa @ rng.normal(size=d + 1) + rng.normal(0.0, 0.3, n)
    theta_star = np.linalg.lstsq(Xa, y, rcond=None)[0]
    U = X - X.mean(axis=0)
    residual = y - Xa @ theta_star
    s = 1.0 / n
    quad = K.Quadratic(s, float(n), X.mean(axis=0), U.T @ U, U, residual, np.eye(d + 1),
                       theta_star, s * residual @ residual)
    return quad, Xa, y


def _reference(quad, Xa, y):
    """J and ∇J of θ = θ* + δ, and the Hessian H = 2s XᵀX, straight from the data."""
    def cost(delta):
        r = Xa @ (quad.theta_star + delta) - y
        return quad.s * r @ r

    def grad(delta, rows=slice(None)):
        r = Xa[rows] @ (quad.theta_star + delta) - y[rows]
        return 2.0 * quad.s * Xa[rows].T @ r

    return cost, grad, 2.0 * quad.s * Xa.T @ Xa


def _epoch(step, rule, delta, quad, gap=0.0):
    z = delta.copy()
    step(rule, 0, z, delta.copy(), gap, quad, np.empty((2, delta.size)))
    return z


@pytest.mark.parametrize("d", [1, 3])
def test_linear_map_is_the_matrix_product(d):
    quad, _, _ = _problem(d)
    rng = np.random.default_rng(1)
    M = rng.normal(size=(2, d + 1, d + 1))
    delta = rng.normal(size=d + 1)
    got = _epoch(K.linear_map, K.LinearMap(M), delta, quad)
    np.testing.assert_allclose(got, M[0] @ delta, rtol=1e-13)


@pytest.mark.parametrize("d", [1, 3])
def test_exact_line_search_minimises_along_the_gradient(d):
    quad, Xa, y = _problem(d)
    _, grad, H = _reference(quad, Xa, y)
    delta = np.random.default_rng(2).normal(size=d + 1)
    g = grad(delta)
    want = delta - (g @ g) / (g @ H @ g) * g
    np.testing.assert_allclose(_epoch(K.exact_line_search, K.Exact(), delta, quad), want,
                               rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("lr", [1e-3, 10.0])
def test_armijo_takes_the_first_step_with_sufficient_decrease(lr):
    quad, Xa, y = _problem(2)
    cost, grad, _ = _reference(quad, Xa, y)
    delta = np.random.default_rng(3).normal(size=3)
    g, t = grad(delta), lr
    while cost(delta - t * g) > cost(delta) - 1e-4 * t * (g @ g):
        t *= 0.5
    gap = cost(delta) - quad.j_star
    got = _epoch(K.armijo_line_search, K.Armijo(np.array([lr]), 1e-4, 0.5), delta, quad, gap)
    np.testing.assert_allclose(got, delta - t * g, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("sequential", [False, True])
def test_minibatch_is_one_pass_over_a_seeded_permutation(sequential):
    quad, Xa, y = _problem(2)
    _, grad, _ = _reference(quad, Xa, y)
    n, batch, lr = Xa.shape[0], 7, 0.01
    delta = np.random.default_rng(4).normal(size=3)
    want = delta.copy()
    perm = np.random.RandomState(5).permutation(n)
    for start in range(0, n, batch):
        rows = perm[start:start + batch]
        scale = n / rows.size  # (N/|B|): the batch's unbiased estimate of the full gradient
        if sequential:
            for j in range(3):
                want[j] -= lr * scale * grad(want, rows)[j]
        else:
            want -= lr * scale * grad(want, rows)
    _seed(5)
    got = _epoch(K.minibatch_sgd, K.Minibatch(np.array([lr]), batch, sequential), delta, quad)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_every_rule_is_a_compiled_equation_with_a_named_tuple_of_parameters():
    for name, rule in K.RULES.items():
        assert "←" in rule.step.__doc__, name
        assert issubclass(rule.params, tuple) and hasattr(rule.params, "_fields"), name
    steps = {}
    for rule in K.RULES.values():  # one step per parameter type: the type picks the step
        assert steps.setdefault(rule.params, rule.step) is rule.step
