"""Compiled gradient-descent kernels (numba); one trial at a time, each in its own loop.

Everything runs on the error δ = θ − θ* in *working coordinates* (the raw features, or their
z-scores when standardizing); original-unit errors are A·δ for a fixed matrix A. With centered
statistics (see :mod:`study.core.problem`) and δc = δw·x̄ + δb (the error of the prediction at x̄),

    ∇J = 2s (Sxx δw + N x̄ δc,  N δc),      J − J* = s (δwᵀ Sxx δw + N δc²),

so an epoch costs O(d²) whatever N is, and small gaps J − J* keep their precision.

Plain GD and heavy-ball momentum (simultaneous or sequential) are linear maps z ← M z of the
state z = δ (or (δ, v) with momentum), iterated with the per-trial M built by
:func:`study.core.engine.iteration_matrices` (one feature without momentum has a scalar hot loop).
Line search and minibatch SGD are not linear in δ: their epochs apply the rules directly.

A trial's numbers never depend on the other trials of its batch: same operations, same order.
Only numpy and numba are imported; compiled code is cached on disk across processes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

LINEAR_MAP, MINIBATCH, LINE_SEARCH = 0, 1, 2  # update rules: how one epoch moves z
SIMULTANEOUS, SEQUENTIAL = 0, 1
BACKTRACKING, EXACT = 0, 1
CONVERGED, MAX_EPOCHS, DIVERGED = 0, 1, 2

_MAX_BACKTRACKS = 200
# Slots of the per-trial bookkeeping arrays used by _event.
_IP, _IC, _IH, _ICK = 0, 1, 2, 3  # next param tol, next cost tol, history length, next checkpoint


@njit(cache=True)
def _gap(e, s, n, x_mean, sxx):
    """J − J* = s (δwᵀ Sxx δw + N δc²)."""
    d = x_mean.shape[0]
    quad = 0.0
    dc = e[d]
    for j in range(d):
        dc += e[j] * x_mean[j]
        row = 0.0
        for k in range(d):
            row += sxx[j, k] * e[k]
        quad += e[j] * row
    return s * (quad + n * dc * dc)


@njit(cache=True)
def _gradient(e, s, n, x_mean, sxx, out):
    """out = ∇J = 2s (Sxx δw + N x̄ δc, N δc)."""
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


@njit(cache=True)
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


@njit(cache=True)
def _event(k, epoch, gap, dist2, book, ptol2, ctol_abs, checkpoints, first_param, first_cost,
           hist_epoch, hist_cost, j_star):
    """Record first epochs under each tolerance and a checkpoint if one is due at ``epoch``.
    Returns the history row written, or −1 (the caller stores θ there when recording paths)."""
    while book[_IP] < ptol2.shape[0] and dist2 <= ptol2[book[_IP]]:
        first_param[k, book[_IP]] = epoch
        book[_IP] += 1
    while book[_IC] < ctol_abs.shape[0] and gap <= ctol_abs[book[_IC]]:
        first_cost[k, book[_IC]] = epoch
        book[_IC] += 1
    if book[_ICK] < checkpoints.shape[1] and checkpoints[k, book[_ICK]] == epoch:
        row = book[_IH]
        hist_epoch[k, row] = epoch
        hist_cost[k, row] = j_star + gap
        book[_IH] += 1
        book[_ICK] += 1
        return row
    return -1


@njit(cache=True)
def _next(k, book, ptol2, ctol_abs, checkpoints):
    """Thresholds of the next event: (param tol², cost gap, checkpoint epoch)."""
    np_ = ptol2[book[_IP]] if book[_IP] < ptol2.shape[0] else -1.0
    nc = ctol_abs[book[_IC]] if book[_IC] < ctol_abs.shape[0] else -1.0
    nk = checkpoints[k, book[_ICK]] if book[_ICK] < checkpoints.shape[1] else -2
    return np_, nc, nk


@njit(cache=True)
def _observe(k, epoch, gap, dist2, e, book, ptol2, ctol_abs, checkpoints, first_param,
             first_cost, hist_epoch, hist_cost, hist_theta, record_path, theta_star, A, j_star):
    """:func:`_event` plus the θ of a recorded checkpoint; returns the next thresholds."""
    row = _event(k, epoch, gap, dist2, book, ptol2, ctol_abs, checkpoints, first_param,
                 first_cost, hist_epoch, hist_cost, j_star)
    if record_path and row >= 0:
        _store_theta(hist_theta, k, row, e, theta_star, A)
    return _next(k, book, ptol2, ctol_abs, checkpoints)


@njit(cache=True)
def _finish(k, epoch, gap, e, status, diverged_at, book, e_star_orig, A, record_path,
            hist_epoch, hist_cost, hist_theta, theta_out, gap_out, status_out, epochs_out,
            diverged_out, grad_norm, grad_out, hist_n, j_star):
    """Write the trial's final state; the last history point is always the final epoch."""
    p = e.shape[0]
    row = book[_IH]
    if row == 0 or hist_epoch[k, row - 1] != epoch:
        if row == hist_epoch.shape[1]:
            row -= 1
        hist_epoch[k, row] = epoch
        hist_cost[k, row] = j_star + gap
        if record_path:
            _store_theta(hist_theta, k, row, e, e_star_orig, A)
        row += 1
    for i in range(p):
        acc = e_star_orig[i]
        for j in range(p):
            acc += A[i, j] * e[j]
        theta_out[k, i] = acc
    gap_out[k] = gap
    status_out[k] = status
    epochs_out[k] = epoch if status != DIVERGED else diverged_at
    diverged_out[k] = diverged_at
    grad_out[k] = grad_norm
    hist_n[k] = row


