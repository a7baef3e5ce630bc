"""The engine against independent references: published output, hand-written loops, lstsq."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from study.core import engine as E
from study.core import kernels as K
from study.core.problem import Problem

SCALE = {"mse": lambda n: 1.0 / n, "half_mse": lambda n: 0.5 / n, "sse": lambda n: 1.0}


def ref_loop(x, y, lr, epochs, theta0, *, cost="mse", update="simultaneous", beta=0.0,
             optimizer="gd", batch=None, seed=0, line_search=None, armijo=1e-4, shrink=0.5):
    """Straightforward per-point loop in the tutorials' style (one feature): θ after each epoch."""
    m, b = theta0
    n = len(x)
    s = SCALE[cost](n)
    vm = vb = 0.0
    rng = np.random.RandomState(seed)
    path = [(m, b)]

    def grads(m, b, idx):
        gm = gb = 0.0
        for i in idx:
            r = m * x[i] + b - y[i]
            gm += x[i] * r
            gb += r
        k = 2.0 * s * n / len(idx)
        return k * gm, k * gb

    def cost_of(m, b):
        return s * sum((m * x[i] + b - y[i]) ** 2 for i in range(n))

    everyone = range(n)
    for _ in range(epochs):
        if optimizer == "minibatch":
            perm = rng.permutation(n)
            for start in range(0, n, batch):
                part = perm[start:start + batch]
                if update == "sequential":  # m first, then b with the new m
                    m -= lr * grads(m, b, part)[0]
                    b -= lr * grads(m, b, part)[1]
                else:
                    gm, gb = grads(m, b, part)
                    m, b = m - lr * gm, b - lr * gb
        elif optimizer == "line_search":
            gm, gb = grads(m, b, everyone)
            gg = gm * gm + gb * gb
            if line_search == "exact":
                # exact minimiser of the quadratic along −g: t = gᵀg / gᵀHg
                hg = [2 * s * sum(x[i] * (x[i] * gm + gb) for i in everyone),
                      2 * s * sum(x[i] * gm + gb for i in everyone)]
                t = gg / (gm * hg[0] + gb * hg[1])
            else:
                t, j0 = lr, cost_of(m, b)
                while cost_of(m - t * gm, b - t * gb) > j0 - armijo * t * gg:
                    t *= shrink
            m, b = m - t * gm, b - t * gb
        elif update == "sequential":
            gm, _ = grads(m, b, everyone)
            vm = beta * vm - lr * gm
            m += vm
            _, gb = grads(m, b, everyone)
            vb = beta * vb - lr * gb
            b += vb
        else:
            gm, gb = grads(m, b, everyone)
            vm, vb = beta * vm - lr * gm, beta * vb - lr * gb
            m, b = m + vm, b + vb
        path.append((m, b))
    return np.array(path)


@pytest.fixture(scope="module")
def small() -> Problem:
    rng = np.random.default_rng(3)
    x = rng.uniform(0.0, 4.0, 12)
    return Problem(x[:, None], 1.3 * x + 2.0 + rng.normal(0.0, 0.5, 12))


def test_reproduces_the_articles_published_output(nedrich):
    r = E.run_one(nedrich, E.Trial(lr=1e-4, epochs=1000, init=(0.0, 0.0)))
    assert r.initial_cost == pytest.approx(5565.10783448, rel=1e-10)
    assert r.theta[1] == pytest.approx(0.0889365199374, rel=1e-10)
    assert r.theta[0] == pytest.approx(1.47774408519, rel=1e-10)
    assert r.cost == pytest.approx(112.614810116, rel=1e-10)
    assert r.status == "max_epochs" and r.epochs_run == 1000


