"""What a trial tells Optuna: finite objective values on the scale of the others, a constraint
that marks diverged trials infeasible, its user attributes, and which complete trials are best.

Objective values (never NaN, ±inf or a sentinel: Optuna turns NaN into FAIL, TPE learns nothing
from failed trials, and one value of 1e300 flattens every optuna-dashboard plot):

- **value metrics** (``final_cost``, ``dist_to_ols``, ``cost_gap``, ``rel_cost_gap``): the
  value at the end of the run. A diverged trial stops at the first epoch whose cost exceeds
  ``divergence_factor`` × its initial cost and reports the last finite epoch, so its value is the
  distance (cost, gap) it had reached before blowing up: finite, and on the scale of the others.
- **epochs to a tolerance** (``epochs_to_param_tol`` / ``epochs_to_cost_tol`` at ``tol``): the
  first epoch at which ‖θ − θ*‖ ≤ tol (J − J* ≤ tol). A run that ends without reaching it (on
  budget, stopped by another rule, or diverged) is *censored*: all it tells is that it needs
  more epochs than it ran. It reports

      E_max · (1 + log10(r / tol))        r: its final distance (cost gap), r > tol

  with E_max the largest epoch budget of the space: beyond every epoch count a trial of this
  space can reach the tolerance in, plus one such budget per decade still to go (GD on a
  quadratic converges linearly, so late in a run every decade costs about the same number of
  epochs). So every trial that reached the tolerance ranks before every trial that did not,
  whatever their budgets (a 100-epoch run that fell short says nothing about speed), and among
  those that did not, the closer one ranks first; a diverged trial uses its last finite
  distance, which is at least about where it started.
- a diverged trial is never better than a feasible trial told before it: its value is at least
  just above (by 10 %) the worst feasible value of the study when it is told (the
  ``worst`` argument). optuna-dashboard's "best trial" is the storage's plain minimum
  (``get_best_trial`` ignores constraints), so this keeps the diverged ones off it.

Constraints: every trial carries the constraint ``diverged`` (1.0 when diverged, else 0.0;
feasible ≤ 0) through Optuna's public ``Trial.set_constraint``, so ``study.best_trial``,
``study.best_trials`` and the samplers that read constraints (TPE, NSGA-II, GP) treat diverged
trials as infeasible; the loop also writes it in the list form optuna-dashboard reads, which
draws infeasible trials in grey. :func:`best_trials` also filters on the user attribute
``status``.

Studies made before this definition told diverged trials 1e300 and unreached tolerances 1e299:
their values are not comparable with these. The quickstart's and nedrich's objective changed
with it (``dist_to_ols`` → ``epochs_to_param_tol`` at 0.01), so their config hash refuses an old
study (run with ``--fresh``); a study of any other config resumes, the trials it told before keep
their old values (:func:`legacy_trials` counts them, the sweep's summary says so, and they are
no scale for the diverged trials told now), and ``--fresh`` starts it again under this
definition.
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
from study.tracking.keys import tol_key

CONSTRAINT = "diverged"  # the constraint's name: 1.0 for a diverged trial, 0.0 otherwise
WORSE_BY = 0.1  # a diverged trial's value is at least this fraction beyond the worst feasible one
LEGACY_FLOOR = 1e100  # values at or above this were the sentinels of the old definition
EPOCH_METRICS = ("epochs_to_param_tol", "epochs_to_cost_tol")
MAX_DECADES = 30.0  # bound of log10(r / tol) when r is not finite (the engine never gives that)


def objective_key(obj: Any) -> str:
    """The result value an objective reads: its metric, with the tolerance for epochs_to_*."""
    if obj.metric in EPOCH_METRICS:
        return tol_key(obj.metric, float(obj.tol))
    return obj.metric


def largest_budget(space: Any) -> int:
    """The largest ``epochs`` of a :class:`study.sweep.sampling.Space`."""
    dist = space.distributions.get("epochs")
    if dist is None:
        return int(space.constants["epochs"])
    if hasattr(dist, "choices"):
        return int(max(dist.choices))
    return int(dist.high)


def censored_epochs(budget: float, remaining: float | None, tol: float) -> float:
    """Value of a run that ended ``remaining`` from the tolerance's target (‖θ − θ*‖ or
    J − J*) without reaching ``tol``: E · (1 + log10(r / tol)), E = ``budget``."""
    if remaining is None or not math.isfinite(remaining):
        decades = MAX_DECADES
    else:
        decades = min(max(math.log10(remaining / tol), 0.0), MAX_DECADES) if remaining > 0 \
            else 0.0
    return float(budget) * (1.0 + decades)


def _remaining(values: Mapping[str, Any], metric: str) -> float | None:
    value = values.get("dist_to_ols" if metric == "epochs_to_param_tol" else "cost_gap")
    return float(value) if value is not None and math.isfinite(value) else None


def worse_than(value: float, direction: str) -> float:
    """Just beyond ``value`` on the bad side (by ``WORSE_BY`` of its size, at least 1e-12)."""
    step = max(abs(value) * WORSE_BY, 1e-12)
    return value + step if direction == "minimize" else value - step


def objective_values(values: Mapping[str, Any], status: str, objectives: Sequence[Any],
                     max_budget: int, worst: Sequence[float | None] | None = None
                     ) -> list[float]:
    """Finite objective values of one trial (see the module docstring).

    ``values``: the trial's named results; ``max_budget``: the space's largest epochs;
    ``worst``: per objective, the worst feasible value told so far (None: none yet)."""
    diverged = status == "diverged"
    out = []
    for i, obj in enumerate(objectives):
        key = objective_key(obj)
        value = values.get(key)
        if obj.metric in EPOCH_METRICS:
            if value is None or diverged:
                value = censored_epochs(max_budget, _remaining(values, obj.metric),
                                        float(obj.tol))
        elif value is None or not math.isfinite(value):
            raise ValueError(f"objective {key} of a {status} trial is {value}: the engine "
                             f"reports the last finite epoch, so this is a bug")
        value = float(value)
        bound = None if worst is None else worst[i]
        if diverged and bound is not None:
            limit = worse_than(bound, obj.direction)
            value = max(value, limit) if obj.direction == "minimize" else min(value, limit)
        out.append(value)
    return out


def constraint_value(status: str) -> float:
    """The trial's ``diverged`` constraint: 1.0 (infeasible) when diverged, else 0.0."""
    return 1.0 if status == "diverged" else 0.0


