"""Why GD needs so many epochs, and the article's claims checked on the same data.

The *why* is the spectrum of the Hessian H: the slow direction shrinks by (1 − lr·λ_min) per
epoch, and since

    J − J* = ½ δᵀHδ ≥ ½ λ_min ‖δ‖²   (δ = θ − θ* along the slow direction: equality),

a cost within a relative t of J* still allows ‖δ‖ up to √(2 t J*/λ_min): the cost is close long
before (m, b) is. :func:`explain` puts numbers on this; :func:`check_claims` re-runs the article's
settings and its line-search claim. Both return plain data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from study.core import engine as E
from study.core import theory as T
from study.core.problem import Problem
from study.questions.iterations import (
    Answer,
    cures,
    final_state,
    measure,
    plain,
    rel_gap_denominator,
)

# The article: lr 0.0001 in its code, 0.0005 / 2000 iterations / start (-1, 0) in its text.
ARTICLE_CODE_LR = 1e-4
ARTICLE_TEXT_LR = 5e-4
ARTICLE_TEXT_EPOCHS = 2000
ARTICLE_TEXT_START = (-1.0, 0.0)
READER_EPOCHS = 1_000_000
# Line search is said to need "around 50" iterations; "about 50" is read generously as ≤ 100.
LINE_SEARCH_CLAIM_EPOCHS = 100
CLAIM_PARAM_TOLS = (1.0, 0.1, 0.01, 0.001)
CLAIM_COST_TOLS = (0.1, 0.01, 1e-3, 1e-4)


def criterion_text(kind: str, tol: float) -> str:
    return f"‖θ − θ*‖ ≤ {tol:g}" if kind == "param" else f"(J − J*)/J* ≤ {tol:g}"


def explain(problem: Problem, settings: E.Settings, answer: Answer) -> dict:
    """Why it takes so long: spectrum, slow direction, time constants, and cost-close versus
    parameters-close with the numbers of the first plain-GD run."""
    sp = T.spectrum(problem, settings)
    slow, fast = sp.vectors[:, 0], sp.vectors[:, -1]
    t = min(answer.cost_tols)
    lam_min = np.float64(sp.lam_min)  # may underflow to 0: then the ratios below are inf
    why = {
        "slow_direction": [float(v) for v in slow],
        "slow_direction_text": T.slow_direction_text(problem, settings),
        "time_constants": [{"lr": lr, "epochs": (float(1.0 / (lr * lam_min))
                                                 if lr < answer.lr_max else None)}
                           for lr in answer.lrs],
        "cost_tol": t,
        "dist_allowed_at_cost_tol": float(np.sqrt(
            2.0 * t * rel_gap_denominator(problem, settings.cost) / lam_min)),
        "starts": [{"init": list(s),
                    "slow_component": float(slow @ (np.array(s) - problem.ols_theta)),
                    "fast_component": float(fast @ (np.array(s) - problem.ols_theta))}
                   for s in answer.starts],
    }
    gd = [r for r in answer.runs if r.method.name == "gd" and r.status != "diverged"]
    if gd:
        r = gd[0]
        cost_hit = r.target("cost", t).measured_epochs
        tp = min(answer.param_tols)
        example = {"lr": r.method.lr, "init": list(r.init), "cost_tol": t,
                   "cost_epoch": cost_hit, "param_tol": tp,
                   "param_epoch": r.target("param", tp).measured_epochs}
        if cost_hit is not None:
            theta = T.trajectory(problem, settings, r.method.lr, r.init, [cost_hit])[0]
            example["dist_at_cost_epoch"] = float(np.linalg.norm(theta - problem.ols_theta))
        why["example"] = example
    return why


# ── the article's claims ────────────────────────────────────────────────────────────────────


def check_claims(problem: Problem, settings: E.Settings, answer: Answer) -> dict:
    """The article's claims on this data (one feature): its text's lr, its text's 2000 epochs,
    a reader's 10⁶ epochs, the role of the start, and line search's "about 50"."""
    text = final_state(problem, ARTICLE_TEXT_LR, ARTICLE_TEXT_EPOCHS, ARTICLE_TEXT_START,
                       settings)
    short = final_state(problem, ARTICLE_CODE_LR, ARTICLE_TEXT_EPOCHS, ARTICLE_TEXT_START,
                        settings)
    long = final_state(problem, ARTICLE_CODE_LR, READER_EPOCHS, (0.0, 0.0), settings)
    return {
        "text_lr": {"lr": ARTICLE_TEXT_LR, "init": list(ARTICLE_TEXT_START),
                    "epochs": ARTICLE_TEXT_EPOCHS, "status": text.status,
                    "diverged_at": text.diverged_at, "lr_max": answer.lr_max,
                    # max |1 − lr·λ|: how much the steepest error grows each epoch
                    "growth_per_epoch": T.spectral_radius(problem, settings, ARTICLE_TEXT_LR),
                    "converges": text.status != "diverged"},
        "text_2000": _state(problem, settings, short, ARTICLE_CODE_LR, ARTICLE_TEXT_START,
                            ARTICLE_TEXT_EPOCHS),
        "million": _state(problem, settings, long, ARTICLE_CODE_LR, (0.0, 0.0),
                          READER_EPOCHS),
        "start": _start_claim(answer),
        "line_search": line_search_claim(problem, settings, answer.starts, answer.max_epochs),
    }


def _state(problem: Problem, settings: E.Settings, r: E.Result, lr: float,
           init: Sequence[float], epochs: int) -> dict:
    return {"lr": lr, "init": list(init), "epochs": epochs, "status": r.status,
            "diverged_at": r.diverged_at, "m": float(r.theta[0]), "b": float(r.theta[1]),
            "cost": r.cost,
            "dist_to_ols": r.dist_to_ols,
            "rel_cost_gap": r.cost_gap / rel_gap_denominator(problem, settings.cost)}


def _start_claim(answer: Answer) -> dict:
    """Same limit from every start (convexity), different times: from the plain-GD runs at
    the first learning rate."""
    lr = answer.lrs[0]
    runs = [r for r in answer.runs if r.method.name == "gd" and r.method.lr == lr]
    tp = min(answer.param_tols)
    return {"lr": lr, "param_tol": tp,
            "all_converged": all(r.status == "converged" for r in runs),
            "epochs": [{"init": list(r.init),
                        "param_epochs": {t: r.target("param", t).measured_epochs
                                         for t in answer.param_tols}} for r in runs]}


def worst_start(problem: Problem, settings: E.Settings, radius: float) -> tuple[float, ...]:
    """The start at distance ``radius`` from θ* that is worst for steepest descent with exact
    steps (Kantorovich): its gradient H·δ₀ has equal parts along the slowest and the fastest
    eigenvectors, δ₀ ∝ v_min/λ_min + v_max/λ_max, and every epoch then shrinks J − J* by
    exactly ((κ − 1)/(κ + 1))²."""
    sp = T.spectrum(problem, replace(settings, standardize=False))
    if not sp.lam_min > 0.0:  # λ_min underflowed: the slow direction alone is worst
        delta = sp.vectors[:, 0]
    else:
        delta = sp.vectors[:, 0] / sp.lam_min + sp.vectors[:, -1] / sp.lam_max
    return tuple(map(float, problem.ols_theta + radius * delta / np.linalg.norm(delta)))


def line_search_claim(problem: Problem, settings: E.Settings,
                      starts: Sequence[Sequence[float]], max_epochs: int) -> dict:
    """Epochs of exact and backtracking line search, and of plain GD at the article's lr for
    comparison, for a ladder of criteria from loose to tight; the claim "about 50 iterations"
    holds under a criterion when every start meets it within LINE_SEARCH_CLAIM_EPOCHS."""
    line = [m for m in cures(problem, settings) if m.name.endswith("line_search")]
    methods = [plain(ARTICLE_CODE_LR, replace(settings, optimizer="gd")), *line]
    runs = measure(problem, methods, starts, CLAIM_PARAM_TOLS, CLAIM_COST_TOLS, max_epochs)
    criteria = [("cost", t) for t in CLAIM_COST_TOLS] + [("param", t) for t in CLAIM_PARAM_TOLS]
    out: dict = {"threshold_epochs": LINE_SEARCH_CLAIM_EPOCHS, "methods": []}
    for method in methods:
        mine = [r for r in runs if r.method is method]
        worst = []
        for kind, tol in criteria:
            hits = [r.target(kind, tol).measured_epochs for r in mine]
            worst.append({"criterion": kind, "tol": tol,
                          "worst_epochs": None if None in hits else max(hits)})
        holds = [w for w in worst if w["worst_epochs"] is not None
                 and w["worst_epochs"] <= LINE_SEARCH_CLAIM_EPOCHS]
        out["methods"].append({"method": method.name, "label": method.label, "lr": method.lr,
                               "criteria": worst,
                               "holds_under": [criterion_text(w["criterion"], w["tol"])
                                               for w in holds]})
    radius = float(np.linalg.norm(np.asarray(starts[0]) - problem.ols_theta))
    bad = worst_start(problem, settings, radius)
    exact = next(m for m in line if m.name == "exact_line_search")
    [r] = measure(problem, [exact], [bad], (0.01,), (1e-2,), max_epochs)
    out["worst_start"] = {"init": list(bad), "radius": radius,
                          "param_epoch": r.target("param", 0.01).measured_epochs,
                          "param_bound": r.target("param", 0.01).predicted_epochs,
                          "cost_epoch": r.target("cost", 1e-2).measured_epochs}
    return out
