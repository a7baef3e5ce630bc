"""What gradient descent must do on a given problem: spectrum, stability edge, rates, closed forms.

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

Predictions of the first epoch at which a trial reaches a tolerance are in
:mod:`study.core.prediction`.

At any conditioning (κ = 1e20 and beyond, as when x sits far from 0 relative to its spread):
the spectrum comes from the centred factor G of H = 2s·GᵀG and its explicit inverse, never from
the raw sums, so λ_min keeps its relative accuracy; a per-epoch factor 1 − x with x tiny enters
only as log1p(−x), never as a rounded 1 (:func:`log_factor`). This module imports numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from study.core.engine import Settings, iteration_matrices, working
from study.core.problem import Problem, cost_scale

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


def factor(problem: Problem, cost: str = "mse", standardize: bool = False) -> np.ndarray:
    """G with H = 2s·GᵀG, from the centred design and the mean, never from the raw sums:

        A = [U + 1x̄ᵀ, 1] = [Q, 1/√N] · G,   G = [[R, 0], [√N x̄ᵀ, √N]],   U = QR,

    where U = X − x̄ is the centred design (so Q ⊥ 1). Its inverse is explicit,
    G⁻¹ = [[R⁻¹, 0], [−x̄ᵀR⁻¹, 1/√N]], with no cancellation however far x̄ is from 0."""
    w = working(problem, cost, standardize)
    R = np.linalg.qr(w.U, mode="r")
    d = w.x_mean.size
    G = np.zeros((d + 1, d + 1))
    G[:d, :d] = R
    G[d, :d] = np.sqrt(w.n) * w.x_mean
    G[d, d] = np.sqrt(w.n)
    return G


def _inverse_factor(G: np.ndarray) -> np.ndarray:
    d = G.shape[0] - 1
    with np.errstate(all="ignore"):
        r_inv = np.linalg.solve(G[:d, :d], np.eye(d))
        out = np.zeros_like(G)
        out[:d, :d] = r_inv
        out[d, :d] = -(G[d, :d] / G[d, d]) @ r_inv
        out[d, d] = 1.0 / G[d, d]
    return out


def spectrum(problem: Problem, settings: Settings = DEFAULT) -> Spectrum:
    """Eigenvalues (ascending) and eigenvectors of H under the settings' cost and scaling, each
    to high relative accuracy however ill-conditioned H is.

    H = 2s·GᵀG (:func:`factor`): with G = PΣVᵀ, H = 2s·VΣ²Vᵀ. A backward-stable SVD gets the
    large singular values of a matrix to relative accuracy ε but the small ones only to ε·σ_max;
    the small σ of G are the large ones of the explicit G⁻¹ = VΣ⁻¹Pᵀ. So the upper half of the
    spectrum comes from G and the lower half from G⁻¹ (λ_min = 2s/σ_max(G⁻¹)²).
    """
    key = ("spectrum", settings.cost, settings.standardize)
    if key in problem._cache:
        return problem._cache[key]
    H = hessian(problem, settings.cost, settings.standardize)
    scale = 2.0 * cost_scale(settings.cost, problem.n)
    G = factor(problem, settings.cost, settings.standardize)
    _, sig, vt = np.linalg.svd(G)
    values, vectors = scale * sig[::-1] ** 2, vt[::-1].T.copy()
    G_inv = _inverse_factor(G)
    if np.all(np.isfinite(G_inv)) and sig[-1] > 0:
        u_inv, sig_inv, _ = np.linalg.svd(G_inv)
        low = scale / sig_inv ** 2  # ascending
        mid = np.sqrt(values[0] * values[-1]) if values[0] > 0 else values[-1]
        use = low < mid
        values = np.where(use, low, values)
        vectors[:, use] = u_inv[:, use]
    # eigenvectors have no sign: take the one eigh of H would give, so pages stay stable
    if np.all(np.isfinite(H)):  # H itself can overflow where G does not
        signs = np.sign(np.sum(vectors * np.linalg.eigh(H)[1], axis=0))
        vectors = vectors * np.where(signs == 0, 1.0, signs)
    sp = Spectrum(H, values, vectors)
    problem._cache[key] = sp
    return sp


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


# Why lr_max is ∞ for line search, in the words every output uses.
NO_EDGE = "line search picks its own step"


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
    lr = 4/(√λ_max + √λ_min)², β = ((√κ − 1)/(√κ + 1))² (β rounds to 1 once κ ≳ 1e32)."""
    sp = spectrum(problem, settings)
    a, b = np.sqrt(sp.lam_max), np.sqrt(sp.lam_min)
    return float(4.0 / (a + b) ** 2), float(((a - b) / (a + b)) ** 2)


