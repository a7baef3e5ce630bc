"""Theory's first epoch at which gradient descent reaches ‖θ_n − θ*‖ ≤ t or (J_n − J*)/J* ≤ t,
and so the region (converged, not converged, diverged) of a trial before it runs.

The predictions are exact: they evaluate the modal form z_n = V·(μⁿ ⊙ V⁻¹z₀) of the iteration
(:mod:`study.core.theory`), not only its slowest mode; for plain GD in the eigenbasis of H, in
log space, so a first epoch far beyond any cap is found by bisection and reported as "more than
10^k epochs", and a factor that rounds to 1 in double precision as "not reachable in double
precision" (:class:`Prediction` carries the reason). This module imports numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from study.core.engine import Settings, working
from study.core.problem import Problem, cost_scale
from study.core.theory import (
    factor,
    gap_denominator,
    hessian,
    is_plain,
    iteration_matrix,
    log_factor,
    lr_max,
    spectrum,
)
from study.core.theory import (
    gap as cost_gap,
)

_CHUNK = 1 << 15  # epochs of the modal form evaluated as one batched product


@dataclass(frozen=True)
class Prediction:
    """Theory's first epoch of one target. ``epochs`` is None when the target is not reached
    within the cap (or cannot be predicted); ``reason`` then says why in words, and
    ``estimate`` gives the epochs needed when known (possibly far beyond the cap)."""

    epochs: int | None
    estimate: float | None = None
    reason: str | None = None


def beyond_text(estimate: float) -> str:
    """``more than 10^k epochs`` for an epoch count far beyond any cap."""
    estimate = float(estimate)
    if not math.isfinite(estimate):
        return "never"
    k = math.floor(math.log10(max(estimate, 1.0)))
    return f"more than 10^{k} epochs"


@dataclass(frozen=True)
class _Modal:
    """z_n = V (μⁿ ⊙ w); original-unit error C z_n; cost gap ½ δ_zᵀ H δ_z."""

    mu: np.ndarray
    V: np.ndarray
    w: np.ndarray
    C: np.ndarray
    H: np.ndarray
    p: int
    noise: float  # rounding level of z_n from the modal sum: ε·Σ|w_i|‖V_i‖
    G: np.ndarray  # √s·G: J − J* = ‖√s·G δ_z‖²
    M: np.ndarray  # the map of one epoch, z_{n+1} = M z_n
    z0: np.ndarray

    def scan(self, start: int, stop: int):
        """(epochs, dist, gap) in chunks over [start, stop], stepping z by the powers M^j of
        one chunk (a batched product per chunk instead of complex powers per epoch)."""
        q = self.M.shape[0]
        powers = np.empty((_CHUNK, q, q))
        powers[0] = np.eye(q)
        filled = 1
        while filled < _CHUNK:  # M^j for j < 2^k, doubled each round
            step = np.linalg.matrix_power(self.M, filled)
            take = min(filled, _CHUNK - filled)
            powers[filled:filled + take] = powers[:take] @ step
            filled += take
        last = powers[-1] @ self.M  # M^_CHUNK
        z = np.linalg.matrix_power(self.M, int(start)) @ self.z0
        while start <= stop:
            count = min(_CHUNK, stop + 1 - start)
            e = (powers[:count] @ z)[:, : self.p]
            dist = np.linalg.norm(e @ self.C.T, axis=1)
            gap = 0.5 * np.einsum("ni,ij,nj->n", e, self.H, e)
            yield np.arange(start, start + count), dist, gap
            z = last @ z
            start += _CHUNK

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

    def envelope(self, n: float, lower: bool, kind: str) -> float:
        """A bound on ‖θ_n − θ*‖ (``param``) or J_n − J* (``cost``) at epoch n, from the modal
        amplitudes |w_i||μ_i|ⁿ of the output ô = O e_n (O = C, or √s·G with J − J* = ‖ô‖²):
        their sum over the modes above (triangle inequality), the largest one seen through the
        left eigenvectors below (for momentum, whose state also holds the velocity, divided by
        √5: ‖(ô_n, Ov_n)‖ ≤ √5·max(‖ô_n‖, ‖ô_{n−1}‖))."""
        out_map = self.C if kind == "param" else self.G
        T = np.kron(np.eye(self.V.shape[0] // self.p), out_map) @ self.V
        with np.errstate(all="ignore"):
            amp = np.abs(self.w) * np.exp(n * np.log(np.abs(self.mu)))
            amp = np.where(np.abs(self.w) > 0, amp, 0.0)
            if lower:
                rows = np.linalg.norm(np.linalg.inv(T), axis=1)
                z = float(np.max(amp / rows)) / (np.sqrt(5.0) if T.shape[0] > self.p else 1.0)
            else:
                z = float(np.sum(amp * np.linalg.norm(T, axis=0)))
        return z if kind == "param" else z * z


def _modal(problem: Problem, settings: Settings, lr: float, init: Sequence[float]) -> _Modal:
    M = iteration_matrix(problem, settings, lr)
    w = working(problem, settings.cost, settings.standardize)
    A = w.A
    e0 = w.to_error(problem, np.asarray(init, dtype=np.float64))[0]
    p = e0.size
    z0 = e0 if M.shape[0] == p else np.concatenate([e0, np.zeros(p)])
    mu, V = np.linalg.eig(M)
    with np.errstate(all="ignore"):
        coef = np.linalg.lstsq(V, z0.astype(complex), rcond=None)[0]
        noise = float(np.finfo(float).eps * np.sum(np.abs(coef) * np.linalg.norm(V, axis=0))
                      * max(M.shape[0], 1))
    H = hessian(problem, settings.cost, settings.standardize)
    G = np.sqrt(cost_scale(settings.cost, problem.n)) * factor(problem, settings.cost,
                                                                settings.standardize)
    return _Modal(mu, V, coef, A, H, p, noise, G, M, z0)


def predictions(problem: Problem, settings: Settings, lr: float, init: Sequence[float],
                param_tols: Sequence[float] = (), cost_tols: Sequence[float] = (),
                max_epochs: int = 10_000_000, gap_den: float | None = None
                ) -> tuple[dict[float, Prediction], dict[float, Prediction]]:
    """First epoch n ≤ max_epochs with ‖θ_n − θ*‖ ≤ t (per param tol) and (J_n − J*)/den ≤ t
    (per cost tol; den from :func:`gap_denominator` unless given), with the reason when there
    is none.

    Plain simultaneous GD: in the eigenbasis of H (:func:`spectrum`) with c = Vᵀ(θ₀ − θ*),
    ‖θ_n − θ*‖² = Σ c_i²(1 − lr·λ_i)²ⁿ and J_n − J* = ½ Σ λ_i c_i²(1 − lr·λ_i)²ⁿ, both
    non-increasing; evaluated in log space with ln|1 − lr·λ| by log1p, so the first epoch is
    found by bisection however far beyond the cap it lies. Other linear maps: the exact modal
    form z_n = V(μⁿ ⊙ V⁻¹z₀), scanned only between a lower and an upper modal envelope.
    Line search has no fixed linear map: for ``exact`` the Kantorovich bound
    (J_n − J*) ≤ ((κ−1)/(κ+1))^{2n} (J₀ − J*) and ‖δ‖² ≤ 2(J − J*)/λ_min give upper bounds;
    for ``backtracking`` nothing is predicted.
    """
    den = gap_denominator(problem, settings.cost)[0] if gap_den is None else gap_den
    targets = [("param", float(t), float(t)) for t in param_tols]
    targets += [("cost", float(t), float(t) * den) for t in cost_tols]
    if settings.optimizer == "line_search":
        found = _line_search_bound(problem, settings, init, targets, max_epochs)
    elif is_plain(settings) and not settings.standardize:
        found = _spectral_first(problem, settings, lr, init, targets, max_epochs)
    else:
        found = _modal_first(_modal(problem, settings, lr, init), targets, max_epochs)
    return ({t: found[("param", t)] for k, t, _ in targets if k == "param"},
            {t: found[("cost", t)] for k, t, _ in targets if k == "cost"})


def predicted_epochs(problem: Problem, settings: Settings, lr: float, init: Sequence[float],
                     param_tols: Sequence[float] = (), cost_tols: Sequence[float] = (),
                     max_epochs: int = 10_000_000) -> tuple[dict, dict]:
    """The epochs of :func:`predictions` alone (None when not reached by the cap), with the
    cost targets relative to J* (as the engine's ``first_cost_epoch``)."""
    j_star = problem.ols_cost(settings.cost)
    params, costs = predictions(problem, settings, lr, init, param_tols, cost_tols, max_epochs,
                                gap_den=j_star if j_star > 0 else 1.0)
    return ({t: v.epochs for t, v in params.items()}, {t: v.epochs for t, v in costs.items()})


def _capped(n: float, max_epochs: int, reason: str | None = None) -> Prediction:
    if n <= max_epochs:
        return Prediction(int(n), float(n))
    return Prediction(None, float(n), reason or beyond_text(n))


def _spectral_first(problem, settings, lr, init, targets, max_epochs) -> dict:
    sp = spectrum(problem, settings)
    c = sp.vectors.T @ (np.asarray(init, dtype=np.float64) - problem.ols_theta)
    ell = log_factor(lr * sp.values)
    stuck = None
    if 1.0 - lr * sp.lam_min == 1.0:
        stuck = (f"not reachable in double precision: the slow direction shrinks by a factor "
                 f"1 − {lr * sp.lam_min:.1e} per epoch, which rounds to 1")
    out = {}
    with np.errstate(all="ignore"):
        for kind, t, level in targets:
            weight = np.ones_like(c) if kind == "param" else 0.5 * sp.values
            a = np.log(weight * c * c)  # −inf where a mode is absent
            bound = 2.0 * np.log(t) if kind == "param" else np.log(level)
            out[(kind, t)] = _log_first(a, 2.0 * ell, bound, max_epochs, stuck)
    return out


def _log_first(a: np.ndarray, slope: np.ndarray, bound: float, max_epochs: int,
               stuck: str | None) -> Prediction:
    """First integer n ≥ 0 with log Σ exp(a_i + n·slope_i) ≤ bound (slope_i < 0)."""

    def f(n: float) -> float:
        terms = a + n * slope
        top = np.max(terms)
        if not np.isfinite(top):
            return top
        return float(top + np.log(np.sum(np.exp(terms - top))))

    if f(0.0) <= bound:
        return Prediction(0, 0.0)
    live = np.isfinite(a)
    if np.any(slope[live] > 0.0):
        return Prediction(None, None, "never: a mode of the error grows (lr ≥ lr_max)")
    if np.any(slope[live] == 0.0):  # |1 − lr·λ| is exactly 1 in double: 1 − 1e-20 is lost
        return Prediction(None, float("inf"), "not reachable in double precision: a mode's "
                                              "factor per epoch rounds to ±1")
    # each live term ≤ bound − log k once n ≥ n_i: an upper end for the bisection
    k = np.log(np.count_nonzero(live))
    hi = float(np.max((bound - k - a[live]) / slope[live]))
    if not np.isfinite(hi) or hi > 1e300:
        return Prediction(None, float("inf"), "never in double precision")
    lo, hi = 0, int(np.ceil(max(hi, 1.0)))
    while f(hi) > bound:  # rounding of the log-sum can leave f(hi) a hair above
        hi *= 2
    while hi - lo > 1:  # f(lo) > bound ≥ f(hi)
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if f(mid) <= bound else (mid, hi)
    return _capped(hi, max_epochs, (f"{stuck} ({beyond_text(hi)} in exact arithmetic)"
                                    if stuck else None))


def _modal_settled(modal: _Modal, targets) -> dict:
    """The targets answered without a scan: met at the start, never met (no contraction), or
    below the rounding of the modal form."""
    out: dict = {}
    rho = float(np.max(np.abs(modal.mu)))
    dist0, gap0 = (float(v[0]) for v in modal.errors(np.array([0])))
    for kind, t, level in targets:
        value0 = dist0 if kind == "param" else gap0
        scale = modal.noise * np.linalg.norm(modal.C, 2)
        noisy = scale if kind == "param" else 0.5 * np.linalg.norm(modal.H, 2) * scale * scale
        if value0 <= level:
            out[(kind, t)] = Prediction(0, 0.0)
        elif not rho < 1.0:
            out[(kind, t)] = Prediction(None, None, "never: the iteration does not contract "
                                                    "(spectral radius ≥ 1 in double precision)")
        elif noisy >= level:
            out[(kind, t)] = Prediction(None, None, "not computable in double precision (rounding "
                                                    "in the modal form exceeds the target)")
    return out


def _modal_first(modal: _Modal, targets, max_epochs: int) -> dict:
    out = _modal_settled(modal, targets)
    todo = [(k, t, lv) for k, t, lv in targets if (k, t) not in out]
    if not todo:
        return out
    idx = {"param": 0, "cost": 1}
    # the envelopes say where to look: no hit before `low`, surely one by `high`
    windows = {}
    for kind, t, level in todo:
        low = _first_below(lambda n, k=kind: modal.envelope(n, True, k), level)
        high = _first_below(lambda n, k=kind: modal.envelope(n, False, k), level)
        windows[(kind, t)] = (low, high)
        if low > max_epochs:
            out[(kind, t)] = Prediction(None, low, beyond_text(low))
    todo = [(k, t, lv) for k, t, lv in todo if (k, t) not in out]
    start = int(min((windows[(k, t)][0] for k, t, _ in todo), default=0))
    stop = int(min(max_epochs, max((windows[(k, t)][1] for k, t, _ in todo), default=0)))
    for n, *values in (modal.scan(start, stop) if todo else ()):
        for kind, t, level in list(todo):
            hits = np.flatnonzero(values[idx[kind]] <= level)
            if hits.size:
                out[(kind, t)] = _confirmed(modal, kind, level, int(n[hits[0]]))
                todo.remove((kind, t, level))
        if not todo:
            break
    for kind, t, _ in todo:
        low = windows[(kind, t)][0]
        out[(kind, t)] = Prediction(None, None, f"not within the cap of {max_epochs:,} epochs"
                                    if low <= max_epochs else beyond_text(low))
    return out


def _confirmed(modal: _Modal, kind: str, level: float, n: int) -> Prediction:
    """A first epoch found by stepping with matrix powers, kept only if the modal form agrees
    at that epoch (both forms round; where they disagree neither is trusted)."""
    dist, gap = (float(v[0]) for v in modal.errors(np.array([n])))
    if (dist if kind == "param" else gap) <= level * (1.0 + 1e-6):
        return Prediction(n, float(n))
    return Prediction(None, None, "not computable in double precision (the matrix-power and "
                                  "modal forms of the iteration disagree)")


def _first_below(f, level: float) -> float:
    """First n ≥ 0 (real) with the non-increasing f(n) ≤ level, by bisection in n."""
    if f(0.0) <= level:
        return 0.0
    hi = 1.0
    while f(hi) > level:
        hi *= 2.0
        if hi > 1e300:
            return float("inf")
    lo = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if f(mid) <= level else (mid, hi)
        if hi - lo <= 0.5:
            break
    return float(np.floor(lo)) if f(np.floor(lo)) <= level else float(np.ceil(hi))


def _line_search_bound(problem, settings, init, targets, max_epochs) -> dict:
    if settings.line_search != "exact":
        return {(k, t): Prediction(None, None, "no prediction for backtracking line search")
                for k, t, _ in targets}
    sp = spectrum(problem, settings)
    kappa = sp.condition_number
    # ln((κ−1)/(κ+1))² = 2(ln(1 − 1/κ) − ln(1 + 1/κ)), exact even when the rate rounds to 1
    log_rate_ = 2.0 * (np.log1p(-1.0 / kappa) - np.log1p(1.0 / kappa))
    gap0 = cost_gap(problem, settings, init)
    # ‖δ‖ in original units ≤ ‖A‖·‖δ_z‖ ≤ ‖A‖·sqrt(2·gap/λ_min)
    norm_a = np.linalg.norm(working(problem, settings.cost, settings.standardize).A, 2)

    def epochs_for(gap_target: float) -> Prediction:
        if gap0 <= gap_target:
            return Prediction(0, 0.0)
        if not log_rate_ < 0.0:
            return Prediction(None, None, "never: the bound does not shrink")
        if not np.isfinite(log_rate_):
            return Prediction(1, 1.0)
        n = float(np.ceil(np.log(gap_target / gap0) / log_rate_))
        stuck = None
        if (kappa - 1.0) / (kappa + 1.0) == 1.0:
            stuck = (f"not reachable in double precision: the bound's rate ((κ−1)/(κ+1))² "
                     f"rounds to 1 at κ = {kappa:.2g} ({beyond_text(n)} in exact arithmetic)")
        return _capped(n, max_epochs, stuck)

    return {(kind, t): epochs_for(0.5 * sp.lam_min * (t / norm_a) ** 2 if kind == "param"
                                  else level)
            for kind, t, level in targets}


def predicted_status(problem: Problem, settings: Settings, lr: float, init: Sequence[float],
                     epochs: int, dist_tol: float) -> str:
    """'diverged' (unstable lr), 'converged' (‖θ − θ*‖ ≤ dist_tol within the budget) or
    'not converged' (stable, but the budget is too small)."""
    if settings.optimizer != "line_search" and lr >= lr_max(problem, settings):
        return "diverged"
    params, _ = predicted_epochs(problem, settings, lr, init, (dist_tol,), (), epochs)
    return "converged" if params[float(dist_tol)] is not None else "not converged"
