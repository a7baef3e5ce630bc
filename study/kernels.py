"""Compiled gradient-descent kernels (numba), one trial per outer loop iteration.

All quantities are in *working coordinates*: the raw features, or their z-scores when the trial
standardizes. With centered statistics (see :mod:`study.problem`) and the mean residual
``c = w·x̄ + b − ȳ``, the gradient of ``J = s·Σ r²`` is

    ∂J/∂w = 2s (Sxx w − Sxy + N x̄ c),     ∂J/∂b = 2s N c,

and the excess cost over the optimum is the exact quadratic form

    J − J* = s (δwᵀ Sxx δw + N (δw·x̄ + δb)²),   δ = θ − θ*,

which is evaluated instead of ``J`` itself so that small gaps keep their precision.
Each trial runs alone in its own loop, so its result is bit-for-bit the same in any batch.
Only numpy and numba are imported; compiled code is cached on disk across processes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Codes shared with study.engine (numba cannot see Python dicts of strings cheaply).
GD, MOMENTUM, LINE_SEARCH, MINIBATCH = 0, 1, 2, 3
SIMULTANEOUS, SEQUENTIAL = 0, 1
BACKTRACKING, EXACT = 0, 1
CONVERGED, MAX_EPOCHS, DIVERGED = 0, 1, 2

_MAX_BACKTRACKS = 200


@njit(cache=True, inline="always")
def _mean_residual(theta, x_mean, y_mean):
    """c = w·x̄ + b − ȳ."""
    d = x_mean.shape[0]
    c = theta[d] - y_mean
    for j in range(d):
        c += theta[j] * x_mean[j]
    return c


@njit(cache=True)
def _gradient(theta, s, n, x_mean, y_mean, sxx, sxy, out):
    """out = ∇J(θ) = 2s (Sxx w − Sxy + N x̄ c, N c)."""
    d = x_mean.shape[0]
    c = _mean_residual(theta, x_mean, y_mean)
    for j in range(d):
        acc = -sxy[j] + n * x_mean[j] * c
        for k in range(d):
            acc += sxx[j, k] * theta[k]
        out[j] = 2.0 * s * acc
    out[d] = 2.0 * s * n * c


@njit(cache=True)
def _gap(theta, theta_star, s, n, x_mean, sxx):
    """J(θ) − J* = s (δwᵀ Sxx δw + N (δw·x̄ + δb)²)."""
    d = x_mean.shape[0]
    quad = 0.0
    dc = theta[d] - theta_star[d]
    for j in range(d):
        dj = theta[j] - theta_star[j]
        dc += dj * x_mean[j]
        row = 0.0
        for k in range(d):
            row += sxx[j, k] * (theta[k] - theta_star[k])
        quad += dj * row
    return s * (quad + n * dc * dc)


@njit(cache=True)
def _curvature(g, s, n, x_mean, sxx):
    """gᵀ H g = 2s (g_wᵀ Sxx g_w + N (g_w·x̄ + g_b)²)."""
    d = x_mean.shape[0]
    quad = 0.0
    gc = g[d]
    for j in range(d):
        gc += g[j] * x_mean[j]
        row = 0.0
        for k in range(d):
            row += sxx[j, k] * g[k]
        quad += g[j] * row
    return 2.0 * s * (quad + n * gc * gc)


@njit(cache=True)
def _sequential_sweep(theta, vel, lr, beta, s, n, x_mean, y_mean, sxx, sxy):
    """Coordinate order, intercept last; each gradient sees the coordinates already updated:
    v_j ← β v_j − lr ∂J/∂θ_j(θ),  θ_j ← θ_j + v_j   (β = 0: the second tutorial's update)."""
    d = x_mean.shape[0]
    for j in range(d):
        c = _mean_residual(theta, x_mean, y_mean)
        acc = -sxy[j] + n * x_mean[j] * c
        for k in range(d):
            acc += sxx[j, k] * theta[k]
        vel[j] = beta * vel[j] - lr * 2.0 * s * acc
        theta[j] += vel[j]
    c = _mean_residual(theta, x_mean, y_mean)
    vel[d] = beta * vel[d] - lr * 2.0 * s * n * c
    theta[d] += vel[d]


@njit(cache=True)
def _to_original(theta, standardize, sigma, x_mean, out):
    """Map working θ to original units: w = w_z/σ, b = b_z − w·x̄ (identity without z-scores)."""
    d = sigma.shape[0]
    if not standardize:
        for j in range(d + 1):
            out[j] = theta[j]
        return
    b = theta[d]
    for j in range(d):
        out[j] = theta[j] / sigma[j]
        b -= out[j] * x_mean[j]
    out[d] = b


@njit(cache=True)
def _minibatch_epoch(theta, lr, s, n, x_mean, y_mean, U, v, batch, update, g):
    """One pass over a fresh permutation; each batch B moves θ by −lr times the unbiased
    estimate (N/|B|)·2s Σ_{i∈B} x_i r_i of the full gradient (r from centered data)."""
    d = x_mean.shape[0]
    # numba's own generator, reseeded per trial in run_trials: shuffles depend on the trial only
    perm = np.random.permutation(U.shape[0])  # noqa: NPY002
    n_points = U.shape[0]
    start = 0
    while start < n_points:
        stop = min(start + batch, n_points)
        scale = 2.0 * s * n / (stop - start)
        n_passes = d + 1 if update == SEQUENTIAL else 1
        for p in range(n_passes):
            c = _mean_residual(theta, x_mean, y_mean)
            for j in range(d + 1):
                g[j] = 0.0
            for t in range(start, stop):
                i = perm[t]
                r = c - v[i]
                for j in range(d):
                    r += theta[j] * U[i, j]
                for j in range(d):
                    g[j] += (U[i, j] + x_mean[j]) * r
                g[d] += r
            if update == SEQUENTIAL:
                theta[p] -= lr * scale * g[p]
            else:
                for j in range(d + 1):
                    theta[j] -= lr * scale * g[j]
        start = stop


@njit(cache=True)
def run_trials(
    lr, epochs, theta0, seeds, checkpoints,  # per trial
    s, n, x_mean, y_mean, sxx, sxy, U, v,  # working problem
    theta_star_w, theta_star, j_star, rel_den,  # optimum (working and original units)
    standardize, sigma, x_mean_orig,  # map back to original units
    optimizer, update, beta, batch_size, line_search, armijo, shrink,  # algorithm
    tol_cost_change, tol_grad, tol_param, divergence_factor,  # stopping (< 0: off)
    param_tols, cost_tols, record_path,
    theta_out, gap_out, status_out, epochs_out, diverged_out, grad_out,
    first_param, first_cost, hist_n, hist_epoch, hist_cost, hist_theta,
):
    """Run every trial to its stop; write results into the ``*_out``/``hist_*`` arrays.

    ``param_tols`` and ``cost_tols`` must be sorted in decreasing order: the first epoch at
    which ‖θ − θ*‖ ≤ t (original units) and (J − J*)/J* ≤ t is recorded for each t.
    """
    n_trials, p = theta0.shape
    n_pt = param_tols.shape[0]
    n_ct = cost_tols.shape[0]
    theta = np.empty(p)
    prev = np.empty(p)
    orig = np.empty(p)
    g = np.empty(p)
    vel = np.empty(p)
    trial_pt = np.empty(p)
    for k in range(n_trials):
        np.random.seed(seeds[k])  # noqa: NPY002
        for j in range(p):
            theta[j] = theta0[k, j]
            vel[j] = 0.0
        step = lr[k]
        gap = _gap(theta, theta_star_w, s, n, x_mean, sxx)
        cost0 = j_star + gap
        # Heavy-ball transients can grow the cost ~1/(1−β)² before they decay (seen: ×770 at
        # β = 0.99 just below the edge), so the growth limit widens by that factor.
        widen = 1.0 / (1.0 - beta) ** 2 if optimizer == MOMENTUM else 1.0
        limit = divergence_factor * widen * cost0 if cost0 > 0.0 else np.inf
        ip = 0
        ic = 0
        ih = 0
        ck = 0
        status = MAX_EPOCHS
        diverged_at = -1
        last = 0
        for e in range(epochs[k] + 1):
            if e > 0:
                for j in range(p):
                    prev[j] = theta[j]
                prev_gap = gap
                if optimizer == MINIBATCH:
                    _minibatch_epoch(theta, step, s, n, x_mean, y_mean, U, v, batch_size, update, g)
                elif update == SEQUENTIAL and optimizer != LINE_SEARCH:
                    _sequential_sweep(theta, vel, step, beta if optimizer == MOMENTUM else 0.0,
                                      s, n, x_mean, y_mean, sxx, sxy)
                else:
                    _gradient(theta, s, n, x_mean, y_mean, sxx, sxy, g)
                    if optimizer == LINE_SEARCH:
                        gg = 0.0
                        for j in range(p):
                            gg += g[j] * g[j]
                        if line_search == EXACT:
                            curv = _curvature(g, s, n, x_mean, sxx)
                            t = gg / curv if curv > 0.0 else 0.0
                        else:
                            t = step
                            for _ in range(_MAX_BACKTRACKS):
                                for j in range(p):
                                    trial_pt[j] = theta[j] - t * g[j]
                                new_gap = _gap(trial_pt, theta_star_w, s, n, x_mean, sxx)
                                if new_gap <= gap - armijo * t * gg:
                                    break
                                t *= shrink
                        for j in range(p):
                            theta[j] -= t * g[j]
                    else:
                        b = beta if optimizer == MOMENTUM else 0.0
                        for j in range(p):
                            vel[j] = b * vel[j] - step * g[j]
                            theta[j] += vel[j]
                gap = _gap(theta, theta_star_w, s, n, x_mean, sxx)
                if not (j_star + gap <= limit):  # NaN-safe: NaN compares false
                    status = DIVERGED
                    diverged_at = e
                    if not np.isfinite(gap):
                        for j in range(p):
                            theta[j] = prev[j]
                        gap = prev_gap
                        last = e - 1
                    else:
                        last = e
                    break
            last = e
            _to_original(theta, standardize, sigma, x_mean_orig, orig)
            dist2 = 0.0
            for j in range(p):
                dj = orig[j] - theta_star[j]
                dist2 += dj * dj
            dist = np.sqrt(dist2)
            rel = gap / rel_den
            while ip < n_pt and dist <= param_tols[ip]:
                first_param[k, ip] = e
                ip += 1
            while ic < n_ct and rel <= cost_tols[ic]:
                first_cost[k, ic] = e
                ic += 1
            if ck < checkpoints.shape[1] and checkpoints[k, ck] == e:
                hist_epoch[k, ih] = e
                hist_cost[k, ih] = j_star + gap
                if record_path:
                    for j in range(p):
                        hist_theta[k, ih, j] = orig[j]
                ih += 1
                ck += 1
            if tol_param >= 0.0 and dist <= tol_param:
                status = CONVERGED
                break
            if e > 0 and tol_cost_change >= 0.0 and abs(gap - prev_gap) <= tol_cost_change:
                status = CONVERGED
                break
            if tol_grad >= 0.0:
                _gradient(theta, s, n, x_mean, y_mean, sxx, sxy, g)
                gn = 0.0
                for j in range(p):
                    gn += g[j] * g[j]
                if np.sqrt(gn) <= tol_grad:
                    status = CONVERGED
                    break
        # Final state: always the last history point, never a non-finite value.
        _to_original(theta, standardize, sigma, x_mean_orig, orig)
        if ih == 0 or hist_epoch[k, ih - 1] != last:
            if ih == hist_epoch.shape[1]:
                ih -= 1
            hist_epoch[k, ih] = last
            hist_cost[k, ih] = j_star + gap
            if record_path:
                for j in range(p):
                    hist_theta[k, ih, j] = orig[j]
            ih += 1
        _gradient(theta, s, n, x_mean, y_mean, sxx, sxy, g)
        gn = 0.0
        for j in range(p):
            theta_out[k, j] = orig[j]
            gn += g[j] * g[j]
        grad_out[k] = np.sqrt(gn)
        gap_out[k] = gap
        status_out[k] = status
        epochs_out[k] = last if status != DIVERGED else diverged_at
        diverged_out[k] = diverged_at
        hist_n[k] = ih
