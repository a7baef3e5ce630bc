"""Compiled gradient-descent kernels (numba); one trial at a time, each in its own loop.

Everything runs on the error δ = θ − θ* in *working coordinates* (the raw features, or their
z-scores when standardizing); original-unit errors are A·δ for a fixed matrix A. With centered
statistics (see :mod:`study.core.problem`) and δc = δw·x̄ + δb (the error of the prediction at x̄),

    ∇J = 2s (Sxx δw + N x̄ δc,  N δc),      J − J* = s (δwᵀ Sxx δw + N δc²),

so an epoch costs O(d²) whatever N is, and small gaps J − J* keep their precision.

**Update rules.** Each rule is one compiled function that moves the state z by one epoch,
written like its equation (in its docstring), with the signature
``step(rule, k, z, z_prev, gap, quad, scratch)``: ``rule`` is the rule's own named tuple of
parameters (per-trial arrays indexed by trial ``k``), ``z_prev`` a copy of z before the epoch,
``gap`` = J(z_prev) − J*, ``quad`` the :class:`Quadratic`, ``scratch`` two work rows
(the gradient, a trial point). :data:`RULES` maps each rule's name, as in the settings
(optimizer, then update or line search), to its function and its parameter tuple.

Plain GD and heavy-ball momentum (simultaneous or sequential) are linear maps z ← M z of the
state z = δ (or (δ, v) with momentum), iterated with the per-trial M built by
:func:`study.core.engine.iteration_matrices`; one feature without momentum has a scalar hot loop.
Line search and minibatch SGD are not linear in δ: their epochs apply the rules directly.

To add a rule: write its function (``@njit(cache=True, inline="always")``, equation in the
docstring) and its parameter tuple here (the tuple's type picks the function when
:func:`run_trials` compiles, so each rule gets its own loop and no epoch pays for a dispatch),
add its row to :data:`RULES` (the engine fills the tuple's fields by name from the settings),
and its row to the rule table of ``tests/core/test_engine.py`` (reference loop, known optimum).

**Stopping from outside.** A trial of 10⁹ epochs runs for minutes in one compiled call, which
Python's signal handlers cannot enter. :func:`run_trials` releases the GIL (``nogil``) so it can
run in a helper thread (:mod:`study.core.stoppable`), and its loops look at the one-byte flag
``Stopping.halt``: once another thread sets it, the running trial ends with status ``HALTED`` at
its current epoch (its state recorded as usual) and the trials not started end HALTED at epoch 0.

**Kernel arguments.** :func:`run_trials` takes the rule's tuple and four structured arguments:
:class:`Trials` (budgets, starts, seeds), :class:`Quadratic` (the problem),
:class:`Stopping` (divergence limit and tolerances) and :class:`Outputs` (what to record and the
buffers it goes to).

Speed: the rules and the small helpers are inlined into the loops (``inline="always"``), and the
recording helpers compile without numba's reference counting (``_nrt=False``): a field of a named
tuple taken in compiled code is an array reference counted on every access, which costs more
than the 2-parameter epoch itself.

A trial's numbers never depend on the other trials of its batch: same operations, same order.
Only numpy and numba are imported; compiled code is cached on disk across processes (named tuples
are typed by their class, so the cache keys stay stable across processes; a compiled function
passed as a value would not be cacheable).

One file on purpose, twice the house's module size: numba invalidates a cached function only
when its own source file changes, not when a function it inlines from another file does (numba
pull requests 8396 and 9563 proposed it; neither was merged), so a rule kept in a second file
could change while the loops' cached code kept the old one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numba import njit
from numba.extending import overload

CONVERGED, MAX_EPOCHS, DIVERGED, HALTED = 0, 1, 2, 3
# The one-feature loop looks at the halt flag every 2¹⁶ epochs (well under a millisecond);
# the general loop's epochs cost enough for a look at each.
_POLL_MASK = (1 << 16) - 1

_MAX_BACKTRACKS = 200
# Slots of the per-trial bookkeeping array: the trial, the next param tol, the next cost tol,
# the history length, the next checkpoint.
_IK, _IP, _IC, _IH, _ICK = 0, 1, 2, 3, 4


class Quadratic(NamedTuple):
    """The problem in working coordinates: J = J* + s (δwᵀ Sxx δw + N δc²), θ = θ* + A δ."""

    s: float  # cost scale: J = s·Σ r²
    n: float
    x_mean: np.ndarray  # (d,) of the working features
    sxx: np.ndarray  # (d, d) centered Σ uuᵀ
    U: np.ndarray  # (N, d) centered working features (minibatch only)
    residual: np.ndarray  # (N,) OLS residuals ε (minibatch only)
    A: np.ndarray  # (p, p) working error → original-unit error
    theta_star: np.ndarray  # (p,)
    j_star: float


class Trials(NamedTuple):
    """What differs between the trials of a batch (besides the rule's own parameters)."""

    epochs: np.ndarray  # (K,) budgets
    z0: np.ndarray  # (K, q) start states: δ₀, or (δ₀, 0) with momentum
    seeds: np.ndarray  # (K,) of numba's generator (minibatch shuffles)


class Stopping(NamedTuple):
    """When a trial stops early (a tolerance < 0 is off)."""

    gap_limit: np.ndarray  # (K,) diverged once J − J* exceeds it or is not a number
    tol_cost_change: float  # |ΔJ| between epochs
    tol_grad: float  # ‖∇J‖
    tol_param2: float  # ‖θ − θ*‖²
    halt: np.ndarray  # (1,) uint8, set by another thread: every unfinished trial ends HALTED


class Outputs(NamedTuple):
    """What to record and where: tolerances in decreasing order, per-trial checkpoint epochs
    (−1 padded), then the buffers the kernels write."""

    checkpoints: np.ndarray  # (K, C)
    ptol2: np.ndarray  # squared param tolerances
    ctol_abs: np.ndarray  # absolute cost gaps
    record_path: bool  # store θ at the checkpoints
    theta: np.ndarray  # (K, p)
    gap: np.ndarray  # (K,)
    status: np.ndarray  # (K,)
    epochs: np.ndarray  # (K,)
    diverged: np.ndarray  # (K,)  −1: did not diverge
    grad: np.ndarray  # (K,) final ‖∇J‖
    first_param: np.ndarray  # (K, len(ptol2))  −1: never
    first_cost: np.ndarray  # (K, len(ctol_abs))
    hist_n: np.ndarray  # (K,)
    hist_epoch: np.ndarray  # (K, H)
    hist_cost: np.ndarray  # (K, H)
    hist_theta: np.ndarray  # (K, H, p), or (K, 1, p) when not recording paths


# ---------------------------------------------------------------- the problem's quantities


@njit(cache=True, inline="always")
def _gap(e, quad):
    """J − J* = s (δwᵀ Sxx δw + N δc²)."""
    return _gap_of(e, quad.s, quad.n, quad.x_mean, quad.sxx)


@njit(cache=True, inline="always")
def _gap_of(e, s, n, x_mean, sxx):
    """:func:`_gap` with the arrays at hand (in loops: a named tuple's array is reference
    counted each time it is taken)."""
    d = x_mean.shape[0]
    quad_form = 0.0
    dc = e[d]
    for j in range(d):
        dc += e[j] * x_mean[j]
        row = 0.0
        for k in range(d):
            row += sxx[j, k] * e[k]
        quad_form += e[j] * row
    return s * (quad_form + n * dc * dc)


@njit(cache=True, inline="always")
def _gradient(e, quad, out):
    """out = ∇J = 2s (Sxx δw + N x̄ δc, N δc)."""
    s, n, x_mean, sxx = quad.s, quad.n, quad.x_mean, quad.sxx
    d = x_mean.shape[0]
    dc = e[d]
    for j in range(d):
        dc += e[j] * x_mean[j]
    for j in range(d):
        acc = n * x_mean[j] * dc
        for k in range(d):
            acc += sxx[j, k] * e[k]
        out[j] = 2.0 * s * acc
    out[d] = 2.0 * s * n * dc


@njit(cache=True, inline="always")
def _grad_norm(e, quad, g):
    """‖∇J‖ (g: scratch)."""
    return np.sqrt(_gradient_dot(e, quad, g))


@njit(cache=True, inline="always")
def _dist2(e, A):
    """‖A δ‖²: squared distance to θ* in original units."""
    p = e.shape[0]
    total = 0.0
    for i in range(p):
        row = 0.0
        for j in range(p):
            row += A[i, j] * e[j]
        total += row * row
    return total


# ---------------------------------------------------------------- update rules


class LinearMap(NamedTuple):
    """Parameters of the linear rules: each trial's epoch map (engine.iteration_matrices)."""

    M: np.ndarray  # (K, q, q)


class LinearMap2(NamedTuple):
    """A :class:`LinearMap` of two states (one feature, no momentum), run by the scalar loop.
    Its own type, so that the scalar loop and the general one compile only where used."""

    M: np.ndarray  # (K, 2, 2)


@njit(cache=True, inline="always")
def linear_map(rule, k, z, z_prev, gap, quad, scratch):
    """z ← M z: plain GD δ ← (I − lr·H) δ; sequential GD δ ← (I + lr·L)⁻¹(I − lr·(D + U)) δ;
    heavy ball (δ, v) ← [[G, B], [G − I, B]] (δ, v) (see engine.iteration_matrices)."""
    M = rule.M[k]
    q = z.shape[0]
    for i in range(q):
        acc = 0.0
        for j in range(q):
            acc += M[i, j] * z_prev[j]
        z[i] = acc


class Minibatch(NamedTuple):
    """Parameters of minibatch SGD."""

    lr: np.ndarray  # (K,)
    batch_size: int
    sequential: bool  # coordinate by coordinate, each with the latest others


@njit(cache=True, inline="always")
def minibatch_sgd(rule, k, e, e_prev, gap, quad, scratch):
    """One pass over a fresh permutation in batches B:  θ ← θ − lr·(N/|B|)·2s Σ_{i∈B} x_i r_i,
    the unbiased estimate of the full gradient, with the residual r_i = δw·u_i + δc − ε_i
    written through the OLS residual ε_i. Sequential: coordinate j moves by its own component,
    computed after coordinates < j have moved."""
    lr, batch, sequential = rule.lr[k], rule.batch_size, rule.sequential
    x_mean, U, v, g = quad.x_mean, quad.U, quad.residual, scratch[0]
    d = x_mean.shape[0]
    n_points = U.shape[0]
    # numba's own generator, reseeded per trial in run_trials: shuffles depend on the trial
    perm = np.random.permutation(n_points)  # noqa: NPY002
    start = 0
    while start < n_points:
        stop = min(start + batch, n_points)
        scale = 2.0 * quad.s * quad.n / (stop - start)
        for part in range(d + 1 if sequential else 1):
            _batch_gradient(e, x_mean, U, v, perm[start:stop], g)
            if sequential:  # coordinate ``part`` only, with the latest others
                e[part] -= lr * scale * g[part]
            else:
                for j in range(d + 1):
                    e[j] -= lr * scale * g[j]
        start = stop


@njit(cache=True, inline="always")
def _batch_gradient(e, x_mean, U, v, batch, g):
    """g = Σ_{i∈B} (x_i, 1) r_i with r_i = δw·u_i + δc − ε_i."""
    d = x_mean.shape[0]
    dc = e[d]
    for j in range(d):
        dc += e[j] * x_mean[j]
    for j in range(d + 1):
        g[j] = 0.0
    for i in batch:
        r = dc - v[i]
        for j in range(d):
            r += e[j] * U[i, j]
        for j in range(d):
            g[j] += (U[i, j] + x_mean[j]) * r
        g[d] += r


class Armijo(NamedTuple):
    """Parameters of backtracking line search."""

    lr: np.ndarray  # (K,) first step tried
    armijo: float  # sufficient-decrease constant c
    shrink: float  # step factor per backtrack


@njit(cache=True, inline="always")
def armijo_line_search(rule, k, e, e_prev, gap, quad, scratch):
    """θ ← θ − t·g, t the first of lr, lr·shrink, lr·shrink², … with
    J(θ − t g) ≤ J(θ) − c·t·gᵀg (at most 200 backtracks)."""
    g, trial = scratch[0], scratch[1]
    s, n, x_mean, sxx = quad.s, quad.n, quad.x_mean, quad.sxx
    c, shrink = rule.armijo, rule.shrink
    gg = _gradient_dot(e, quad, g)
    t = rule.lr[k]
    for _ in range(_MAX_BACKTRACKS):
        for j in range(e.shape[0]):
            trial[j] = e[j] - t * g[j]
        if _gap_of(trial, s, n, x_mean, sxx) <= gap - c * t * gg:
            break
        t *= shrink
    _step_along(e, t, g)


class Exact(NamedTuple):
    """Exact line search has no parameters."""


@njit(cache=True, inline="always")
def exact_line_search(rule, k, e, e_prev, gap, quad, scratch):
    """θ ← θ − t·g with t = gᵀg / gᵀHg, the minimiser of the quadratic J along −g
    (t = 0 where the curvature vanishes)."""
    g = scratch[0]
    gg = _gradient_dot(e, quad, g)
    curv = 2.0 * _gap(g, quad)  # gᵀHg = 2·(J − J*) evaluated at δ = g
    _step_along(e, gg / curv if curv > 0.0 else 0.0, g)


@njit(cache=True, inline="always")
def _gradient_dot(e, quad, g):
    """g = ∇J(θ); returns gᵀg."""
    _gradient(e, quad, g)
    gg = 0.0
    for j in range(e.shape[0]):
        gg += g[j] * g[j]
    return gg


@njit(cache=True, inline="always")
def _step_along(e, t, g):
    """θ ← θ − t·g."""
    for j in range(e.shape[0]):
        e[j] -= t * g[j]


class Rule(NamedTuple):
    """An update rule: its compiled epoch and the named tuple of its parameters."""

    step: Callable
    params: type


RULES: dict[tuple[str, str], Rule] = {
    ("gd", "simultaneous"): Rule(linear_map, LinearMap),
    ("gd", "sequential"): Rule(linear_map, LinearMap),
    ("momentum", "simultaneous"): Rule(linear_map, LinearMap),
    ("momentum", "sequential"): Rule(linear_map, LinearMap),
    ("minibatch", "simultaneous"): Rule(minibatch_sgd, Minibatch),
    ("minibatch", "sequential"): Rule(minibatch_sgd, Minibatch),
    ("line_search", "backtracking"): Rule(armijo_line_search, Armijo),
    ("line_search", "exact"): Rule(exact_line_search, Exact),
}


def _epoch(rule, k, z, z_prev, gap, quad, scratch):  # pragma: no cover - compiled only
    """One epoch of ``rule``: the step whose parameter tuple is ``rule``'s type (compiled code)."""
    raise NotImplementedError("called from compiled code only")


@overload(_epoch, jit_options={"cache": True}, inline="always")
def _epoch_of_rule(rule, k, z, z_prev, gap, quad, scratch):
    step = _step_of(rule)

    def epoch(rule, k, z, z_prev, gap, quad, scratch):
        step(rule, k, z, z_prev, gap, quad, scratch)

    return epoch


def _step_of(rule_type) -> Callable:
    """The compiled step registered for a parameter tuple's numba type."""
    cls = getattr(rule_type, "instance_class", None)
    steps = {row.params: row.step for row in RULES.values()}
    if cls not in steps:
        raise TypeError(f"no update rule takes parameters of type {rule_type}")
    return steps[cls]


# ---------------------------------------------------------------- recording


@njit(cache=True, _nrt=False)
def _event(epoch, gap, dist2, book, quad, out):
    """Record first epochs under each tolerance and a checkpoint if one is due at ``epoch``.
    Returns the history row written, or −1 (the caller stores θ there when recording paths)."""
    k = book[_IK]
    ptol2, ctol_abs, checkpoints = out.ptol2, out.ctol_abs, out.checkpoints
    while book[_IP] < ptol2.shape[0] and dist2 <= ptol2[book[_IP]]:
        out.first_param[k, book[_IP]] = epoch
        book[_IP] += 1
    while book[_IC] < ctol_abs.shape[0] and gap <= ctol_abs[book[_IC]]:
        out.first_cost[k, book[_IC]] = epoch
        book[_IC] += 1
    if book[_ICK] < checkpoints.shape[1] and checkpoints[k, book[_ICK]] == epoch:
        row = book[_IH]
        out.hist_epoch[k, row] = epoch
        out.hist_cost[k, row] = quad.j_star + gap
        book[_IH] += 1
        book[_ICK] += 1
        return row
    return -1


@njit(cache=True, _nrt=False)
def _next(book, out):
    """Thresholds of the next event: (param tol², cost gap, checkpoint epoch)."""
    k = book[_IK]
    np_ = out.ptol2[book[_IP]] if book[_IP] < out.ptol2.shape[0] else -1.0
    nc = out.ctol_abs[book[_IC]] if book[_IC] < out.ctol_abs.shape[0] else -1.0
    nk = out.checkpoints[k, book[_ICK]] if book[_ICK] < out.checkpoints.shape[1] else -2
    return np_, nc, nk


@njit(cache=True, _nrt=False)
def _observe(epoch, gap, dist2, e, book, quad, out):
    """:func:`_event` plus the θ of a recorded checkpoint; returns the next thresholds."""
    row = _event(epoch, gap, dist2, book, quad, out)
    if out.record_path and row >= 0:
        _store_theta(out.hist_theta[book[_IK], row], e, quad)
    return _next(book, out)


@njit(cache=True, _nrt=False)
def _store_theta(dest, e, quad):
    """dest = θ* + A δ."""
    p = e.shape[0]
    for i in range(p):
        acc = quad.theta_star[i]
        for j in range(p):
            acc += quad.A[i, j] * e[j]
        dest[i] = acc


@njit(cache=True)
def _finish(ending, gap, e, g, book, quad, out):
    """Write the trial's final state, ``ending`` = (status, diverged_at, last epoch); the last
    history point is always the final epoch."""
    status, diverged_at, epoch = ending
    k = book[_IK]
    row = book[_IH]
    if row == 0 or out.hist_epoch[k, row - 1] != epoch:
        if row == out.hist_epoch.shape[1]:
            row -= 1
        out.hist_epoch[k, row] = epoch
        out.hist_cost[k, row] = quad.j_star + gap
        if out.record_path:
            _store_theta(out.hist_theta[k, row], e, quad)
        row += 1
    _store_theta(out.theta[k], e, quad)
    out.gap[k] = gap
    out.status[k] = status
    out.epochs[k] = epoch if status != DIVERGED else diverged_at
    out.diverged[k] = diverged_at
    out.grad[k] = _grad_norm(e, quad, g)
    out.hist_n[k] = row


# ---------------------------------------------------------------- the loops


@njit(cache=True, nogil=True)
def run_trials(rule, trials, quad, stop, out):
    """Run every trial k from its state z0[k] under ``rule`` (a parameter tuple of :data:`RULES`);
    results go into ``out``. Once ``stop.halt[0]`` is set, the rest end HALTED."""
    n_trials, q = trials.z0.shape
    p = quad.A.shape[0]
    # z and z before the epoch; the rules' scratch rows (contiguous, like every row here)
    work = (np.empty((2, q)), np.empty((2, p)))
    book = np.zeros(5, np.int64)
    for k in range(n_trials):
        np.random.seed(trials.seeds[k])  # noqa: NPY002
        book[:] = 0
        book[_IK] = k
        z = work[0][0]
        z[:] = trials.z0[k]
        gap = _gap(z[:p], quad)
        dist2 = _dist2(z[:p], quad.A)
        _observe(0, gap, dist2, z[:p], book, quad, out)
        if stop.halt[0]:
            ending = (HALTED, -1, 0)
        elif stop.tol_param2 >= 0.0 and dist2 <= stop.tol_param2:
            ending = (CONVERGED, -1, 0)
        else:
            ending, gap = _epochs(rule, trials.epochs[k], gap, work, book, quad, stop, out)
        _finish(ending, gap, z[:p], work[1][0], book, quad, out)


def _epochs(rule, n_epochs, gap, work, book, quad, stop, out):  # pragma: no cover - compiled only
    """Run one trial's epochs: the scalar loop for a linear map of two states, else the general
    loop (compiled code)."""
    raise NotImplementedError("called from compiled code only")


@overload(_epochs, jit_options={"cache": True})
def _epochs_of_rule(rule, n_epochs, gap, work, book, quad, stop, out):
    if getattr(rule, "instance_class", None) is LinearMap2:

        def scalar(rule, n_epochs, gap, work, book, quad, stop, out):
            return _loop2(rule.M[book[_IK]], n_epochs, gap, work, book, quad, stop, out)

        return scalar

    def general(rule, n_epochs, gap, work, book, quad, stop, out):
        return _loop(rule, n_epochs, gap, work, book, quad, stop, out)

    return general


@njit(cache=True)
def _diverged(epoch, gap, prev_gap, z, z_prev):
    """The ending of a run whose gap left its limit at ``epoch``: a finite gap is kept, a
    non-finite one rolls z back to the epoch before."""
    if np.isfinite(gap):
        return (DIVERGED, epoch, epoch), gap
    z[:] = z_prev
    return (DIVERGED, epoch, epoch - 1), prev_gap


@njit(cache=True)
def _loop2(M, n_epochs, gap, work, book, quad, stop, out):
    """The hot loop for one feature without momentum: the map z ← M z, the gap and the
    distance in scalars (same maths as :func:`_loop`)."""
    s, n, xm, sxx, A = quad.s, quad.n, quad.x_mean[0], quad.sxx[0, 0], quad.A
    # the stopping rules as scalars: the loop below is a few nanoseconds per epoch
    gap_limit, tol_change = stop.gap_limit[book[_IK]], stop.tol_cost_change
    tol_param2, tol_grad, halt = stop.tol_param2, stop.tol_grad, stop.halt
    m00, m01, m10, m11 = M[0, 0], M[0, 1], M[1, 0], M[1, 1]
    a00, a01, a10, a11 = A[0, 0], A[0, 1], A[1, 0], A[1, 1]
    z, z_prev = work[0][0], work[0][1]
    e0, e1 = z[0], z[1]
    nxt_p, nxt_c, nxt_k = _next(book, out)
    status, last = MAX_EPOCHS, 0
    for epoch in range(1, n_epochs + 1):
        p0, p1, prev_gap = e0, e1, gap
        e0, e1 = m00 * p0 + m01 * p1, m10 * p0 + m11 * p1
        dc = e0 * xm + e1
        gap = s * (sxx * e0 * e0 + n * dc * dc)
        if not (gap <= gap_limit):  # NaN-safe: NaN compares false
            z[0], z[1], z_prev[0], z_prev[1] = e0, e1, p0, p1
            return _diverged(epoch, gap, prev_gap, z, z_prev)
        last = epoch
        o0 = a00 * e0 + a01 * e1
        o1 = a10 * e0 + a11 * e1
        dist2 = o0 * o0 + o1 * o1
        if dist2 <= nxt_p or gap <= nxt_c or epoch == nxt_k or dist2 <= tol_param2:
            z[0], z[1] = e0, e1
            nxt_p, nxt_c, nxt_k = _observe(epoch, gap, dist2, z, book, quad, out)
            if dist2 <= tol_param2:
                status = CONVERGED
                break
        if tol_change >= 0.0 and abs(gap - prev_gap) <= tol_change:
            status = CONVERGED
            break
        if tol_grad >= 0.0:
            g0 = 2.0 * s * (sxx * e0 + n * xm * dc)
            g1 = 2.0 * s * n * dc
            if np.sqrt(g0 * g0 + g1 * g1) <= tol_grad:
                status = CONVERGED
                break
        if (epoch & _POLL_MASK) == 0 and halt[0]:
            status = HALTED
            break
    z[0], z[1] = e0, e1
    return (status, -1, last), gap


@njit(cache=True, inline="always")
def _settled(gap, prev_gap, stop):
    """The cost changed by at most ``tol_cost_change`` in the last epoch."""
    return stop.tol_cost_change >= 0.0 and abs(gap - prev_gap) <= stop.tol_cost_change


@njit(cache=True)
def _loop(rule, n_epochs, gap, work, book, quad, stop, out):
    """The general epoch loop: any rule, any number of features, momentum state included."""
    p = quad.A.shape[0]
    z, z_prev, scratch = work[0][0], work[0][1], work[1]
    k = book[_IK]
    A, gap_limit, tol_param2, tol_grad = quad.A, stop.gap_limit[k], stop.tol_param2, stop.tol_grad
    halt = stop.halt
    nxt_p, nxt_c, nxt_k = _next(book, out)
    status, last = MAX_EPOCHS, 0
    for epoch in range(1, n_epochs + 1):
        prev_gap = gap
        z_prev[:] = z
        _epoch(rule, k, z, z_prev, gap, quad, scratch)
        gap = _gap(z[:p], quad)
        if not (gap <= gap_limit):  # NaN-safe: NaN compares false
            return _diverged(epoch, gap, prev_gap, z, z_prev)
        last = epoch
        dist2 = _dist2(z[:p], A)
        if dist2 <= nxt_p or gap <= nxt_c or epoch == nxt_k or dist2 <= tol_param2:
            nxt_p, nxt_c, nxt_k = _observe(epoch, gap, dist2, z[:p], book, quad, out)
            if dist2 <= tol_param2:
                status = CONVERGED
                break
        if _settled(gap, prev_gap, stop) or (
                tol_grad >= 0.0 and _grad_norm(z[:p], quad, scratch[0]) <= tol_grad):
            status = CONVERGED
            break
        if halt[0]:
            status = HALTED
            break
    return (status, -1, last), gap


def compiled_here() -> bool:
    """Whether numba's on-disk cache beside this module already holds the trial loop (a fresh
    install compiles it on first use, which takes tens of seconds once)."""
    folder = Path(__file__).with_name("__pycache__")
    return any(folder.glob("kernels.run_trials-*.nbi"))
