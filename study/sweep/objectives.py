"""What a trial tells Optuna: finite objective values, its user attributes, and which complete
trials are best.

Objective values. A converged or max_epochs trial reports its metric (final_cost, dist_to_ols,
cost_gap, rel_cost_gap, epochs_to_param_tol / epochs_to_cost_tol at the objective's ``tol``).
Never NaN or ±inf, because Optuna turns NaN into FAIL and TPE learns nothing from failed trials:

- a **diverged** trial reports ``DIVERGED_VALUE = 1e300`` (−1e300 for a maximised objective):
  finite, worse than any real value, and flagged by the user attribute ``status='diverged'``;
- an epochs-to-tolerance objective whose tolerance was not reached reports
  ``UNREACHED_VALUE = 1e299`` (worse than any reached one, better than diverging).

:func:`best_trials` filters on ``status`` so a diverged trial is never "best".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from study.core import engine
from study.errors import ConfigError
from study.tracking.runlog import tol_key

DIVERGED_VALUE = 1e300
UNREACHED_VALUE = 1e299


def objective_key(obj: Any) -> str:
    """The result value an objective reads: its metric, with the tolerance for epochs_to_*."""
    if obj.metric in ("epochs_to_param_tol", "epochs_to_cost_tol"):
        return tol_key(obj.metric, float(obj.tol))
    return obj.metric


def objective_values(values: Mapping[str, Any], status: str, objectives: Sequence[Any]
                     ) -> list[float]:
    """Finite objective values of one trial (see the module docstring for the caps)."""
    out = []
    for obj in objectives:
        sign = 1.0 if obj.direction == "minimize" else -1.0
        value = values.get(objective_key(obj))
        if status == "diverged" or (value is not None and not math.isfinite(value)):
            out.append(sign * DIVERGED_VALUE)
        elif value is None:
            out.append(sign * UNREACHED_VALUE)
        else:
            out.append(float(value))
    return out


def check_objectives(cfg: Any, base: engine.Settings) -> None:
    """An epochs-to-tolerance objective must use a tolerance the engine records."""
    for i, obj in enumerate(cfg.search.objectives):
        tols = {"epochs_to_param_tol": base.param_tols,
                "epochs_to_cost_tol": base.cost_tols}.get(obj.metric)
        if tols is not None and float(obj.tol) not in {float(t) for t in tols}:
            kind = "param_tols" if obj.metric == "epochs_to_param_tol" else "cost_tols"
            raise ConfigError(f"search.objectives[{i}].tol must be one of algorithm.{kind} "
                              f"{list(tols)}; got {obj.tol}")


def user_attrs(values: Mapping[str, Any], run_id: str, seed: int) -> dict[str, Any]:
    """The trial's user attributes: ``status``, ``mlflow_run_id`` and ``result`` (every
    named value, None where not finite or not reached, and the minibatch ``seed``). One
    attribute is one storage write (an fsync'd journal line, an RDB transaction): three
    instead of twenty keep Optuna's share of a trial small (see benchmarks/RESULTS.md)."""
    result = {k: (v if not isinstance(v, float) or math.isfinite(v) else None)
              for k, v in values.items() if k != "status"}
    result["seed"] = seed
    return {"status": values["status"], "result": result, "mlflow_run_id": run_id}


def complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's COMPLETE trials (not copied)."""
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Best COMPLETE trials that did not diverge: the best one for a single objective, the
    Pareto front for several. Empty when every trial diverged."""
    trials = [t for t in complete_trials(study)
              if t.user_attrs.get("status") not in (None, "diverged")
              and all(math.isfinite(v) for v in t.values)]
    if not trials:
        return []
    signs = np.array([1.0 if d == optuna.study.StudyDirection.MINIMIZE else -1.0
                      for d in study.directions])
    values = np.array([t.values for t in trials]) * signs
    if values.shape[1] == 1:
        return [trials[int(np.argmin(values[:, 0]))]]
    front = []
    for i, v in enumerate(values):
        dominated = np.any(np.all(values <= v, axis=1) & np.any(values < v, axis=1))
        if not dominated:
            front.append(trials[i])
    return front
