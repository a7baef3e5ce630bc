"""A linear least-squares problem, its sufficient statistics and its OLS optimum.

The model is ``y ≈ X w + b`` with ``d`` features; the parameter vector is ``theta = (w_1..w_d, b)``
(for one feature, ``theta = (m, b)``). Every cost the project knows is a multiple of the sum of
squared residuals,

    J(theta) = s · Σ_i (y_i − x_i·w − b)²,   s = 1/N (mse), 1/(2N) (half_mse), 1 (sse),

so full-batch gradient descent needs only the *centered* sufficient statistics

    x̄ = mean(X),  ȳ = mean(y),  Sxx = UᵀU,  Sxy = Uᵀv,  Syy = vᵀv,   U = X − x̄,  v = y − ȳ,

computed once in one pass. Centering keeps full precision when x has a large offset (x ≈ 1e6).
This module imports numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

COST_SCALES = {"mse": "1/N", "half_mse": "1/(2N)", "sse": "1"}


def cost_scale(cost: str, n: int) -> float:
    """The factor ``s`` in ``J = s·Σ r²`` for a cost convention and ``n`` points."""
    if cost == "mse":
        return 1.0 / n
    if cost == "half_mse":
        return 0.5 / n
    if cost == "sse":
        return 1.0
    raise ValueError(f"cost must be one of {sorted(COST_SCALES)}; got {cost!r}")


@dataclass(frozen=True)
class Stats:
    """Centered sufficient statistics of ``(X, y)``; see the module docstring."""

    n: int
    x_mean: np.ndarray  # (d,)
    y_mean: float
    sxx: np.ndarray  # (d, d)
    sxy: np.ndarray  # (d,)
    syy: float


@dataclass(frozen=True)
class Problem:
    """Data ``X`` (N × d) and ``y`` (N,) with names; validated by :mod:`study.core.data`."""

    X: np.ndarray
    y: np.ndarray
    x_names: tuple[str, ...] = ("x",)
    y_name: str = "y"
    source: str = "<array>"
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        X = np.asarray(self.X, dtype=np.float64)
        if X.ndim == 1:
            X = X[:, None]
        y = np.asarray(self.y, dtype=np.float64).reshape(-1)
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        if len(self.x_names) != X.shape[1]:
            names = ("x",) if X.shape[1] == 1 else tuple(f"x{j + 1}" for j in range(X.shape[1]))
            object.__setattr__(self, "x_names", names)

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def d(self) -> int:
        return self.X.shape[1]

    @property
    def param_names(self) -> tuple[str, ...]:
        """``("m", "b")`` for one feature, else ``("w1", …, "wd", "b")``."""
        if self.d == 1:
            return ("m", "b")
        return (*(f"w{j + 1}" for j in range(self.d)), "b")

    @cached_property
    def stats(self) -> Stats:
        x_mean = self.X.mean(axis=0)
        y_mean = float(self.y.mean())
        U = self.X - x_mean
        v = self.y - y_mean
        return Stats(self.n, x_mean, y_mean, U.T @ U, U.T @ v, float(v @ v))

    @cached_property
    def ols_theta(self) -> np.ndarray:
        """θ* = argmin Σ r², by lstsq on the centered design (QR/SVD; never inv(XᵀX))."""
        U = self.X - self.stats.x_mean
        w, *_ = np.linalg.lstsq(U, self.y - self.stats.y_mean, rcond=None)
        b = self.stats.y_mean - float(self.stats.x_mean @ w)
        return np.append(w, b)

    @cached_property
    def ols_sse(self) -> float:
        """Σ r² at θ*, from the residuals themselves (not from the normal equations)."""
        w, b = self.ols_theta[:-1], self.ols_theta[-1]
        r = self.y - self.X @ w - b
        return float(r @ r)

    def ols_cost(self, cost: str = "mse") -> float:
        """J* under a cost convention."""
        return cost_scale(cost, self.n) * self.ols_sse

    def cost(self, theta: np.ndarray, cost: str = "mse") -> np.ndarray:
        """J(θ) for one θ (p,) or many (K, p), from the residuals over the data."""
        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        r = self.y[None, :] - theta[:, :-1] @ self.X.T - theta[:, -1:]
        out = cost_scale(cost, self.n) * np.einsum("ij,ij->i", r, r)
        return out if out.size > 1 else out[0]
