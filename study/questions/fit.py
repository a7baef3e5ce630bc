"""One gradient-descent fit from the command line or a notebook, compared with OLS."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from study.core import engine, theory
from study.core.constraints import DEFAULTS, check_each, check_params
from study.core.data import load_problem
from study.errors import StudyError


def fit(data: str | Path, *, x: Sequence[str | int] | None = None, y: str | int | None = None,
        lr: float = DEFAULTS["lr"], epochs: int = DEFAULTS["epochs"],
        init_m: float | Sequence[float] = DEFAULTS["init"], init_b: float = DEFAULTS["init"],
        seed: int = DEFAULTS["seed"], **settings) -> dict:
    """Run one trial on a CSV and return a JSON-ready summary.

    ``init_m`` is the initial slope (one value for every weight, or one per feature);
    ``settings`` are :class:`study.core.engine.Settings` fields (cost, update, optimizer, …).
    Keys: m, b (one feature) or weights, intercept; cost, initial_cost, status, epochs_run,
    diverged_at, dist_to_ols, cost_gap, rel_cost_gap, lr, lr_max, ols {m, b | weights,
    intercept, cost}, settings.
    """
    problem = load_problem(data, x=x, y=y)
    slopes = [float(init_m)] * problem.d if isinstance(init_m, int | float) else list(init_m)
    try:
        check_params({"lr": lr, "epochs": epochs})
        check_each("init", [*slopes, init_b])
        s = engine.Settings(seed=seed, **{k: v for k, v in settings.items() if v is not None})
    except ValueError as exc:
        raise StudyError(str(exc)) from None
    with np.errstate(all="ignore"):  # divergence is a status, not a warning
        lam_max = theory.spectrum(problem, s).lam_max
        if not math.isfinite(lr * lam_max):
            raise StudyError(f"--lr {lr:g} times the Hessian's largest eigenvalue "
                             + (f"{lam_max:.3g} " if math.isfinite(lam_max) else "")
                             + "overflows float64: not a single step can be computed")
        try:
            result = engine.run_one(problem, engine.Trial(lr, epochs, (*slopes, init_b), s))
        except np.linalg.LinAlgError:
            raise StudyError(f"--lr {lr:g} is so large that one epoch's linear map is not "
                             f"representable in float64 (λ_max = {lam_max:.3g})") from None
        edge = theory.lr_max(problem, s)
        den, mode = theory.gap_denominator(problem, s.cost)
    out = {**_line(problem, result.theta),
           "cost": result.cost, "initial_cost": result.initial_cost, "status": result.status,
           "epochs_run": result.epochs_run, "diverged_at": result.diverged_at,
           "dist_to_ols": result.dist_to_ols, "cost_gap": result.cost_gap,
           # J − J* over J*, or over 1 when J* is at rounding level ("gap": "absolute")
           "rel_cost_gap": result.cost_gap / den if mode == "relative" else None,
           "gap": mode, "lr": lr,
           "lr_max": edge if math.isfinite(edge) else None,
           **({} if math.isfinite(edge) else
              {"lr_max_reason": f"{theory.NO_EDGE}: no edge of stability"}),
           "ols": {**_line(problem, problem.ols_theta), "cost": problem.ols_cost(s.cost)},
           "data": {"path": str(data), "n": problem.n, "x": list(problem.x_names),
                    "y": problem.y_name},
           "settings": {"cost": s.cost, "update": s.update, "optimizer": s.optimizer,
                        "standardize": s.standardize}}
    return _finite(out)


def _finite(value):
    """Strict JSON: a non-finite float (a diverged run's last values can overflow) becomes
    None, and its key gains a ``<key>_reason`` sibling."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out[k] = _finite(v)
            if isinstance(v, float) and not math.isfinite(v):
                out[f"{k}_reason"] = "not finite in double precision"
        return out
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _line(problem, theta) -> dict:
    if problem.d == 1:
        return {"m": float(theta[0]), "b": float(theta[1])}
    return {"weights": [float(v) for v in theta[:-1]], "intercept": float(theta[-1])}


def format_fit(out: dict) -> str:
    """A short human-readable summary of :func:`fit`'s output."""

    def line(d: dict) -> str:
        if "m" in d:
            return f"y = {_num(d['m'])}·x + {_num(d['b'])}"
        return "weights " + ", ".join(_num(w) for w in d["weights"]) + \
            f"; intercept {_num(d['intercept'])}"

    s = out["settings"]
    status = out["status"]
    diverged = status == "diverged"
    if diverged:
        status += f" at epoch {out['diverged_at']} (last finite values shown)"
    gap = (f"({out['rel_cost_gap']:.2%} of J*)" if out["gap"] == "relative" and
           out["rel_cost_gap"] is not None else
           "(absolute: J* is at rounding level, so no relative gap)")
    edge = (f"{_num(out['lr'], '.4g')} = {out['lr'] / out['lr_max']:.3g} × lr_max (edge of "
            f"stability {_num(out['lr_max'], '.4g')})" if out["lr_max"] is not None else
            f"{_num(out['lr'], '.4g')} ({theory.NO_EDGE}: no edge of stability)")
    rows = [
        f"data        {out['data']['path']} ({out['data']['n']} rows)",
        f"method      {s['optimizer']}, {s['update']} update, cost {s['cost']}"
        + (", standardized features" if s["standardize"] else ""),
        f"GD line     {line(out)}   cost {_num(out['cost'])}"
        + (" (diverged)" if diverged else ""),
        f"OLS line    {line(out['ols'])}   cost {_num(out['ols']['cost'])}",
        f"status      {status} after {out['epochs_run']} epochs",
        f"distance    ‖θ − θ*‖ = {_num(out['dist_to_ols'], '.4g')}; cost gap J − J* = "
        f"{_num(out['cost_gap'], '.4g')} {gap}" + (" (diverged)" if diverged else ""),
        f"lr          {edge}",
    ]
    return "\n".join(rows)


def _num(value: float | None, spec: str = ".6g") -> str:
    """A number for the text; words where JSON holds null (not finite in double precision)."""
    return "(beyond double precision)" if value is None else format(value, spec)
