"""The runs behind the 1,000,000-iteration question: the ways to run GD, their first epochs as
measured by the engine and as predicted by theory, and the :class:`Answer` that holds them.

A target is met at the first epoch with ‖θ_n − θ*‖ ≤ t (``param``) or (J_n − J*)/J* ≤ t
(``cost``). The engine iterates until every target is met (or the cap);
:func:`study.core.theory.predicted_epochs` gives the same epochs from the modal form
θ_n − θ* = (I − lr·H)ⁿ(θ₀ − θ*). Plain GD is one :class:`Method`; :func:`cures` are the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from study.core import engine as E
from study.core import theory as T
from study.core.problem import Problem

HISTORY_POINTS = 240  # points kept of each run's path, for the figure
BACKTRACKING_STEP = 1.0  # initial step tried each epoch (the engine's armijo/shrink defaults)


@dataclass(frozen=True)
class Method:
    """A way to run GD: ``name`` (JSON), a human ``label``, its lr and settings."""

    name: str
    label: str
    lr: float
    settings: E.Settings
    prediction: str  # "exact" | "upper bound" | "none"


@dataclass(frozen=True)
class Target:
    criterion: str  # "param" | "cost"
    tol: float
    measured_epochs: int | None
    predicted_epochs: int | None


@dataclass(frozen=True)
class Run:
    """One method from one start, measured by the engine and predicted by theory."""

    method: Method
    init: tuple[float, ...]
    status: str
    epochs_run: int
    diverged_at: int | None
    theta: np.ndarray
    dist_to_ols: float
    rel_cost_gap: float
    targets: list[Target]
    history_epoch: np.ndarray  # for the figure: epochs, distance and relative cost gap
    history_dist: np.ndarray
    history_rel_gap: np.ndarray

    def target(self, criterion: str, tol: float) -> Target:
        return next(t for t in self.targets if t.criterion == criterion and t.tol == tol)


@dataclass(frozen=True)
class Answer:
    """Everything ``study iterations`` shows."""

    source: str
    n: int
    cost: str
    param_names: tuple[str, ...]
    ols_theta: np.ndarray
    ols_cost: float
    lam_min: float
    lam_max: float
    condition_number: float
    lr_max: float
    lrs: tuple[float, ...]
    starts: tuple[tuple[float, ...], ...]
    param_tols: tuple[float, ...]
    cost_tols: tuple[float, ...]
    max_epochs: int
    runs: list[Run]
    why: dict
    claims: dict = field(default_factory=dict)


def rel_gap_denominator(problem: Problem, cost: str) -> float:
    """J*, the denominator of the relative cost gap (J − J*)/J*; 1 when the fit is exact."""
    j_star = problem.ols_cost(cost)
    return j_star if j_star > 0 else 1.0


# ── methods ─────────────────────────────────────────────────────────────────────────────────


def plain(lr: float, settings: E.Settings) -> Method:
    return Method("gd", f"plain GD, lr {lr:.6g}", lr, settings, "exact")


def cures(problem: Problem, settings: E.Settings) -> list[Method]:
    """The cures of slow convergence, each with the lr theory picks for it:

    - ``largest_stable_lr``: 0.99·lr_max, lr_max = 2/λ_max (just under the edge);
    - ``best_lr``: 2/(λ_min + λ_max), the constant lr with the best worst-case rate;
    - ``standardized``: GD on z-scored x at the standardized problem's own best lr;
    - ``momentum``: heavy ball with (lr, β) = (4/(√λ_max + √λ_min)², ((√κ − 1)/(√κ + 1))²);
    - ``exact_line_search``: t = gᵀg / gᵀHg each epoch (no lr);
    - ``backtracking_line_search``: Armijo from the initial step 1 each epoch.
    """
    gd = replace(settings, optimizer="gd", standardize=False)
    std = replace(gd, standardize=True)
    lr_m, beta = T.tuned_momentum(problem, gd)
    ls = replace(gd, optimizer="line_search")
    lr_edge, lr_best, lr_std = 0.99 * T.lr_max(problem, gd), T.best_lr(problem, gd), \
        T.best_lr(problem, std)
    return [
        Method("largest_stable_lr", f"largest stable lr 0.99·lr_max = {lr_edge:.4g}", lr_edge,
               gd, "exact"),
        Method("best_lr", f"best constant lr 2/(λmin+λmax) = {lr_best:.4g}", lr_best, gd,
               "exact"),
        Method("standardized", f"standardized x, its best lr {lr_std:.4g}", lr_std, std,
               "exact"),
        Method("momentum", f"momentum β = {beta:.4f}, lr {lr_m:.4g} (tuned)", lr_m,
               replace(gd, optimizer="momentum", momentum=beta), "exact"),
        Method("exact_line_search", "exact line search t = gᵀg/gᵀHg", 1.0,
               replace(ls, line_search="exact"), "upper bound"),
        Method("backtracking_line_search",
               f"backtracking from step {BACKTRACKING_STEP:g}, Armijo {settings.armijo:g}, "
               f"shrink {settings.shrink:g}", BACKTRACKING_STEP,
               replace(ls, line_search="backtracking"), "none"),
    ]


# ── measuring ───────────────────────────────────────────────────────────────────────────────


def stop_tolerance(problem: Problem, settings: E.Settings, param_tols: Sequence[float],
                   cost_tols: Sequence[float]) -> float:
    """A distance at which every target is surely reached, so long runs may stop there:
    the smallest param tol, and √(2 t J*/λ_max) for each cost tol t (J − J* ≤ ½λ_max‖δ‖²)."""
    lam_max = T.spectrum(problem, replace(settings, standardize=False)).lam_max
    den = rel_gap_denominator(problem, settings.cost)
    dists = [*param_tols, *(np.sqrt(2.0 * t * den / lam_max) for t in cost_tols)]
    return float(min(dists))


def measure(problem: Problem, methods: Sequence[Method], starts: Sequence[Sequence[float]],
            param_tols: Sequence[float], cost_tols: Sequence[float], max_epochs: int,
            predict: bool = True) -> list[Run]:
    """Every method from every start, run by the engine (one batch per distinct settings) up
    to ``max_epochs`` and predicted by theory; results in the order method-major."""
    param_tols, cost_tols = tuple(map(float, param_tols)), tuple(map(float, cost_tols))
    pairs = [(m, tuple(map(float, s))) for m in methods for s in starts]
    trials = []
    for method, init in pairs:
        s = replace(method.settings, param_tols=param_tols, cost_tols=cost_tols,
                    tol_param=stop_tolerance(problem, method.settings, param_tols, cost_tols),
                    tol_cost_change=None, tol_grad=None, record_path=True,
                    history_points=HISTORY_POINTS)
        trials.append(E.Trial(method.lr, max_epochs, init, s))
    results = E.run(problem, trials)
    return [_run(problem, m, init, r, param_tols, cost_tols, max_epochs, predict)
            for (m, init), r in zip(pairs, results, strict=True)]


def _run(problem: Problem, method: Method, init: tuple[float, ...], r: E.Result,
         param_tols: tuple[float, ...], cost_tols: tuple[float, ...], max_epochs: int,
         predict: bool) -> Run:
    if predict:
        pred_p, pred_c = T.predicted_epochs(problem, method.settings, method.lr, init,
                                            param_tols, cost_tols, max_epochs)
    else:
        pred_p, pred_c = dict.fromkeys(param_tols), dict.fromkeys(cost_tols)
    targets = [Target("param", t, r.first_param_epoch[t], pred_p[t]) for t in param_tols]
    targets += [Target("cost", t, r.first_cost_epoch[t], pred_c[t]) for t in cost_tols]
    j_star = problem.ols_cost(method.settings.cost)
    dist = np.linalg.norm(r.history_theta - problem.ols_theta, axis=1)
    return Run(method, init, r.status, r.epochs_run, r.diverged_at, r.theta, r.dist_to_ols,
               r.rel_cost_gap, targets, r.history_epoch, dist,
               (r.history_cost - j_star) / rel_gap_denominator(problem, method.settings.cost))


def final_state(problem: Problem, lr: float, epochs: int, init: Sequence[float],
                settings: E.Settings) -> E.Result:
    """Plain GD for exactly ``epochs`` epochs (no early stop), as a reader would run it."""
    s = replace(settings, optimizer="gd", standardize=False, tol_param=None,
                tol_cost_change=None, tol_grad=None)
    return E.run_one(problem, E.Trial(lr, epochs, tuple(map(float, init)), s))