@njit(cache=True)
def _store_theta(hist_theta, k, row, e, theta_star, A):
    p = e.shape[0]
    for i in range(p):
        acc = theta_star[i]
        for j in range(p):
            acc += A[i, j] * e[j]
        hist_theta[k, row, i] = acc


@njit(cache=True)
def _grad_norm(e, s, n, x_mean, sxx, g):
    _gradient(e, s, n, x_mean, sxx, g)
    total = 0.0
    for j in range(g.shape[0]):
        total += g[j] * g[j]
    return np.sqrt(total)


@njit(cache=True)
def run_trials(
    rule, M, lr, epochs, z0, seeds, checkpoints, gap_limit,  # per trial (M: LINEAR_MAP only)
    s, n, x_mean, sxx, U, v, A, theta_star, j_star,  # problem in working coordinates
    update, batch_size, line_search, armijo, shrink,  # settings of the non-linear rules
    tol_cost_change, tol_grad, tol_param2, ptol2, ctol_abs, record_path,  # (< 0: off)
    theta_out, gap_out, status_out, epochs_out, diverged_out, grad_out,
    first_param, first_cost, hist_n, hist_epoch, hist_cost, hist_theta,
):
    """Run every trial k from its state z0[k]: z = δ (q = p), or (δ, v) (q = 2p) with momentum.
    ``ptol2`` holds squared param tolerances and ``ctol_abs`` absolute cost gaps, both in
    decreasing order; results go into the ``*_out`` and ``hist_*`` arrays."""
    n_trials, q = z0.shape
    p = A.shape[0]
    z = np.empty(q)
    work = np.empty((2, q))  # scratch: the previous state, a line-search trial point
    g = np.empty(p)
    book = np.zeros(4, np.int64)
    for k in range(n_trials):
        np.random.seed(seeds[k])  # noqa: NPY002
        book[:] = 0
        z[:] = z0[k]
        gap = _gap(z[:p], s, n, x_mean, sxx)
        dist2 = _dist2(z[:p], A)
        _observe(k, 0, gap, dist2, z[:p], book, ptol2, ctol_abs, checkpoints, first_param,
                 first_cost, hist_epoch, hist_cost, hist_theta, record_path, theta_star, A, j_star)
        status, diverged_at, last = MAX_EPOCHS, -1, 0
        if tol_param2 >= 0.0 and dist2 <= tol_param2:
            status = CONVERGED
        elif rule == LINEAR_MAP and q == 2:
            status, diverged_at, last, gap = _loop2(
                k, M[k], epochs[k], z, gap, gap_limit[k], s, n, x_mean[0], sxx[0, 0], A,
                theta_star, j_star, tol_cost_change, tol_grad, tol_param2, ptol2, ctol_abs,
                record_path, book, checkpoints, first_param, first_cost, hist_epoch, hist_cost,
                hist_theta)
        else:
            status, diverged_at, last, gap = _loop(
                rule, k, M[k], lr[k], epochs[k], z, work, g, gap, gap_limit[k], s, n, x_mean,
                sxx, U, v, A, theta_star, j_star, update, batch_size, line_search, armijo,
                shrink, tol_cost_change, tol_grad, tol_param2, ptol2, ctol_abs, record_path,
                book, checkpoints, first_param, first_cost, hist_epoch, hist_cost, hist_theta)
        _finish(k, last, gap, z[:p], status, diverged_at, book, theta_star, A, record_path,
                hist_epoch, hist_cost, hist_theta, theta_out, gap_out, status_out, epochs_out,
                diverged_out, _grad_norm(z[:p], s, n, x_mean, sxx, g), grad_out, hist_n, j_star)