def log_factor(x: float | np.ndarray) -> np.ndarray:
    """log|1 − x| for x = lr·λ ≥ 0, accurate when x is far below ε (log1p of the small
    complement, never the log of a factor that has rounded to 1)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        return np.where(x < 0.5, np.log1p(-np.minimum(x, 0.5)), np.log(np.abs(1.0 - x)))


def is_plain(settings: Settings) -> bool:
    """Plain simultaneous GD without momentum: the map is I − lr·H, symmetric."""
    return settings.optimizer == "gd" and settings.update == "simultaneous"


def log_rate(problem: Problem, settings: Settings, lr: float) -> float:
    """ln ρ, ρ the spectral radius of one epoch; for plain GD max ln|1 − lr·λ| over the
    extreme eigenvalues, through log1p so that a rate 1 − 1e-20 keeps its −1e-20."""
    if is_plain(settings):
        sp = spectrum(problem, settings)
        return float(np.max(log_factor(lr * np.array([sp.lam_min, sp.lam_max]))))
    with np.errstate(all="ignore"):
        return float(np.log(spectral_radius(problem, settings, lr)))


def time_constant(problem: Problem, settings: Settings, lr: float) -> float:
    """Epochs for the slowest mode to shrink by a factor e: −1/ln ρ (≈ 1/(lr·λ_min) for GD);
    inf when it does not shrink."""
    rate = log_rate(problem, settings, lr)
    return float("inf") if not rate < 0.0 else -1.0 / rate


def slow_direction_text(problem: Problem, settings: Settings = DEFAULT) -> str:
    """The slowest eigen-direction of H in words (for one feature)."""
    v = spectrum(problem, settings).vectors[:, 0]
    if problem.d != 1:
        names = ", ".join(f"{n}: {c:+.3f}" for n, c in zip(problem.param_names, v, strict=True))
        return f"slowest direction (unit eigenvector of λ_min): {names}"
    x_mean = 0.0 if settings.standardize else float(problem.stats.x_mean[0])
    dm, db = v
    ratio = (f"{abs(db / dm):.3g}× as much as m" if abs(db) < 1e6 * abs(dm)
             else "while m stays put")
    return (f"along (Δm, Δb) ∝ ({dm:+.4f}, {db:+.4f}): b changes {ratio} "
            f"while the prediction at the mean x̄ = {x_mean:.4g}, m·x̄ + b, changes by only "
            f"{abs(dm * x_mean + db):.2g} per unit step — the cost barely changes along it")


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


def gap_denominator(problem: Problem, cost: str = "mse") -> tuple[float, str]:
    """What a cost gap J − J* is divided by, and how it is read: (J*, "relative") normally;
    (1, "absolute") when J* is at rounding level (‖r*‖ ≤ 1e4·ε·‖y‖: an exact fit whose J* is
    noise, so (J − J*)/J* would be noise over noise)."""
    j_star = problem.ols_cost(cost)
    y2 = float(problem.y @ problem.y)
    if j_star > 0 and problem.ols_sse > (1e4 * np.finfo(float).eps) ** 2 * y2:
        return j_star, "relative"
    return 1.0, "absolute"


def gap(problem: Problem, settings: Settings, theta: Sequence[float]) -> float:
    """J(θ) − J* = s·‖G(θ − θ*)‖², without subtracting two nearly equal costs."""
    w = working(problem, settings.cost, settings.standardize)
    e = w.to_error(problem, np.asarray(theta, dtype=np.float64))[0]
    G = factor(problem, settings.cost, settings.standardize)
    return float(cost_scale(settings.cost, problem.n) * np.sum((G @ e) ** 2))
