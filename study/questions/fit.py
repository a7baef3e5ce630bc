"""One gradient-descent fit from the command line or a notebook, compared with OLS."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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
    result = engine.run_one(problem, engine.Trial(lr, epochs, (*slopes, init_b), s))
    out = {**_line(problem, result.theta),
           "cost": result.cost, "initial_cost": result.initial_cost, "status": result.status,
           "epochs_run": result.epochs_run, "diverged_at": result.diverged_at,
           "dist_to_ols": result.dist_to_ols, "cost_gap": result.cost_gap,
           "rel_cost_gap": result.rel_cost_gap, "lr": lr,
           "lr_max": theory.lr_max(problem, s),
           "ols": {**_line(problem, problem.ols_theta), "cost": problem.ols_cost(s.cost)},
           "data": {"path": str(data), "n": problem.n, "x": list(problem.x_names),
                    "y": problem.y_name},
           "settings": {"cost": s.cost, "update": s.update, "optimizer": s.optimizer,
                        "standardize": s.standardize}}
    return out


def _line(problem, theta) -> dict:
    if problem.d == 1:
        return {"m": float(theta[0]), "b": float(theta[1])}
    return {"weights": [float(v) for v in theta[:-1]], "intercept": float(theta[-1])}


def format_fit(out: dict) -> str:
    """A short human-readable summary of :func:`fit`'s output."""

    def line(d: dict) -> str:
        if "m" in d:
            return f"y = {d['m']:.6g}·x + {d['b']:.6g}"
        return "weights " + ", ".join(f"{w:.6g}" for w in d["weights"]) + \
            f"; intercept {d['intercept']:.6g}"

    s = out["settings"]
    status = out["status"]
    if status == "diverged":
        status += f" at epoch {out['diverged_at']} (last finite values shown)"
    ratio = out["lr"] / out["lr_max"]
    rows = [
        f"data        {out['data']['path']} ({out['data']['n']} rows)",
        f"method      {s['optimizer']}, {s['update']} update, cost {s['cost']}"
        + (", standardized features" if s["standardize"] else ""),
        f"GD line     {line(out)}   cost {out['cost']:.6g}",
        f"OLS line    {line(out['ols'])}   cost {out['ols']['cost']:.6g}",
        f"status      {status} after {out['epochs_run']} epochs",
        f"distance    ‖θ − θ*‖ = {out['dist_to_ols']:.4g}; cost gap J − J* = "
        f"{out['cost_gap']:.4g} ({out['rel_cost_gap']:.2%} of J*)",
        f"lr          {out['lr']:.4g} = {ratio:.3g} × lr_max (edge of stability "
        f"{out['lr_max']:.4g})",
    ]
    return "\n".join(rows)
