"""What gradient descent must do on a given problem: spectrum, stability edge, rates, predictions.

The cost J(θ) = s·‖y − Aθ‖², A = [X 1], is quadratic with Hessian H = 2s·AᵀA and
J(θ) − J* = ½ δᵀHδ, δ = θ − θ*. Every full-batch rule of :mod:`study.core.engine` is then a linear
map of the error. With H = L + D + U (strictly lower, diagonal, strictly upper; L = 0 for the
simultaneous update) and momentum β (0 for plain GD), one epoch maps the state (e, v) as

    e' = G e + B v,   v' = e' − e,    G = (I + lr·L)⁻¹ (I − lr·(D + U)),   B = β (I + lr·L)⁻¹,

which for plain simultaneous GD is e' = (I − lr·H) e, so

    θ_n = θ* + (I − lr·H)ⁿ (θ₀ − θ*),   stable iff lr < lr_max = 2/λ_max,

and the slowest mode shrinks by |1 − lr·λ_min| per epoch (time constant 1/(lr·λ_min) epochs);
the best constant rate is reached at lr = 2/(λ_min + λ_max). For sequential and momentum updates
lr_max is found numerically from the spectral radius of the iteration matrix. With standardized
features the same holds in z-units, and distances are mapped back to original units.

Predictions of "first epoch at which ‖θ_n − θ*‖ ≤ t" and "(J_n − J*)/J* ≤ t" are exact: they
evaluate the modal form z_n = V·(μⁿ ⊙ V⁻¹z₀) of the iteration, not only its slowest mode.
This module imports numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from study.core.engine import Settings, iteration_matrices, working
from study.core.problem import Problem

_CHUNK = 1 << 15
DEFAULT = Settings()  # plain simultaneous GD on the mse cost


@dataclass(frozen=True)
class Spectrum:
    """Eigen-decomposition of the Hessian in the coordinates GD works in (z-units if
    standardized). ``vectors[:, 0]`` is the slow direction."""

    hessian: np.ndarray
    values: np.ndarray  # ascending
    vectors: np.ndarray

    @property
    def lam_min(self) -> float:
        return float(self.values[0])

    @property
    def lam_max(self) -> float:
        return float(self.values[-1])

    @property
    def condition_number(self) -> float:
        return self.lam_max / self.lam_min if self.lam_min > 0 else float("inf")


def hessian(problem: Problem, cost: str = "mse", standardize: bool = False) -> np.ndarray:
    """H = 2s·[[Sxx + N x̄x̄ᵀ, N x̄], [N x̄ᵀ, N]] (in z-units when standardized, where x̄ = 0)."""
    return working(problem, cost, standardize).hessian


def spectrum(problem: Problem, settings: Settings = DEFAULT) -> Spectrum:
    """Eigenvalues (ascending) and eigenvectors of H under the settings' cost and scaling."""
    H = hessian(problem, settings.cost, settings.standardize)
    values, vectors = np.linalg.eigh(H)
    return Spectrum(H, values, vectors)