# One row per update rule of the kernels' registry: its name, its settings, a learning rate for
# the reference-loop test, and the reference loop's arguments.
RULE_TABLE = [
    (("gd", "simultaneous"), dict(), 0.01, dict()),
    (("gd", "sequential"), dict(update="sequential"), 0.01, dict(update="sequential")),
    (("momentum", "simultaneous"), dict(optimizer="momentum", momentum=0.8), 0.005,
     dict(beta=0.8)),
    (("momentum", "sequential"), dict(optimizer="momentum", momentum=0.5, update="sequential"),
     0.005, dict(beta=0.5, update="sequential")),
    (("minibatch", "simultaneous"), dict(optimizer="minibatch", batch_size=5, seed=9), 0.005,
     dict(optimizer="minibatch", batch=5, seed=9)),
    (("minibatch", "sequential"),
     dict(optimizer="minibatch", batch_size=5, seed=9, update="sequential"), 0.005,
     dict(optimizer="minibatch", batch=5, seed=9, update="sequential")),
    (("line_search", "backtracking"), dict(optimizer="line_search", line_search="backtracking"),
     1.0, dict(optimizer="line_search", line_search="backtracking")),
    (("line_search", "exact"), dict(optimizer="line_search", line_search="exact"), 1.0,
     dict(optimizer="line_search", line_search="exact")),
]
RULE_IDS = [", ".join(row[0]) for row in RULE_TABLE]


def test_the_rule_table_has_a_row_per_registered_rule():
    names = [row[0] for row in RULE_TABLE]
    assert sorted(names) == sorted(K.RULES)
    assert all(E.rule_name(E.Settings(**row[1])) == row[0] for row in RULE_TABLE)


def _matches_reference_loop(problem, settings, lr, ref):
    x, y = problem.X[:, 0], problem.y
    epochs = 40
    want = ref_loop(x, y, lr, epochs, (0.5, -1.0), **ref)
    r = E.run_one(problem, E.Trial(lr, epochs, (0.5, -1.0),
                                   E.Settings(**settings, history_points=200, record_path=True)))
    assert r.status == "max_epochs"
    np.testing.assert_allclose(r.history_theta, want[r.history_epoch], rtol=1e-9, atol=1e-12)
    got_cost = problem.cost(want[-1], settings.get("cost", "mse"))
    assert r.cost == pytest.approx(got_cost, rel=1e-9)


@pytest.mark.parametrize(("name", "settings", "lr", "ref"), RULE_TABLE, ids=RULE_IDS)
def test_each_rule_matches_its_reference_loop(small, name, settings, lr, ref):
    _matches_reference_loop(small, settings, lr, ref)


@pytest.mark.parametrize(("name", "settings", "lr", "ref"), RULE_TABLE, ids=RULE_IDS)
def test_each_rule_reaches_ols_on_a_well_conditioned_problem(well_conditioned, name, settings,
                                                             lr, ref):
    p = well_conditioned
    want, *_ = np.linalg.lstsq(np.column_stack([p.X, np.ones(p.n)]), p.y, rcond=None)
    if name[0] == "minibatch":  # one batch = full batch: reaches θ* exactly
        settings = {**settings, "batch_size": p.n}
    lr = 1.0 if name[0] == "line_search" else 0.2
    r = E.run_one(p, E.Trial(lr, 5000, (3.0, -2.0), E.Settings(**settings, tol_param=1e-9)))
    assert r.status == "converged"
    np.testing.assert_allclose(r.theta, want, atol=1e-8)


@pytest.mark.parametrize(("cost", "lr"), [("half_mse", 0.02), ("sse", 0.001)])
def test_cost_conventions_match_reference_loops(small, cost, lr):
    _matches_reference_loop(small, dict(cost=cost), lr, dict(cost=cost))


OPTIONS = [
    dict(standardize=True),
    dict(standardize=True, update="sequential"),
    dict(cost="half_mse"),
    dict(cost="sse"),
]


@pytest.mark.parametrize("settings", OPTIONS, ids=lambda s: ",".join(map(str, s.values())))
def test_options_reach_ols_on_a_well_conditioned_problem(well_conditioned, settings):
    p = well_conditioned
    want, *_ = np.linalg.lstsq(np.column_stack([p.X, np.ones(p.n)]), p.y, rcond=None)
    lr = {"sse": 0.005}.get(settings.get("cost"), 0.2)
    r = E.run_one(p, E.Trial(lr, 5000, (3.0, -2.0), E.Settings(**settings, tol_param=1e-9)))
    assert r.status == "converged"
    np.testing.assert_allclose(r.theta, want, atol=1e-8)