def feasible(trial: FrozenTrial) -> bool:
    """A complete trial that did not diverge (by its status, and by its constraints)."""
    return trial.user_attrs.get("status") not in (None, "diverged") \
        and all(c <= 0.0 for c in trial.constraints.values())


def worst_feasible(study: optuna.Study) -> list[float | None]:
    """Per objective, the worst value of the study's feasible complete trials (None: none)."""
    trials = [t for t in complete_trials(study) if feasible(t)]
    out: list[float | None] = []
    for i, direction in enumerate(study.directions):
        vals = [t.values[i] for t in trials if math.isfinite(t.values[i])
                and abs(t.values[i]) < LEGACY_FLOOR]  # an old sentinel is no scale
        if not vals:
            out.append(None)
        else:
            out.append(max(vals) if direction == optuna.study.StudyDirection.MINIMIZE
                       else min(vals))
    return out


class Scorer:
    """Objective values of a batch's trials: the study's worst feasible values read once, then
    kept up to date as trials are scored (so a diverged trial is never better than a feasible
    one told before it, whichever batch told it)."""

    def __init__(self, study: optuna.Study, objectives: Sequence[Any], space: Any) -> None:
        self.objectives = list(objectives)
        self.max_budget = largest_budget(space)
        self.worst = worst_feasible(study)

    def score(self, values: Mapping[str, Any], status: str) -> list[float]:
        scores = objective_values(values, status, self.objectives, self.max_budget, self.worst)
        if status != "diverged":
            for i, (obj, v) in enumerate(zip(self.objectives, scores, strict=True)):
                w = self.worst[i]
                if w is None or (v > w if obj.direction == "minimize" else v < w):
                    self.worst[i] = v
        return scores


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


def legacy_trials(trials: Sequence[FrozenTrial]) -> int:
    """How many of ``trials`` were told a sentinel (1e300, 1e299) by the old definition."""
    return sum(1 for t in trials if t.values and any(abs(v) >= LEGACY_FLOOR for v in t.values))


def complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's COMPLETE trials (not copied)."""
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Best feasible COMPLETE trials (see :func:`feasible`): the best one for a single
    objective, the Pareto front for several. Empty when every trial diverged."""
    trials = [t for t in complete_trials(study)
              if feasible(t) and all(math.isfinite(v) for v in t.values)]
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
