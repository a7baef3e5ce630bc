"""Gradient descent for linear regression, many trials at once.

A *trial* is a learning rate, an epoch budget and a start θ₀ = (m, b) (or (w…, b)), run under
:class:`Settings`. Update rules, with g = ∇J(θ):

- ``gd``, simultaneous:       θ ← θ − lr·g(θ)                              (tutorials A, C, D, E)
- ``gd``, sequential:         m ← m − lr·∂J/∂m(m, b);  b ← b − lr·∂J/∂b(m_new, b)   (tutorial B;
                              with several features in coordinate order, intercept last)
- ``momentum`` (heavy ball):  v ← β v − lr·g(θ);  θ ← θ + v
- ``line_search``:            θ ← θ − t·g, with t from Armijo backtracking (start at lr, shrink
                              by ``shrink`` until J(θ − t g) ≤ J(θ) − armijo·t·‖g‖²) or the exact
                              minimiser t = gᵀg / gᵀHg of the quadratic cost along −g
- ``minibatch`` SGD:          per epoch, one pass over a seeded random permutation in batches B,
                              θ ← θ − lr·(N/|B|)·2s Σ_{i∈B} x_i r_i

Full-batch rules use the sufficient statistics only (O(d²) per epoch); see
:mod:`study.core.kernels`, whose registry ``RULES`` maps each rule's name (:func:`rule_name`:
the optimizer, then the update or the line search) to its compiled epoch and the named tuple of
its parameters. The engine fills that tuple's fields by name (``lr``, ``M`` from
:func:`iteration_matrices`, ``batch_size``, ``sequential``, ``armijo``, ``shrink``), so a new
rule needs no code here unless it needs a new field; its test is a row of the rule table in
``tests/core/test_engine.py``.

Divergence is a status: a run stops at the first epoch whose cost is non-finite or exceeds
``divergence_factor`` × the initial cost (× 1/(1−β)² for momentum, whose stable transients can
grow that much), and reports that epoch with the last finite values.

Batch independence: every trial runs alone in its own compiled loop with the same operations in
the same order, so its result is bit-for-bit identical alone or among any number of other trials.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from types import ModuleType
from typing import TYPE_CHECKING

__all__ = ["Result", "Settings", "Trial", "checkpoints", "rule_name", "run", "run_batch",
           "run_one"]

import numpy as np

from study.core.constraints import DEFAULTS, check_array, check_params
from study.core.problem import Problem, cost_scale
from study.core.stoppable import halt_flag, run_stoppable

if TYPE_CHECKING:
    from study.core import kernels as K

STATUSES = ("converged", "max_epochs", "diverged")
# A trial stopped from outside (its ``halt`` flag set) before its end: no outcome, not counted.
HALTED = "halted"
# the status of each kernel code (K.CONVERGED, K.MAX_EPOCHS, K.DIVERGED, K.HALTED = 0, 1, 2, 3)
_STATUS_OF_CODE = (*STATUSES, HALTED)
# Below this many point-epochs a batch runs in the calling thread: a few milliseconds, not
# worth a helper thread (~0.1 ms) to make it stoppable.
THREADED_WORK = 1_000_000


@dataclass(frozen=True)
class Settings:
    """Algorithm settings shared by the trials of a batch; allowed values and defaults are
    declared in :mod:`study.core.constraints`."""

    cost: str = DEFAULTS["cost"]
    update: str = DEFAULTS["update"]
    optimizer: str = DEFAULTS["optimizer"]
    momentum: float = DEFAULTS["momentum"]
    batch_size: int = DEFAULTS["batch_size"]
    line_search: str = DEFAULTS["line_search"]
    armijo: float = DEFAULTS["armijo"]
    shrink: float = DEFAULTS["shrink"]
    standardize: bool = DEFAULTS["standardize"]
    tol_cost_change: float | None = DEFAULTS["tol_cost_change"]
    tol_grad: float | None = DEFAULTS["tol_grad"]
    tol_param: float | None = DEFAULTS["tol_param"]
    divergence_factor: float = DEFAULTS["divergence_factor"]
    history_points: int = DEFAULTS["history_points"]
    history_dense: int = DEFAULTS["history_dense"]
    param_tols: tuple[float, ...] = DEFAULTS["param_tols"]
    cost_tols: tuple[float, ...] = DEFAULTS["cost_tols"]
    record_path: bool = DEFAULTS["record_path"]
    seed: int = DEFAULTS["seed"]

    def __post_init__(self) -> None:
        check_params({f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True)
class Trial:
    """One run: learning rate, epoch budget, start θ₀ (m, b) or (w…, b), settings."""

    lr: float
    epochs: int
    init: tuple[float, ...] = (0.0, 0.0)
    settings: Settings = field(default_factory=Settings)
    seed: int | None = None  # minibatch shuffling; None: settings.seed


@dataclass(frozen=True)
class Result:
    """What one trial did. θ in original units; costs under the trial's cost convention."""

    theta: np.ndarray
    cost: float
    initial_cost: float
    status: str
    epochs_run: int
    diverged_at: int | None
    dist_to_ols: float
    dist_per_param: np.ndarray
    cost_gap: float
    rel_cost_gap: float
    grad_norm: float
    first_param_epoch: dict[float, int | None]
    first_cost_epoch: dict[float, int | None]
    history_epoch: np.ndarray
    history_cost: np.ndarray
    history_theta: np.ndarray | None = None