def test_multivariate_reaches_lstsq(multivariate):
    p = multivariate
    want, *_ = np.linalg.lstsq(np.column_stack([p.X, np.ones(p.n)]), p.y, rcond=None)
    for update in ("simultaneous", "sequential"):
        r = E.run_one(p, E.Trial(0.1, 20_000, (0.0,) * 4,
                                 E.Settings(update=update, tol_param=1e-10)))
        assert r.status == "converged"
        np.testing.assert_allclose(r.theta, want, atol=1e-9)
    assert p.param_names == ("w1", "w2", "w3", "b")


def test_sequential_multivariate_follows_coordinate_order(multivariate):
    p = multivariate
    Xa = np.column_stack([p.X, np.ones(p.n)])
    theta, lr = np.zeros(4), 0.05
    for _ in range(25):
        for j in range(4):  # each coordinate sees the ones already updated, intercept last
            theta[j] -= lr * (2.0 / p.n) * Xa[:, j] @ (Xa @ theta - p.y)
    r = E.run_one(p, E.Trial(lr, 25, (0.0,) * 4, E.Settings(update="sequential")))
    np.testing.assert_allclose(r.theta, theta, rtol=1e-11)


def test_standardize_maps_back_to_original_units(nedrich):
    r = E.run_one(nedrich, E.Trial(0.5, 200, (0.0, 0.0), E.Settings(standardize=True)))
    m, b = np.polyfit(nedrich.X[:, 0], nedrich.y, 1)
    assert r.theta == pytest.approx([m, b], rel=1e-10)
    assert r.dist_to_ols < 1e-10


def test_large_offsets_keep_precision():
    rng = np.random.default_rng(5)
    x = 1e6 + rng.uniform(-1.0, 1.0, 50)
    y = 2.5 * (x - 1e6) - 3.0 + rng.normal(0.0, 0.1, 50)
    p = Problem(x[:, None], y)
    # exact OLS via the centered normal equations in extended precision
    xc, yc = x - x.mean(), y - y.mean()
    slope = float(np.sum(np.longdouble(xc) * yc) / np.sum(np.longdouble(xc) ** 2))
    assert p.ols_theta[0] == pytest.approx(slope, rel=1e-9)
    r = E.run_one(p, E.Trial(0.5, 2000, (0.0, 0.0), E.Settings(standardize=True)))
    assert r.theta[0] == pytest.approx(slope, rel=1e-9)
    assert r.cost == pytest.approx(np.mean((y - slope * x - p.ols_theta[1]) ** 2), rel=1e-6)


def test_batch_independence_to_the_last_bit(nedrich):
    rng = np.random.default_rng(0)
    trials = [E.Trial(float(lr), int(ep), (float(m), float(b)))
              for lr, ep, m, b in zip(rng.uniform(1e-6, 6e-4, 1000), rng.integers(1, 3000, 1000),
                                      rng.normal(0, 3, 1000), rng.normal(0, 10, 1000),
                                      strict=True)]
    batch = E.run(nedrich, trials)
    for i in (0, 17, 500, 999):
        alone = E.run_one(nedrich, trials[i])
        assert np.array_equal(alone.theta, batch[i].theta)
        assert alone.cost == batch[i].cost and alone.status == batch[i].status
        assert np.array_equal(alone.history_cost, batch[i].history_cost)