@njit(cache=True)
def _loop2(k, M, n_epochs, z, gap, gap_limit, s, n, xm, sxx, A, theta_star, j_star,
           tol_cost_change, tol_grad, tol_param2, ptol2, ctol_abs, record_path, book,
           checkpoints, first_param, first_cost, hist_epoch, hist_cost, hist_theta):
    """The hot loop for one feature without momentum: scalars only (same maths as _loop_n)."""
    m00, m01, m10, m11 = M[0, 0], M[0, 1], M[1, 0], M[1, 1]
    a00, a01, a10, a11 = A[0, 0], A[0, 1], A[1, 0], A[1, 1]
    e0, e1 = z[0], z[1]
    nxt_p, nxt_c, nxt_k = _next(k, book, ptol2, ctol_abs, checkpoints)
    status, diverged_at, last = MAX_EPOCHS, -1, 0
    for epoch in range(1, n_epochs + 1):
        p0, p1, prev_gap = e0, e1, gap
        e0, e1 = m00 * p0 + m01 * p1, m10 * p0 + m11 * p1
        dc = e0 * xm + e1
        gap = s * (sxx * e0 * e0 + n * dc * dc)
        if not (gap <= gap_limit):  # NaN-safe: NaN compares false
            status, diverged_at = DIVERGED, epoch
            if np.isfinite(gap):
                last = epoch
            else:
                e0, e1, gap, last = p0, p1, prev_gap, epoch - 1
            break
        last = epoch
        o0 = a00 * e0 + a01 * e1
        o1 = a10 * e0 + a11 * e1
        dist2 = o0 * o0 + o1 * o1
        if dist2 <= nxt_p or gap <= nxt_c or epoch == nxt_k or dist2 <= tol_param2:
            z[0], z[1] = e0, e1
            nxt_p, nxt_c, nxt_k = _observe(
                k, epoch, gap, dist2, z, book, ptol2, ctol_abs, checkpoints, first_param,
                first_cost, hist_epoch, hist_cost, hist_theta, record_path, theta_star, A, j_star)
            if dist2 <= tol_param2:
                status = CONVERGED
                break
        if tol_cost_change >= 0.0 and abs(gap - prev_gap) <= tol_cost_change:
            status = CONVERGED
            break
        if tol_grad >= 0.0:
            g0 = 2.0 * s * (sxx * e0 + n * xm * dc)
            g1 = 2.0 * s * n * dc
            if np.sqrt(g0 * g0 + g1 * g1) <= tol_grad:
                status = CONVERGED
                break
    z[0], z[1] = e0, e1
    return status, diverged_at, last, gap


