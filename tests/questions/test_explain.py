"""study/questions/explain.py: the why (spectrum, slow direction, time constants, what a cost
tolerance allows) against np.linalg.eigvalsh of the Hessian, and the article's claims checked
on its data."""

from __future__ import annotations

import numpy as np
import pytest

from study.core import engine as E
from study.questions import answer as Q
from study.questions.explain import (
    ARTICLE_TEXT_LR,
    check_claims,
    criterion_text,
    explain,
    worst_start,
)


def mse_hessian(problem) -> np.ndarray:
    """H = (2/N)AᵀA, A = [X, 1]."""
    A = np.column_stack([problem.X, np.ones(problem.n)])
    return (2.0 / problem.n) * A.T @ A


@pytest.fixture(scope="module")
def small(well_conditioned):
    return Q.iterations(well_conditioned, lrs=[0.1, 0.5, 5.0], starts=[(0.0, 0.0), (2.0, -1.0)],
                        max_epochs=10_000)


@pytest.fixture(scope="module")
def several(multivariate):
    return Q.iterations(multivariate, lrs=[0.05], max_epochs=10_000)


@pytest.mark.parametrize("name", ["small", "several"])
def test_spectrum_facts_equal_eigvalsh_of_the_hessian(name, request):
    answer = request.getfixturevalue(name)
    problem = request.getfixturevalue("well_conditioned" if name == "small" else "multivariate")
    values, vectors = np.linalg.eigh(mse_hessian(problem))
    assert answer.lam_min == pytest.approx(values[0], rel=1e-10)
    assert answer.lam_max == pytest.approx(values[-1], rel=1e-10)
    assert answer.condition_number == pytest.approx(values[-1] / values[0], rel=1e-10)
    assert answer.lr_max == pytest.approx(2.0 / values[-1], rel=1e-10)
    slow = np.array(answer.why["slow_direction"])
    assert abs(slow @ vectors[:, 0]) == pytest.approx(1.0, abs=1e-10)  # up to sign
    assert np.linalg.norm(slow) == pytest.approx(1.0)


def test_time_constants_are_one_over_lr_lambda_min_below_lr_max(small, well_conditioned):
    lam_min, lam_max = np.linalg.eigvalsh(mse_hessian(well_conditioned))[[0, -1]]
    got = {tc["lr"]: tc["epochs"] for tc in small.why["time_constants"]}
    assert set(got) == {0.1, 0.5, 5.0}
    for lr in (0.1, 0.5):
        assert lr < 2.0 / lam_max
        assert got[lr] == pytest.approx(1.0 / (lr * lam_min), rel=1e-10)
    assert 5.0 >= 2.0 / lam_max and got[5.0] is None  # diverges: no time constant


def test_the_distance_a_cost_tolerance_allows_along_the_slow_direction(small, well_conditioned):
    """½λ_min δ² = t·J*: stepping that far from θ* along the slow eigenvector makes the
    relative cost gap exactly t (cost from the residuals)."""
    why = small.why
    A = np.column_stack([well_conditioned.X, np.ones(well_conditioned.n)])
    y = well_conditioned.y
    theta_star = np.linalg.lstsq(A, y, rcond=None)[0]
    j_star = np.mean((y - A @ theta_star) ** 2)
    theta = theta_star + why["dist_allowed_at_cost_tol"] * np.array(why["slow_direction"])
    gap = (np.mean((y - A @ theta) ** 2) - j_star) / j_star
    assert why["cost_tol"] == min(small.cost_tols)
    assert gap == pytest.approx(why["cost_tol"], rel=1e-6)


def test_start_components_are_projections_on_the_eigenvectors(small, well_conditioned):
    _, vectors = np.linalg.eigh(mse_hessian(well_conditioned))
    theta_star = np.linalg.lstsq(np.column_stack([well_conditioned.X,
                                                  np.ones(well_conditioned.n)]),
                                 well_conditioned.y, rcond=None)[0]
    for s in small.why["starts"]:
        delta = np.array(s["init"]) - theta_star
        assert abs(s["slow_component"]) == pytest.approx(abs(vectors[:, 0] @ delta), rel=1e-9)
        assert abs(s["fast_component"]) == pytest.approx(abs(vectors[:, -1] @ delta), rel=1e-9)
        assert np.hypot(s["slow_component"], s["fast_component"]) == pytest.approx(
            np.linalg.norm(delta), rel=1e-9)


