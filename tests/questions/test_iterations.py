"""study/questions/iterations.py: measured first epochs against a hand-written GD loop, the
cures reaching their targets, the cap, and the values a reader can type back."""

from __future__ import annotations

from decimal import ROUND_CEILING

import numpy as np
import pytest

from study.core import engine as E
from study.questions.iterations import (
    PROBE_EPOCHS,
    cures,
    gap_digits,
    measure,
    plain,
    stop_tolerance,
    typed,
)

PARAM_TOLS = (0.1, 0.01, 0.001)
COST_TOLS = (1e-2, 1e-4)


def design(problem) -> tuple[np.ndarray, np.ndarray]:
    return np.column_stack([problem.X, np.ones(problem.n)]), problem.y


def gd_loop_first_epochs(problem, lr: float, start, epochs: int) -> tuple[dict, dict]:
    """Plain GD on the mse by hand, g = −(2/N)Aᵀ(y − Aθ): the first epoch n ≥ 0 with
    ‖θ_n − θ*‖ ≤ t (θ* by np.linalg.lstsq) and with (J_n − J*)/J* ≤ t."""
    A, y = design(problem)
    theta_star = np.linalg.lstsq(A, y, rcond=None)[0]
    j_star = np.mean((y - A @ theta_star) ** 2)
    theta = np.array(start, dtype=float)
    first_p = dict.fromkeys(PARAM_TOLS)
    first_c = dict.fromkeys(COST_TOLS)
    for n in range(epochs + 1):
        dist = np.linalg.norm(theta - theta_star)
        gap = (np.mean((y - A @ theta) ** 2) - j_star) / j_star
        for t in PARAM_TOLS:
            if first_p[t] is None and dist <= t:
                first_p[t] = n
        for t in COST_TOLS:
            if first_c[t] is None and gap <= t:
                first_c[t] = n
        theta = theta + lr * (2.0 / len(y)) * A.T @ (y - A @ theta)
    return first_p, first_c


@pytest.mark.parametrize("start", [(0.0, 0.0), (2.0, -1.0), (-3.0, 4.0)])
@pytest.mark.parametrize("lr", [0.05, 0.3])
def test_measured_first_epochs_equal_a_hand_written_loop(well_conditioned, lr, start):
    [run] = measure(well_conditioned, [plain(lr, E.Settings())], [start], PARAM_TOLS,
                    COST_TOLS, 10_000)
    want_p, want_c = gd_loop_first_epochs(well_conditioned, lr, start, 2_000)
    assert run.status == "converged" and run.init == start
    assert {t: run.target("param", t).measured_epochs for t in PARAM_TOLS} == want_p
    assert {t: run.target("cost", t).measured_epochs for t in COST_TOLS} == want_c
    assert all(v is not None for v in [*want_p.values(), *want_c.values()])


def test_measure_is_method_major_and_keeps_every_start(well_conditioned):
    methods = [plain(0.05, E.Settings()), plain(0.2, E.Settings())]
    starts = [(0.0, 0.0), (1.0, 1.0)]
    runs = measure(well_conditioned, methods, starts, (0.01,), (1e-3,), 5_000)
    assert [(r.method.lr, r.init) for r in runs] == [(m.lr, s) for m in methods for s in starts]


def test_every_cure_reaches_the_targets(well_conditioned):
    A, y = design(well_conditioned)
    theta_star = np.linalg.lstsq(A, y, rcond=None)[0]
    methods = cures(well_conditioned, E.Settings())
    assert [m.name for m in methods] == ["largest_stable_lr", "best_lr", "standardized",
                                         "momentum", "exact_line_search",
                                         "backtracking_line_search"]
    runs = measure(well_conditioned, methods, [(0.0, 0.0), (3.0, -2.0)], PARAM_TOLS,
                   COST_TOLS, 20_000)
    for r in runs:
        assert r.status != "diverged", r.method.name
        for t in r.targets:
            assert t.measured_epochs is not None and t.measured_epochs <= r.epochs_run, \
                (r.method.name, t)
        assert np.linalg.norm(r.theta - theta_star) <= min(PARAM_TOLS), r.method.name
        assert r.dist_to_ols == pytest.approx(np.linalg.norm(r.theta - theta_star), abs=1e-12)


def test_the_cures_are_faster_than_a_small_plain_lr(valley):
    """On an ill-conditioned problem (κ ≈ 2·10³) standardizing, momentum and exact line search
    each need fewer epochs than plain GD at a tenth of lr_max."""
    A, _ = design(valley)
    lam_max = np.linalg.eigvalsh((2.0 / valley.n) * A.T @ A).max()
    slow = plain(0.2 / lam_max, E.Settings())
    named = {m.name: m for m in cures(valley, E.Settings())}
    methods = [slow, named["standardized"], named["momentum"], named["exact_line_search"]]
    runs = measure(valley, methods, [(0.0, 0.0)], (0.01,), (1e-4,), 2_000_000)
    epochs = {r.method.name: r.target("param", 0.01).measured_epochs for r in runs}
    assert all(v is not None for v in epochs.values()), epochs
    for name in ("standardized", "momentum", "exact_line_search"):
        assert epochs[name] < epochs["gd"], epochs
    assert epochs["standardized"] < 100


