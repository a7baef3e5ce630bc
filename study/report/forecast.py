"""Theory's first epochs for many plain-GD trials at once (the report's fast path).

For plain simultaneous gradient descent in original units the error evolves in the eigenbasis
H = V Λ Vᵀ of the Hessian as

    c_n = (1 − lr·λ)ⁿ ⊙ c_0,   c_0 = Vᵀ(θ_0 − θ*),
    ‖θ_n − θ*‖² = Σ_i (1 − lr·λ_i)^{2n} c_{0,i}²,   J_n − J* = ½ Σ_i λ_i (1 − lr·λ_i)^{2n} c_{0,i}²,

both non-increasing in n for a stable lr (|1 − lr·λ_i| < 1), so the first epoch n ≤ cap at
which each falls to a tolerance is found by bisection, here for every trial in one array
(about 30 vectorized evaluations whatever the number of trials). This is
:func:`study.core.prediction.predicted_epochs` for that case, one Hessian per settings instead
of one per trial; its tests compare the two. Other settings go through theory one trial at a time.
This module imports numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from study.core import theory
from study.core.engine import Settings
from study.core.problem import Problem


def vectorizable(settings: Settings) -> bool:
    """Plain simultaneous GD in original units: the error map is symmetric and every term of
    the error only shrinks."""
    return (settings.optimizer == "gd" and settings.update == "simultaneous"
            and not settings.standardize)


def first_epochs(problem: Problem, settings: Settings, lrs: Sequence[float],
                 inits: np.ndarray, targets: Sequence[tuple[str, float]], cap: int
                 ) -> np.ndarray:
    """(K, T) first epochs n ≤ ``cap`` with ‖θ_n − θ*‖ ≤ t (kind ``"param"``) or
    (J_n − J*)/J* ≤ t (kind ``"cost"``) for K trials (lr, init) and T targets; −1 where not
    reached. An unstable lr reaches a target only at epoch 0, as in theory."""
    H = theory.hessian(problem, settings.cost, False)
    lam, V = np.linalg.eigh(H)
    lrs = np.asarray(lrs, dtype=float)
    c2 = ((np.atleast_2d(np.asarray(inits, dtype=float)) - problem.ols_theta) @ V) ** 2
    j_star = problem.ols_cost(settings.cost)
    rel_den = j_star if j_star > 0 else 1.0
    with np.errstate(divide="ignore"):
        log_rate = np.log(np.abs(1.0 - lrs[:, None] * lam[None, :]))  # (K, p); −inf: one step
    stable = np.all(log_rate < 0.0, axis=1)
    out = np.full((lrs.size, len(targets)), -1, dtype=np.int64)
    for j, (kind, t) in enumerate(targets):
        weights = lam / rel_den * 0.5 if kind == "cost" else np.ones_like(lam)

        def value(n: np.ndarray, w: np.ndarray = weights, root: bool = kind == "param"
                  ) -> np.ndarray:
            with np.errstate(invalid="ignore", over="ignore"):
                shrink = np.where(n[:, None] == 0, 1.0, np.exp(2.0 * n[:, None] * log_rate))
            total = (shrink * c2 * w).sum(axis=1)
            return np.sqrt(total) if root else total

        out[:, j] = _bisect_first(value, float(t), cap, stable)
    return out


def _bisect_first(value, t: float, cap: int, stable: np.ndarray) -> np.ndarray:
    """Smallest n in [0, cap] with value(n) ≤ t per row (value non-increasing on stable rows),
    −1 where value(cap) > t; unstable rows: 0 if value(0) ≤ t else −1."""
    k = stable.size
    at_zero = value(np.zeros(k, dtype=np.int64)) <= t
    result = np.where(at_zero, 0, -1)
    todo = stable & ~at_zero & (value(np.full(k, cap, dtype=np.int64)) <= t)
    lo, hi = np.zeros(k, dtype=np.int64), np.full(k, cap, dtype=np.int64)
    while np.any(todo & (hi - lo > 1)):
        mid = (lo + hi) // 2
        ok = value(mid) <= t
        moving = todo & (hi - lo > 1)
        hi = np.where(moving & ok, mid, hi)
        lo = np.where(moving & ~ok, mid, lo)
    return np.where(todo, hi, result)