def test_the_example_distance_is_where_a_hand_loop_stands_at_that_epoch(small, well_conditioned):
    ex = small.why["example"]
    assert ex["lr"] == 0.1 and ex["init"] == [0.0, 0.0]
    A = np.column_stack([well_conditioned.X, np.ones(well_conditioned.n)])
    y = well_conditioned.y
    theta_star = np.linalg.lstsq(A, y, rcond=None)[0]
    theta = np.zeros(2)
    for _ in range(ex["cost_epoch"]):
        theta = theta + ex["lr"] * (2.0 / len(y)) * A.T @ (y - A @ theta)
    assert ex["dist_at_cost_epoch"] == pytest.approx(np.linalg.norm(theta - theta_star),
                                                     rel=1e-8)


def test_explain_alone_gives_the_same_why(small, well_conditioned):
    assert explain(well_conditioned, E.Settings(), small) == small.why


def test_several_features_get_no_article_claims(several):
    assert several.claims == {}
    assert len(several.why["slow_direction"]) == 4


# ── the article's claims ────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def article(nedrich):
    return Q.iterations(nedrich, max_epochs=20_000)


def test_the_texts_lr_diverges_on_the_articles_data(article, nedrich):
    lam_max = np.linalg.eigvalsh(mse_hessian(nedrich)).max()
    claim = check_claims(nedrich, E.Settings(), article)["text_lr"]
    assert claim["lr"] == ARTICLE_TEXT_LR == 5e-4
    assert claim["lr_max"] == pytest.approx(2.0 / lam_max, rel=1e-10)
    assert claim["lr_max"] == pytest.approx(4.013e-4, rel=1e-4) and claim["lr_max"] < 5e-4
    assert claim["status"] == "diverged" and claim["converges"] is False
    # the steep mode is multiplied by 1 − lr·λ_max each epoch
    assert claim["growth_per_epoch"] == pytest.approx(abs(1.0 - 5e-4 * lam_max), rel=1e-10)
    assert claim["growth_per_epoch"] > 1.0


def test_the_million_epochs_land_on_lstsq(article, nedrich):
    mil = article.claims["million"]
    A = np.column_stack([nedrich.X, np.ones(nedrich.n)])
    m, b = np.linalg.lstsq(A, nedrich.y, rcond=None)[0]
    assert mil["epochs"] == 1_000_000 and mil["status"] == "max_epochs"
    assert (mil["m"], mil["b"]) == pytest.approx((m, b), abs=0.02)
    assert mil["dist_to_ols"] == pytest.approx(np.hypot(mil["m"] - m, mil["b"] - b), rel=1e-6)


def test_the_line_search_claim_compares_with_plain_gd(article):
    ls = article.claims["line_search"]
    names = [m["method"] for m in ls["methods"]]
    assert names == ["gd", "exact_line_search", "backtracking_line_search"]
    gd = ls["methods"][0]
    assert gd["lr"] == 1e-4
    for m in ls["methods"]:
        for c in m["criteria"]:
            holds = c["worst_epochs"] is not None and c["worst_epochs"] <= ls["threshold_epochs"]
            assert (criterion_text(c["criterion"], c["tol"]) in m["holds_under"]) == holds


def test_worst_start_is_at_the_radius_with_equal_gradient_parts(nedrich):
    """δ₀ ∝ v_min/λ_min + v_max/λ_max: the gradient Hδ₀ has equal parts along both."""
    _, vectors = np.linalg.eigh(mse_hessian(nedrich))
    theta_star = np.linalg.lstsq(np.column_stack([nedrich.X, np.ones(nedrich.n)]), nedrich.y,
                                 rcond=None)[0]
    start = np.array(worst_start(nedrich, E.Settings(), 3.0))
    delta = start - theta_star
    assert np.linalg.norm(delta) == pytest.approx(3.0, rel=1e-9)
    g = mse_hessian(nedrich) @ delta
    assert abs(vectors[:, 0] @ g) == pytest.approx(abs(vectors[:, -1] @ g), rel=1e-6)


def test_criterion_text():
    assert criterion_text("param", 0.01) == "‖θ − θ*‖ ≤ 0.01"
    assert criterion_text("cost", 1e-4) == "(J − J*)/J* ≤ 0.0001"