@pytest.mark.parametrize(("factor", "within"), [(1.01, 100), (1.5, 5), (10.0, 2)])
def test_divergence_is_a_status_found_early_without_warnings(nedrich, factor, within):
    lr_max = 2.0 / np.linalg.eigvalsh(
        (2.0 / nedrich.n) * np.column_stack([nedrich.X, np.ones(nedrich.n)]).T
        @ np.column_stack([nedrich.X, np.ones(nedrich.n)]))[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = E.run_one(nedrich, E.Trial(factor * lr_max, 2000, (0.0, 0.0)))
    assert r.status == "diverged"
    assert r.diverged_at is not None and 1 <= r.diverged_at <= within
    assert np.all(np.isfinite(r.history_cost)) and np.all(np.isfinite(r.theta))
    assert r.history_epoch[-1] <= r.diverged_at
    below = E.run_one(nedrich, E.Trial(0.99 * lr_max, 2000, (0.0, 0.0)))
    assert below.status == "max_epochs"


def test_overflow_to_inf_keeps_last_finite_values(small):
    r = E.run_one(small, E.Trial(1e200, 50, (1.0, 1.0), E.Settings(divergence_factor=1e300)))
    assert r.status == "diverged"
    assert np.all(np.isfinite(r.theta)) and np.isfinite(r.cost)
    assert np.all(np.isfinite(r.history_cost))


def test_history_is_bounded_and_matches_the_loop(small):
    epochs = 2600
    r = E.run_one(small, E.Trial(0.01, epochs, (0.0, 0.0),
                                 E.Settings(history_points=50, history_dense=10)))
    assert r.history_epoch[0] == 0 and r.history_epoch[-1] == epochs
    assert len(r.history_epoch) <= 50 and np.all(np.diff(r.history_epoch) > 0)
    assert list(r.history_epoch[:11]) == list(range(11))
    path = ref_loop(small.X[:, 0], small.y, 0.01, epochs, (0.0, 0.0))
    want = [small.cost(path[e]) for e in r.history_epoch]
    np.testing.assert_allclose(r.history_cost, want, rtol=1e-9)


def test_checkpoints_schedule():
    for epochs, points in [(0, 10), (5, 10), (1_000_000, 200), (3, 2), (250, 250)]:
        ck = E.checkpoints(epochs, points, 100)
        assert ck[0] == 0 and len(ck) <= points - 1
        assert ck[-1] == epochs or points == 2
        assert np.all(np.diff(ck) > 0)


def test_first_epoch_records_match_the_loop(small):
    path = ref_loop(small.X[:, 0], small.y, 0.01, 3000, (0.0, 0.0))
    dist = np.linalg.norm(path - small.ols_theta, axis=1)
    gap = np.array([small.cost(t) for t in path]) / small.ols_cost() - 1.0
    settings = E.Settings(param_tols=(0.5, 0.05), cost_tols=(0.1, 0.001))
    r = E.run_one(small, E.Trial(0.01, 3000, (0.0, 0.0), settings))
    for t in (0.5, 0.05):
        assert r.first_param_epoch[t] == int(np.argmax(dist <= t))
    for t in (0.1, 0.001):
        assert r.first_cost_epoch[t] == int(np.argmax(gap <= t))


def test_stopping_tolerances(small):
    r = E.run_one(small, E.Trial(0.01, 100_000, (0.0, 0.0), E.Settings(tol_param=0.01)))
    assert r.status == "converged" and r.dist_to_ols <= 0.01
    path = ref_loop(small.X[:, 0], small.y, 0.01, r.epochs_run, (0.0, 0.0))
    assert np.linalg.norm(path[-2] - small.ols_theta) > 0.01
    g = E.run_one(small, E.Trial(0.01, 100_000, (0.0, 0.0), E.Settings(tol_grad=1e-3)))
    assert g.status == "converged" and g.grad_norm <= 1e-3
    c = E.run_one(small, E.Trial(0.01, 100_000, (0.0, 0.0), E.Settings(tol_cost_change=1e-9)))
    assert c.status == "converged" and c.epochs_run < 100_000


def test_cost_convention_only_rescales_the_learning_rate(small):
    a = E.run_one(small, E.Trial(0.01, 500, (0.0, 0.0), E.Settings(cost="mse")))
    b = E.run_one(small, E.Trial(0.02, 500, (0.0, 0.0), E.Settings(cost="half_mse")))
    c = E.run_one(small, E.Trial(0.01 / small.n, 500, (0.0, 0.0), E.Settings(cost="sse")))
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-12)
    np.testing.assert_allclose(a.theta, c.theta, rtol=1e-12)


def test_engine_and_theory_import_numpy_only():
    # (numba itself may import yaml for its own settings: that is the compiler, not our I/O)
    code = ("import sys, study.core.engine, study.core.theory; "
            "bad = [m for m in ('optuna', 'mlflow', 'pandas', 'matplotlib', 'pydantic') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
