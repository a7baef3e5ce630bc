"""What a sweep needs before its first batch, made once: the data, the space, the stored study,
the MLflow experiment and the parent run.

``study run --workers N`` makes all of it in the parent process before any worker starts (eight
processes opening a brand-new sqlite MLflow store at once leave it half-migrated; a worker that
loses ``set_experiment``'s race logs into experiment 0), then hands the workers the experiment id
and the parent run id (:func:`attach`), so they only read what exists.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import optuna

from study.core import engine, theory
from study.core.data import file_digest, load_problem
from study.errors import StorageError
from study.sweep.objectives import check_objectives, complete_trials, objective_key
from study.sweep.reaper import reap_stale
from study.sweep.sampling import Space, build_space, grid_points, make_sampler
from study.sweep.storage import load_study, open_study, probe_stores
from study.tracking.tracker import Tracker, dataset_input, package_versions
from study.tracking.uri import sqlite_store_missing


@dataclass
class Setup:
    """Everything the ask/run/tell loop reads."""

    problem: Any
    base: engine.Settings
    space: Space
    study: optuna.Study
    tracker: Tracker
    target: int
    notes: list[str]


def _prepare(cfg: Any) -> tuple[Any, engine.Settings, Space]:
    if optuna.logging.get_verbosity() < optuna.logging.WARNING:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    problem = load_problem(cfg.data.path, cfg.data.x, cfg.data.y)
    base = cfg.settings()
    check_objectives(cfg, base)
    return problem, base, build_space(cfg, problem.d)


def _target(cfg: Any, space: Space, notes: list[str]) -> int:
    """``search.n_trials``, capped to the number of grid points."""
    target = int(cfg.search.n_trials)
    if space.grid is not None and len(grid_points(space)) < target:
        target = len(grid_points(space))
        notes.append(f"the grid has only {target} points: search.n_trials "
                     f"{cfg.search.n_trials} capped to {target}")
    return target


def setup(cfg: Any, fresh: bool, heartbeat: int | None = None) -> Setup:
    """Load and check the data, the space and the stored study (writing nothing until they
    fit), then open the MLflow experiment and reap what dead workers left RUNNING."""
    problem, base, space = _prepare(cfg)
    probe_stores(cfg)
    study, replaced = open_study(cfg, make_sampler(cfg, space), fresh=fresh,
                                 heartbeat=heartbeat)
    logged = logged_run_ids(study)
    refuse_missing_store(cfg, study, logged, sqlite_store_missing(cfg.tracking.mlflow_uri))
    tracker = Tracker(cfg.tracking.mlflow_uri, cfg.name)
    if logged and not tracker.runs_exist([logged[0], logged[-1]]):
        refuse_missing_store(cfg, study, logged, True)
    notes = [n for n in (replaced, tracker.store_note) if n]
    reaped = reap_stale(study)
    killed = tracker.kill_trial_runs(study.user_attrs.get("study_uid", ""),
                                     [t.number for t in reaped])
    killed += tracker.reap_dead_workers()
    if reaped:
        notes.append(f"{len(reaped)} trial(s) left running by a dead worker were failed and "
                     f"queued again ({killed} MLflow run(s) marked KILLED)")
    return Setup(problem, base, space, study, tracker, _target(cfg, space, notes), notes)


def logged_run_ids(study: optuna.Study) -> list[str]:
    """The MLflow run ids of the study's complete trials, in trial order."""
    return [t.user_attrs["mlflow_run_id"] for t in complete_trials(study)
            if t.user_attrs.get("mlflow_run_id")]


def refuse_missing_store(cfg: Any, study: optuna.Study, logged: list[str], missing: bool
                         ) -> None:
    """A study whose trials were logged to an MLflow store that is gone (deleted, moved, or
    replaced by a new one) is refused: a new store would silently hold runs of the new trials
    only, while the stored ones point to runs that no longer exist."""
    if not logged or not missing:
        return
    raise StorageError(
        f"study {cfg.name!r} in {cfg.tracking.storage} has {len(logged)} complete trial(s) "
        f"logged in the MLflow store {cfg.tracking.mlflow_uri}, which no longer holds their "
        f"runs (deleted or moved?): restore the store, or rerun with --fresh to start the "
        f"study again (or give the study another name)")


def attach(cfg: Any, experiment_id: str, parent_run_id: str | None,
           heartbeat: int | None = None) -> Setup:
    """A worker's setup: the study and the experiment exist; only read them."""
    problem, base, space = _prepare(cfg)
    study = load_study(cfg, heartbeat, sampler=make_sampler(cfg, space))
    tracker = Tracker.attach(cfg.tracking.mlflow_uri, cfg.name, experiment_id,
                                      parent_run_id)
    return Setup(problem, base, space, study, tracker, _target(cfg, space, []), [])


def n_complete(study: optuna.Study) -> int:
    return len(complete_trials(study))


def parent_payload(cfg: Any, problem: Any, base: engine.Settings) -> dict[str, Any]:
    """What the parent run records about the whole sweep."""
    path = Path(cfg.data.path)
    spec = theory.spectrum(problem, base)
    metrics = {"n_rows": problem.n, "ols_cost": problem.ols_cost(base.cost),
               "lambda_min": spec.lam_min, "lambda_max": spec.lam_max,
               "condition_number": spec.condition_number, "lr_max": theory.lr_max(problem, base)}
    metrics.update({f"ols_{n}": float(v) for n, v in zip(problem.param_names, problem.ols_theta,
                                                          strict=True)})
    params = {"sampler": cfg.search.sampler, "seed": cfg.search.seed,
              "n_trials": cfg.search.n_trials, "batch_size": cfg.search.batch_size,
              "objectives": ",".join(f"{objective_key(o)}:{o.direction}"
                                     for o in cfg.search.objectives),
              "storage": cfg.tracking.storage, "data_path": str(path), "n_rows": problem.n,
              "x_columns": ",".join(problem.x_names), "y_column": problem.y_name,
              **{f"algorithm.{f.name}": getattr(base, f.name) for f in fields(engine.Settings)}}
    tags = {f"version.{k}": v for k, v in package_versions().items()}
    tags["optuna.study"] = cfg.name
    tags["config_hash"] = cfg.hash()
    dataset = dataset_input(path.stem, str(path), file_digest(path)[:32],
                                     [*problem.x_names, problem.y_name], problem.n,
                                     problem.y_name)
    return {"config_yaml": cfg.to_yaml(), "dataset": dataset, "params": params,
            "metrics": metrics, "tags": tags}


def start_parent(cfg: Any, st: Setup) -> str:
    """Open the study's parent run (made by its first invocation) and record this one on it."""
    payload = parent_payload(cfg, st.problem, st.base)
    payload["tags"]["optuna.study_uid"] = st.study.user_attrs.get("study_uid", "")
    return st.tracker.start_parent(f"{cfg.name}-sweep", **payload)