def iteration_matrix(problem: Problem, settings: Settings, lr: float) -> np.ndarray:
    """The linear map of one epoch (see :func:`study.core.engine.iteration_matrices`); for minibatch
    SGD the mean map (I − lr·H)^(steps per epoch)."""
    H = hessian(problem, settings.cost, settings.standardize)
    if settings.optimizer == "minibatch":
        steps = -(-problem.n // settings.batch_size)
        return np.linalg.matrix_power(np.eye(H.shape[0]) - lr * H, steps)
    beta = settings.momentum if settings.optimizer == "momentum" else 0.0
    return iteration_matrices(H, np.array([lr]), settings.update, beta)[0]


def spectral_radius(problem: Problem, settings: Settings, lr: float) -> float:
    """max |μ| over the eigenvalues μ of the iteration matrix: the asymptotic per-epoch rate."""
    return float(np.max(np.abs(np.linalg.eigvals(iteration_matrix(problem, settings, lr)))))


def lr_max(problem: Problem, settings: Settings = DEFAULT) -> float:
    """Largest stable learning rate (the edge of stability).

    2/λ_max for simultaneous GD (and, as the stability edge of the mean dynamics, for
    minibatch); 2(1 + β)/λ_max for simultaneous heavy-ball momentum; by bisection on the
    spectral radius for sequential updates; ∞ for line search (it picks its own step).
    """
    if settings.optimizer == "line_search":
        return float("inf")
    lam_max = spectrum(problem, settings).lam_max
    beta = settings.momentum if settings.optimizer == "momentum" else 0.0
    if settings.update == "simultaneous" or settings.optimizer == "minibatch":
        return 2.0 * (1.0 + beta) / lam_max
    lo, hi = 1e-3 / lam_max, 2.0 * (1.0 + beta) / lam_max
    while spectral_radius(problem, settings, hi) < 1.0:
        hi *= 2.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if spectral_radius(problem, settings, mid) < 1.0 else (lo, mid)
    return lo


def best_lr(problem: Problem, settings: Settings = DEFAULT) -> float:
    """2/(λ_min + λ_max): the constant lr with the fastest worst-case rate (κ−1)/(κ+1)."""
    sp = spectrum(problem, settings)
    return 2.0 / (sp.lam_min + sp.lam_max)


def tuned_momentum(problem: Problem, settings: Settings = DEFAULT) -> tuple[float, float]:
    """Heavy-ball (lr, β) with the optimal rate (√κ−1)/(√κ+1):
    lr = 4/(√λ_max + √λ_min)², β = ((√κ − 1)/(√κ + 1))²."""
    sp = spectrum(problem, settings)
    a, b = np.sqrt(sp.lam_max), np.sqrt(sp.lam_min)
    return float(4.0 / (a + b) ** 2), float(((a - b) / (a + b)) ** 2)


def time_constant(problem: Problem, settings: Settings, lr: float) -> float:
    """Epochs for the slowest mode to shrink by a factor e: −1/ln ρ (≈ 1/(lr·λ_min) for GD)."""
    rho = spectral_radius(problem, settings, lr)
    return float("inf") if rho >= 1.0 else -1.0 / np.log(rho)


def slow_direction_text(problem: Problem, settings: Settings = DEFAULT) -> str:
    """The slowest eigen-direction of H in words (for one feature)."""
    v = spectrum(problem, settings).vectors[:, 0]
    if problem.d != 1:
        names = ", ".join(f"{n}: {c:+.3f}" for n, c in zip(problem.param_names, v, strict=True))
        return f"slowest direction (unit eigenvector of λ_min): {names}"
    x_mean = 0.0 if settings.standardize else float(problem.stats.x_mean[0])
    dm, db = v
    return (f"along (Δm, Δb) ∝ ({dm:+.4f}, {db:+.4f}): b changes {abs(db / dm):.1f}× as much as m "
            f"while the prediction at the mean x̄ = {x_mean:.4g}, m·x̄ + b, changes by only "
            f"{abs(dm * x_mean + db):.2g} per unit step — the cost barely changes along it")


@dataclass(frozen=True)
class _Modal:
    """z_n = V (μⁿ ⊙ w); original-unit error C z_n; cost gap ½ δ_zᵀ H δ_z."""

    mu: np.ndarray
    V: np.ndarray
    w: np.ndarray
    C: np.ndarray
    H: np.ndarray
    p: int
    monotone: bool  # symmetric map and orthogonal output map: every error term only shrinks

    def errors(self, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(‖θ_n − θ*‖, J_n − J*) for an array of epochs n."""
        with np.errstate(all="ignore"):
            powers = np.exp(np.outer(n, np.log(self.mu.astype(complex))))
        powers[:, self.mu == 0] = (n == 0)[:, None]
        z = ((powers * self.w) @ self.V.T).real
        e = z[:, : self.p]
        dist = np.linalg.norm(e @ self.C.T, axis=1)
        gap = 0.5 * np.einsum("ni,ij,nj->n", e, self.H, e)
        return dist, gap


def _modal(problem: Problem, settings: Settings, lr: float, init: Sequence[float]) -> _Modal:
    M = iteration_matrix(problem, settings, lr)
    w = working(problem, settings.cost, settings.standardize)
    A = w.A
    e0 = w.to_error(problem, np.asarray(init, dtype=np.float64))[0]
    p = e0.size
    z0 = e0 if M.shape[0] == p else np.concatenate([e0, np.zeros(p)])
    mu, V = np.linalg.eig(M)
    w = np.linalg.solve(V, z0.astype(complex))
    H = hessian(problem, settings.cost, settings.standardize)
    monotone = bool(np.allclose(M, M.T) and not settings.standardize)
    return _Modal(mu, V, w, A, H, p, monotone)


def trajectory(problem: Problem, settings: Settings, lr: float, init: Sequence[float],
               epochs: Sequence[int]) -> np.ndarray:
    """θ_n (original units) at the given epochs, from the closed form; shape (len(epochs), p)."""
    n = np.asarray(epochs, dtype=np.int64)
    M = iteration_matrix(problem, settings, lr)
    w = working(problem, settings.cost, settings.standardize)
    p = problem.d + 1
    e = w.to_error(problem, np.asarray(init, dtype=np.float64))[0]
    z0 = e if M.shape[0] == p else np.concatenate([e, np.zeros(p)])
    out = np.array([(np.linalg.matrix_power(M, int(k)) @ z0)[:p] for k in n])
    return problem.ols_theta + out @ w.A.T


def predicted_epochs(problem: Problem, settings: Settings, lr: float, init: Sequence[float],
                     param_tols: Sequence[float] = (), cost_tols: Sequence[float] = (),
                     max_epochs: int = 10_000_000) -> tuple[dict, dict]:
    """First epoch n ≤ max_epochs with ‖θ_n − θ*‖ ≤ t (per param tol) and (J_n − J*)/J* ≤ t
    (per cost tol), from the exact modal form of the iteration; None if not reached.

    Line search has no fixed linear map: for ``exact`` the Kantorovich bound
    (J_n − J*) ≤ ((κ−1)/(κ+1))^{2n} (J₀ − J*) and ‖δ‖² ≤ 2(J − J*)/λ_min give upper bounds;
    for ``backtracking`` nothing is predicted (None).
    """
    j_star = problem.ols_cost(settings.cost)
    rel_den = j_star if j_star > 0 else 1.0
    if settings.optimizer == "line_search":
        return _line_search_bound(problem, settings, init, param_tols, cost_tols, rel_den,
                                  max_epochs)
    modal = _modal(problem, settings, lr, init)
    targets = [("param", float(t)) for t in param_tols] + [("cost", float(t)) for t in cost_tols]

    def value(kind: str, n: np.ndarray) -> np.ndarray:
        dist, gap = modal.errors(n)
        return dist if kind == "param" else gap / rel_den

    found: dict[tuple[str, float], int | None] = {}
    if np.max(np.abs(modal.mu)) >= 1.0:
        for kind, t in targets:
            found[(kind, t)] = 0 if value(kind, np.array([0]))[0] <= t else None
    elif modal.monotone:
        for kind, t in targets:
            found[(kind, t)] = _bisect_first(lambda n, k=kind: value(k, n), t, max_epochs)
    else:
        found = dict.fromkeys(targets)
        start = 0
        while start <= max_epochs and any(v is None for v in found.values()):
            n = np.arange(start, min(start + _CHUNK, max_epochs + 1))
            for kind, t in targets:
                if found[(kind, t)] is None:
                    hits = np.flatnonzero(value(kind, n) <= t)
                    if hits.size:
                        found[(kind, t)] = int(n[hits[0]])
            start += _CHUNK
    return ({t: found[("param", t)] for _, t in targets[: len(param_tols)]},
            {t: found[("cost", t)] for _, t in targets[len(param_tols):]})


def _bisect_first(f, t: float, max_epochs: int) -> int | None:
    """Smallest n in [0, max_epochs] with f(n) ≤ t, for a non-increasing f."""
    if f(np.array([0]))[0] <= t:
        return 0
    if f(np.array([max_epochs]))[0] > t:
        return None
    lo, hi = 0, max_epochs  # f(lo) > t ≥ f(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if f(np.array([mid]))[0] <= t else (mid, hi)
    return hi


def _line_search_bound(problem, settings, init, param_tols, cost_tols, rel_den, max_epochs):
    if settings.line_search != "exact":
        return ({float(t): None for t in param_tols}, {float(t): None for t in cost_tols})
    sp = spectrum(problem, settings)
    kappa = sp.condition_number
    rate = ((kappa - 1.0) / (kappa + 1.0)) ** 2
    gap0 = float(problem.cost(np.asarray(init, dtype=float), settings.cost)) - \
        problem.ols_cost(settings.cost)
    # ‖δ‖ in original units ≤ ‖A‖·‖δ_z‖ ≤ ‖A‖·sqrt(2·gap/λ_min)
    norm_a = np.linalg.norm(working(problem, settings.cost, settings.standardize).A, 2)

    def epochs_for(gap_target: float) -> int | None:
        if gap0 <= gap_target:
            return 0
        if rate <= 0.0:
            return 1
        n = int(np.ceil(np.log(gap_target / gap0) / np.log(rate)))
        return n if n <= max_epochs else None

    params = {float(t): epochs_for(0.5 * sp.lam_min * (t / norm_a) ** 2) for t in param_tols}
    costs = {float(t): epochs_for(t * rel_den) for t in cost_tols}
    return params, costs


def predicted_status(problem: Problem, settings: Settings, lr: float, init: Sequence[float],
                     epochs: int, dist_tol: float) -> str:
    """'diverged' (unstable lr), 'converged' (‖θ − θ*‖ ≤ dist_tol within the budget) or
    'not converged' (stable, but the budget is too small)."""
    if settings.optimizer != "line_search" and lr >= lr_max(problem, settings):
        return "diverged"
    params, _ = predicted_epochs(problem, settings, lr, init, (dist_tol,), (), epochs)
    return "converged" if params[float(dist_tol)] is not None else "not converged"