def checkpoints(epochs: int, points: int = 200, dense: int = 100) -> np.ndarray:
    """Epochs at which the history is kept: 0, 1, …, up to ``dense`` (at most half the points),
    then log-spaced up to ``epochs``; at most ``points − 1`` epochs, leaving room for the epoch
    at which the run actually stops."""
    budget = max(points - 1, 1)
    dense = min(dense, budget // 2, epochs)
    head = np.arange(dense + 1, dtype=np.int64)
    if epochs <= dense:
        return head
    tail_n = budget - head.size
    tail = np.unique(np.geomspace(max(dense, 1), epochs, tail_n + 1).round().astype(np.int64))
    out = np.union1d(head, tail[tail > dense])
    if out.size > budget:
        out = np.append(out[: budget - 1], epochs) if budget > 1 else out[:1]
    return out


@dataclass(frozen=True)
class Working:
    """The problem in the coordinates GD works in, for one cost and feature scaling.

    With standardized features z = (x − x̄)/σ the weights are w_z = σ·w and b_z = b + w·x̄;
    errors map back to original units as δ = A·δ_z. Without scaling A = I.
    """

    s: float  # cost scale: J = s·Σ r²
    n: int
    x_mean: np.ndarray  # of the working features (0 when standardized)
    sxx: np.ndarray  # centered Σ uuᵀ of the working features
    U: np.ndarray  # centered working features (N, d)
    residual: np.ndarray  # OLS residuals y − Xθ* (the same in every coordinate system)
    A: np.ndarray  # working error → original-unit error

    @property
    def hessian(self) -> np.ndarray:
        """H = 2s·[[Sxx + N x̄x̄ᵀ, N x̄], [N x̄ᵀ, N]]."""
        d = self.x_mean.size
        H = np.empty((d + 1, d + 1))
        H[:-1, :-1] = self.sxx + self.n * np.outer(self.x_mean, self.x_mean)
        H[:-1, -1] = H[-1, :-1] = self.n * self.x_mean
        H[-1, -1] = self.n
        return 2.0 * self.s * H

    def to_error(self, problem: Problem, theta: np.ndarray) -> np.ndarray:
        """Working-coordinate errors A⁻¹(θ − θ*) of original-unit θ (rows)."""
        return np.linalg.solve(self.A, (np.atleast_2d(theta) - problem.ols_theta).T).T


def working(problem: Problem, cost: str = "mse", standardize: bool = False) -> Working:
    """The working problem for a cost convention and feature scaling."""
    st = problem.stats
    s = cost_scale(cost, st.n)
    U = problem.X - st.x_mean
    residual = problem.y - problem.X @ problem.ols_theta[:-1] - problem.ols_theta[-1]
    p = problem.d + 1
    if not standardize:
        return Working(s, st.n, st.x_mean, st.sxx, U, residual, np.eye(p))
    sigma = np.sqrt(np.diag(st.sxx) / st.n)
    A = np.eye(p)
    A[:-1, :-1] = np.diag(1.0 / sigma)
    A[-1, :-1] = -st.x_mean / sigma
    return Working(s, st.n, np.zeros(problem.d), st.sxx / np.outer(sigma, sigma), U / sigma,
                   residual, A)


def iteration_matrices(H: np.ndarray, lr: np.ndarray, update: str = "simultaneous",
                       beta: float = 0.0) -> np.ndarray:
    """Per-lr linear maps of one full-batch epoch, shape (K, q, q).

    With H = L + D + U (L strictly lower; L = 0 for the simultaneous update):
    G = (I + lr·L)⁻¹(I − lr·(D + U)) maps δ without momentum (G = I − lr·H when simultaneous);
    with momentum β the state is (δ, v) and the map is [[G, B], [G − I, B]], B = β(I + lr·L)⁻¹.
    """
    lr = np.asarray(lr, dtype=np.float64).reshape(-1, 1, 1)
    eye = np.eye(H.shape[0])
    if update == "simultaneous" and beta == 0.0:
        return eye - lr * H
    L = np.tril(H, -1) if update == "sequential" else np.zeros_like(H)
    inv = np.linalg.inv(eye + lr * L)
    G = inv @ (eye - lr * (H - L))
    if beta == 0.0:
        return G
    B = beta * inv
    return np.concatenate([np.concatenate([G, B], axis=2),
                           np.concatenate([G - eye, B], axis=2)], axis=1)


def run(problem: Problem, trials: Sequence[Trial], halt: np.ndarray | None = None
        ) -> list[Result]:
    """Run trials (grouped into one compiled batch per distinct Settings); results in order.

    Ctrl-C stops a long batch within milliseconds (:mod:`study.core.stoppable`). ``halt``
    (:func:`~study.core.stoppable.halt_flag`), once set by a signal handler, ends the running
    trial and every later one with status :data:`HALTED`."""
    results: list[Result | None] = [None] * len(trials)
    groups: dict[Settings, list[int]] = {}
    for i, trial in enumerate(trials):
        groups.setdefault(trial.settings, []).append(i)
    for settings, idx in groups.items():
        batch = [trials[i] for i in idx]
        for i, res in zip(idx, run_batch(
            problem, settings,
            lr=np.array([t.lr for t in batch], dtype=np.float64),
            epochs=np.array([t.epochs for t in batch], dtype=np.int64),
            init=np.array([t.init for t in batch], dtype=np.float64),
            seeds=np.array([settings.seed if t.seed is None else t.seed for t in batch]),
            halt=halt,
        ), strict=True):
            results[i] = res
    return results  # type: ignore[return-value]


def _kernels() -> ModuleType:
    """The compiled kernels. numba and the compiled code load here, on the first run (about
    0.6 s): commands that only read a config, a store or a report's trials never pay it."""
    from study.core import kernels

    return kernels


def run_one(problem: Problem, trial: Trial) -> Result:
    """Run a single trial."""
    return run(problem, [trial])[0]


def run_batch(problem: Problem, settings: Settings, lr: np.ndarray, epochs: np.ndarray,
              init: np.ndarray, seeds: np.ndarray | None = None,
              halt: np.ndarray | None = None) -> list[Result]:
    """Run K trials that share ``settings``: ``lr`` (K,), ``epochs`` (K,), ``init`` (K, p);
    ``halt`` as in :func:`run`."""
    lr = np.ascontiguousarray(lr, dtype=np.float64).reshape(-1)
    epochs = np.ascontiguousarray(epochs, dtype=np.int64).reshape(-1)
    n_trials, p = lr.size, problem.d + 1
    init = np.ascontiguousarray(np.broadcast_to(init, (n_trials, p)), dtype=np.float64)
    seeds = (np.full(n_trials, settings.seed, dtype=np.int64) if seeds is None
             else np.asarray(seeds, dtype=np.int64) % (2**32))
    check_array("lr", lr)
    check_array("epochs", epochs[epochs != 0])  # 0 epochs is the start itself, not a budget
    K = _kernels()
    check_array("init", init)
    w = working(problem, settings.cost, settings.standardize)
    theta_star = problem.ols_theta
    j_star = problem.ols_cost(settings.cost)
    rel_den = j_star if j_star > 0 else 1.0
    e0 = np.ascontiguousarray(w.to_error(problem, init))
    gap0 = np.array([w.s * _sse_excess(w, e) for e in e0])
    # Heavy-ball transients can grow the cost ~1/(1−β)² before they decay (seen: ×770 at
    # β = 0.99 just below the edge), so the growth limit widens by that factor for momentum.
    beta = settings.momentum if settings.optimizer == "momentum" else 0.0
    cost0 = j_star + gap0
    limit = settings.divergence_factor / max((1.0 - beta) ** 2, 1e-32) * cost0
    gap_limit = np.where(cost0 > 0, limit - j_star, np.inf)
    ptol = np.array(sorted(settings.param_tols, reverse=True), dtype=np.float64)
    ctol = np.array(sorted(settings.cost_tols, reverse=True), dtype=np.float64)
    out = _outputs(settings, epochs, ptol, ctol * rel_den, p)
    stop = K.Stopping(
        gap_limit=gap_limit,
        tol_cost_change=-1.0 if settings.tol_cost_change is None else settings.tol_cost_change,
        tol_grad=-1.0 if settings.tol_grad is None else settings.tol_grad,
        tol_param2=-1.0 if settings.tol_param is None else settings.tol_param**2,
        halt=halt_flag() if halt is None else halt)
    quad = K.Quadratic(w.s, float(w.n), w.x_mean, w.sxx, np.ascontiguousarray(w.U), w.residual,
                       w.A, theta_star, j_star)
    params = _rule_params(K.RULES[rule_name(settings)].params, settings, w, lr, beta)
    z0 = e0
    if "M" in params._fields:  # the linear rules' state: δ, or (δ, v) with momentum
        z0 = np.zeros((n_trials, params.M.shape[1]))
        z0[:, :p] = e0
    work = int(epochs.sum()) * (problem.n if settings.optimizer == "minibatch" else 1)
    with np.errstate(all="ignore"):
        run_stoppable(lambda: K.run_trials(params, K.Trials(epochs, z0, seeds), quad, stop, out),
                      stop.halt, threaded=work >= THREADED_WORK)
    return [_result(out, k, settings, ptol, ctol, theta_star, j_star, rel_den)
            for k in range(n_trials)]


def _outputs(settings: Settings, epochs: np.ndarray, ptol: np.ndarray, ctol_abs: np.ndarray,
             p: int) -> K.Outputs:
    """What the kernels record (checkpoints, tolerances) and empty buffers for it."""
    n_trials, n_hist = epochs.size, settings.history_points
    ck = np.full((n_trials, n_hist - 1), -1, dtype=np.int64)
    for e in np.unique(epochs):
        sched = checkpoints(int(e), n_hist, settings.history_dense)
        ck[epochs == e, : sched.size] = sched
    return _kernels().Outputs(
        checkpoints=ck, ptol2=ptol**2, ctol_abs=ctol_abs, record_path=settings.record_path,
        theta=np.empty((n_trials, p)), gap=np.empty(n_trials),
        status=np.empty(n_trials, np.int64), epochs=np.empty(n_trials, np.int64),
        diverged=np.empty(n_trials, np.int64), grad=np.empty(n_trials),
        first_param=np.full((n_trials, ptol.size), -1, np.int64),
        first_cost=np.full((n_trials, ctol_abs.size), -1, np.int64),
        hist_n=np.empty(n_trials, np.int64), hist_epoch=np.empty((n_trials, n_hist), np.int64),
        hist_cost=np.empty((n_trials, n_hist)),
        hist_theta=np.empty((n_trials, n_hist if settings.record_path else 1, p)))


def rule_name(settings: Settings) -> tuple[str, str]:
    """The update rule's key in the kernels' registry: (optimizer, line search) for line
    search, (optimizer, update) otherwise."""
    if settings.optimizer == "line_search":
        return settings.optimizer, settings.line_search
    return settings.optimizer, settings.update


def _rule_params(params: type, settings: Settings, w: Working, lr: np.ndarray,
                 beta: float) -> tuple:
    """The rule's named tuple of parameters, its fields filled by name."""
    fields: dict = {"lr": lr, "batch_size": settings.batch_size,
                    "sequential": settings.update == "sequential", "armijo": settings.armijo,
                    "shrink": settings.shrink}
    if "M" in params._fields:
        K = _kernels()
        fields["M"] = iteration_matrices(w.hessian, lr, settings.update, beta)
        if params is K.LinearMap and fields["M"].shape[1] == 2:  # the scalar loop's own type
            params = K.LinearMap2
    return params(**{name: fields[name] for name in params._fields})


def _sse_excess(w: Working, e: np.ndarray) -> float:
    """Σr² − Σr*² = δwᵀ Sxx δw + N δc² (centered, so it keeps its precision)."""
    dc = e[-1] + e[:-1] @ w.x_mean
    return float(e[:-1] @ w.sxx @ e[:-1] + w.n * dc * dc)


def _result(out: K.Outputs, k: int, settings: Settings, ptol: np.ndarray, ctol: np.ndarray,
            theta_star: np.ndarray, j_star: float, rel_den: float) -> Result:
    theta = out.theta[k].copy()
    nh = int(out.hist_n[k])
    delta = theta - theta_star

    def first(arr: np.ndarray, tols: np.ndarray, wanted: tuple[float, ...]) -> dict:
        by_tol = {float(t): (int(e) if e >= 0 else None) for t, e in zip(tols, arr, strict=True)}
        return {float(t): by_tol[float(t)] for t in wanted}

    div = int(out.diverged[k])
    return Result(
        theta=theta,
        cost=float(j_star + out.gap[k]),
        initial_cost=float(out.hist_cost[k, 0]),
        status=_STATUS_OF_CODE[int(out.status[k])],
        epochs_run=int(out.epochs[k]),
        diverged_at=div if div >= 0 else None,
        dist_to_ols=float(np.linalg.norm(delta)),
        dist_per_param=np.abs(delta),
        cost_gap=float(out.gap[k]),
        rel_cost_gap=float(out.gap[k] / rel_den),
        grad_norm=float(out.grad[k]),
        first_param_epoch=first(out.first_param[k], ptol, settings.param_tols),
        first_cost_epoch=first(out.first_cost[k], ctol, settings.cost_tols),
        history_epoch=out.hist_epoch[k, :nh].copy(),
        history_cost=out.hist_cost[k, :nh].copy(),
        history_theta=out.hist_theta[k, :nh].copy() if settings.record_path else None,
    )