def test_the_cap_is_respected(well_conditioned):
    methods = [plain(1e-4, E.Settings()), *cures(well_conditioned, E.Settings())[-1:]]
    runs = measure(well_conditioned, methods, [(5.0, 5.0)], (1e-6,), (1e-12,), 50)
    for r in runs:
        assert r.epochs_run <= 50 and r.budget <= 50, r.method.name
    slow = runs[0]
    assert slow.status == "max_epochs" and slow.epochs_run == 50
    assert all(t.measured_epochs is None for t in slow.targets)
    # the hand loop agrees nothing is reached in 50 epochs at lr 1e-4
    A, y = design(well_conditioned)
    theta = np.array([5.0, 5.0])
    for _ in range(50):
        theta = theta + 1e-4 * (2.0 / len(y)) * A.T @ (y - A @ theta)
    np.testing.assert_allclose(slow.theta, theta, rtol=1e-10)


def test_theory_ruled_out_targets_stop_before_the_cap_with_a_note(well_conditioned):
    """At lr 1e-5 the slow mode shrinks by 1 − lr·λ_min per epoch: ‖θ − θ*‖ ≤ 0.001 needs far
    more than a cap of 100,000 epochs, so the run stops early and says why."""
    A, _ = design(well_conditioned)
    lam_min = np.linalg.eigvalsh((2.0 / well_conditioned.n) * A.T @ A).min()
    assert (1.0 - 1e-5 * lam_min) ** 100_000 > 0.01  # < 2 decades in the cap: not reachable
    [r] = measure(well_conditioned, [plain(1e-5, E.Settings())], [(0.0, 0.0)], (1e-3,),
                  (1e-6,), 100_000)
    assert r.epochs_run < 100_000 and r.budget < 100_000
    assert r.note and "theory says" in r.note
    assert r.target("param", 1e-3).measured_epochs is None


def test_a_too_large_lr_is_measured_diverging(well_conditioned):
    A, _ = design(well_conditioned)
    lam_max = np.linalg.eigvalsh((2.0 / well_conditioned.n) * A.T @ A).max()
    [r] = measure(well_conditioned, [plain(2.5 / lam_max, E.Settings())], [(1.0, 1.0)],
                  (0.01,), (1e-3,), 10_000)
    assert r.status == "diverged" and r.diverged_at is not None and r.diverged_at < 10_000
    assert all(t.measured_epochs is None for t in r.targets)


def test_line_searches_probe_first_then_run_on(well_conditioned):
    named = {m.name: m for m in cures(well_conditioned, E.Settings())}
    runs = measure(well_conditioned, [named["backtracking_line_search"]], [(0.0, 0.0)],
                   (0.01,), (1e-3,), 10 * PROBE_EPOCHS)
    assert runs[0].budget == PROBE_EPOCHS and runs[0].status == "converged"


def test_plain_flags_carry_the_exact_float():
    m = plain(0.1 + 0.2, E.Settings())
    assert m.name == "gd" and m.prediction == "exact"
    assert float(m.flags.split()[-1]) == m.lr == 0.1 + 0.2


@pytest.mark.parametrize("value", [0.123456789, 4.0129643623e-4, 98765.4321, -3.14159])
def test_typed_reads_back_as_the_float_it_returns(value):
    for digits in (3, 4, 7):
        down = typed(value, digits)
        assert float(format(down, f".{digits}g")) == down
        assert down <= value and abs(value - down) <= abs(value) * 10.0 ** (1 - digits)
        up = typed(value, digits, ROUND_CEILING)
        assert up >= value and float(format(up, f".{digits}g")) == up


def test_typed_keeps_zero_and_non_finite_values():
    assert typed(0.0, 4) == 0.0
    assert np.isinf(typed(float("inf"), 4)) and np.isnan(typed(float("nan"), 4))


@pytest.mark.parametrize("kappa", [1.0, 9.0, 99.0, 66_031.0, 1e12])
def test_gap_digits_keep_the_best_lr_within_one_percent_of_its_gap(kappa):
    """With lr_max = 1, lr_best = κ/(κ + 1) sits 1/(κ + 1) below it: rounded down to
    gap_digits(κ) digits it moves by at most 1 % of that gap and stays below lr_max."""
    n = gap_digits(kappa)
    assert 4 <= n < 17
    best = kappa / (kappa + 1.0)
    shown = typed(best, n)
    assert 0.0 <= best - shown <= 0.01 / (kappa + 1.0)
    assert shown < 1.0


def test_gap_digits_are_capped_at_double_precision():
    assert gap_digits(1e20) == gap_digits(float("inf")) == 17


def test_stop_tolerance_is_the_tightest_distance_the_targets_need(well_conditioned):
    A, y = design(well_conditioned)
    lam_max = np.linalg.eigvalsh((2.0 / len(y)) * A.T @ A).max()
    j_star = np.mean((y - A @ np.linalg.lstsq(A, y, rcond=None)[0]) ** 2)
    got = stop_tolerance(well_conditioned, E.Settings(), (0.1, 0.01), (1e-6,))
    assert got == pytest.approx(min(0.01, np.sqrt(2.0 * 1e-6 * j_star / lam_max)), rel=1e-9)
