"""The sweep's allowed values and defaults, declared once: the config model, the command line
and the sweep read them from here (the engine's own are in :mod:`study.core.constraints`).

Names are the config's dotted keys (``search.sampler``) or, for options of ``study run`` only,
the option's name (``workers``). :func:`declared` finds a name here or among the engine's.
"""

from __future__ import annotations

from typing import Any

from study.core.constraints import POSITIVE, Constraint, Interval, Options, constraint, show

HEARTBEAT_SECONDS = 10  # interval of running trials' heartbeats on RDB storages
GRACE_FACTOR = 4  # a trial silent for this many heartbeat intervals belongs to a dead worker
MAX_TEXT = 6000  # longest MLflow param value
MAX_NAME = 250  # longest MLflow param / metric key

SWEEP_CONSTRAINTS: dict[str, Constraint] = {
    "search.sampler": Options({
        "grid": "every point of the values lists and stepped ranges",
        "random": "independent uniform draws",
        "qmc": "scrambled quasi-random (Sobol) points, evenly spread",
        "tpe": "tree-structured Parzen estimator: samples near the best trials so far",
        "nsga2": "NSGA-II genetic algorithm, for several objectives"}),
    "search.seed": Interval(int, 0, None),
    "search.n_trials": Interval(int, 1, None),
    "search.batch_size": Interval(int, 1, None),
    "report.dist_tol": POSITIVE,
    "workers": Interval(int, 1, None),
    "heartbeat": Interval(int, 1, None),
    "heartbeat_grace": Interval(int, 2, None),  # one interval late is not yet dead
}

SWEEP_DEFAULTS: dict[str, Any] = {
    "search.sampler": "tpe",
    "search.seed": 0,
    "search.n_trials": 100,
    "search.batch_size": 32,  # trials asked at once: one compiled engine batch
    "report.dist_tol": 0.01,
    "workers": 1,
    "heartbeat": HEARTBEAT_SECONDS,
    "heartbeat_grace": GRACE_FACTOR,
}

GRID_RULE = "the grid sampler needs {values: [...]}, a constant or a range with step"


def grid_problem(spec: Any) -> str | None:
    """What the grid sampler cannot enumerate about a space entry (a continuous range), or
    None: the one statement of the rule, read by the config and by the sampler."""
    if spec.kind == "range" and spec.step is None:
        return f"{GRID_RULE}; got a continuous range {show(spec.to_raw())}"
    return None


def declared(name: str) -> Constraint:
    """The constraint of a sweep key or of an engine setting or trial input."""
    return SWEEP_CONSTRAINTS[name] if name in SWEEP_CONSTRAINTS else constraint(name)