@njit(cache=True)
def _loop(rule, k, M, lr, n_epochs, z, work, g, gap, gap_limit, s, n, x_mean, sxx, U, v, A,
          theta_star, j_star, update, batch_size, line_search, armijo, shrink, tol_cost_change,
          tol_grad, tol_param2, ptol2, ctol_abs, record_path, book, checkpoints, first_param,
          first_cost, hist_epoch, hist_cost, hist_theta):
    """The general epoch loop: any rule, any number of features, momentum state included."""
    p = A.shape[0]
    q = z.shape[0]
    prev, trial = work[0], work[1]
    nxt_p, nxt_c, nxt_k = _next(k, book, ptol2, ctol_abs, checkpoints)
    status, diverged_at, last = MAX_EPOCHS, -1, 0
    for epoch in range(1, n_epochs + 1):
        prev_gap = gap
        prev[:] = z
        if rule == LINEAR_MAP:
            for i in range(q):
                acc = 0.0
                for j in range(q):
                    acc += M[i, j] * prev[j]
                z[i] = acc
        elif rule == MINIBATCH:
            _minibatch_epoch(z, lr, s, n, x_mean, U, v, batch_size, update, g)
        else:
            _line_search_step(z, lr, s, n, x_mean, sxx, gap, line_search, armijo, shrink, g,
                              trial)
        gap = _gap(z[:p], s, n, x_mean, sxx)
        if not (gap <= gap_limit):  # NaN-safe: NaN compares false
            status, diverged_at = DIVERGED, epoch
            if np.isfinite(gap):
                last = epoch
            else:
                z[:] = prev
                gap, last = prev_gap, epoch - 1
            break
        last = epoch
        dist2 = _dist2(z[:p], A)
        if dist2 <= nxt_p or gap <= nxt_c or epoch == nxt_k or dist2 <= tol_param2:
            nxt_p, nxt_c, nxt_k = _observe(
                k, epoch, gap, dist2, z[:p], book, ptol2, ctol_abs, checkpoints, first_param,
                first_cost, hist_epoch, hist_cost, hist_theta, record_path, theta_star, A, j_star)
            if dist2 <= tol_param2:
                status = CONVERGED
                break
        if tol_cost_change >= 0.0 and abs(gap - prev_gap) <= tol_cost_change:
            status = CONVERGED
            break
        if tol_grad >= 0.0 and _grad_norm(z[:p], s, n, x_mean, sxx, g) <= tol_grad:
            status = CONVERGED
            break
    return status, diverged_at, last, gap


@njit(cache=True)
def _minibatch_epoch(e, lr, s, n, x_mean, U, v, batch, update, g):
    """One pass over a fresh permutation; each batch B moves θ by −lr times the unbiased
    estimate (N/|B|)·2s Σ_{i∈B} x_i r_i of the full gradient, with the residual
    r_i = δw·u_i + δc − ε_i written through the OLS residual ε_i (``v`` holds ε)."""
    d = x_mean.shape[0]
    n_points = U.shape[0]
    # numba's own generator, reseeded per trial in run_trials: shuffles depend on the trial
    perm = np.random.permutation(n_points)  # noqa: NPY002
    start = 0
    while start < n_points:
        stop = min(start + batch, n_points)
        scale = 2.0 * s * n / (stop - start)
        for part in range(d + 1 if update == SEQUENTIAL else 1):
            dc = e[d]
            for j in range(d):
                dc += e[j] * x_mean[j]
            for j in range(d + 1):
                g[j] = 0.0
            for t in range(start, stop):
                i = perm[t]
                r = dc - v[i]
                for j in range(d):
                    r += e[j] * U[i, j]
                for j in range(d):
                    g[j] += (U[i, j] + x_mean[j]) * r
                g[d] += r
            if update == SEQUENTIAL:  # coordinate ``part`` only, with the latest others
                e[part] -= lr * scale * g[part]
            else:
                for j in range(d + 1):
                    e[j] -= lr * scale * g[j]
        start = stop


@njit(cache=True)
def _line_search_step(e, lr, s, n, x_mean, sxx, gap, line_search, armijo, shrink, g, trial):
    """θ ← θ − t·g with t = gᵀg/gᵀHg (exact) or Armijo backtracking from t = lr."""
    p = e.shape[0]
    _gradient(e, s, n, x_mean, sxx, g)
    gg = 0.0
    for j in range(p):
        gg += g[j] * g[j]
    if line_search == EXACT:
        # gᵀHg = 2·(J − J*) evaluated at δ = g
        curv = 2.0 * _gap(g, s, n, x_mean, sxx)
        t = gg / curv if curv > 0.0 else 0.0
    else:
        t = lr
        for _ in range(_MAX_BACKTRACKS):
            for j in range(p):
                trial[j] = e[j] - t * g[j]
            if _gap(trial, s, n, x_mean, sxx) <= gap - armijo * t * gg:
                break
            t *= shrink
    for j in range(p):
        e[j] -= t * g[j]
