"""Objective values told to Optuna (:mod:`study.sweep.objectives`): finite, capped for diverged
and unreached, and best trials that never diverged."""

from __future__ import annotations

import math

import optuna
import pytest
from stores import (
    client_runs,
    sweep,
)

from study.core import theory
from study.core.data import load_problem
from study.sweep import objectives, storage
from study.sweep.summary import trials_frame


def test_diverging_lr_is_a_result_with_finite_values_and_never_best(make_cfg):
    cfg = make_cfg(n_trials=4, batch_size=4, sampler="grid",
                   space={"lr": {"values": [0.1, 4.2]}, "epochs": 300,
                          "init_m": {"values": [0.0, 1.0]}})
    lr_max = theory.lr_max(load_problem(cfg.data.path), cfg.settings())
    assert 4.2 == pytest.approx(10 * lr_max, rel=0.01)
    summary = sweep(cfg)
    frame = trials_frame(cfg)
    diverged = frame[frame["status"] == "diverged"]
    assert len(diverged) == 2 and set(diverged["lr"]) == {4.2}
    assert (diverged["objective_dist_to_ols"] == objectives.DIVERGED_VALUE).all()
    assert diverged["diverged_at"].notna().all()
    assert all(b["status"] != "diverged" for b in summary.best)
    assert all(t.user_attrs["status"] != "diverged" for t in objectives.best_trials(
        storage.load_study(cfg)))

    client, _, children = client_runs(cfg)
    for child in children:
        assert all(math.isfinite(v) for v in child.data.metrics.values())
        for point in client.get_metric_history(child.info.run_id, "cost"):
            assert math.isfinite(point.value)
        if child.data.tags["status"] == "diverged":
            assert child.info.status == "FAILED"
    assert summary.brackets[0]["lr_diverged"] == 4.2
    assert summary.brackets[0]["lr_converged"] == 0.1


def test_objective_values_are_finite_and_capped():
    class Obj:
        def __init__(self, metric, direction="minimize", tol=None):
            self.metric, self.direction, self.tol = metric, direction, tol

    objs = [Obj("final_cost"), Obj("epochs_to_cost_tol", tol=0.001), Obj("dist_to_ols",
                                                                        "maximize")]
    values = {"final_cost": 2.0, "epochs_to_cost_tol_0.001": None, "dist_to_ols": 1.0}
    assert objectives.objective_values(values, "max_epochs", objs) == [
        2.0, objectives.UNREACHED_VALUE, 1.0]
    assert objectives.objective_values(values, "diverged", objs) == [
        objectives.DIVERGED_VALUE, objectives.DIVERGED_VALUE, -objectives.DIVERGED_VALUE]
    values["final_cost"] = float("inf")
    assert objectives.objective_values(values, "max_epochs", objs)[0] == objectives.DIVERGED_VALUE


def test_best_trials_are_the_pareto_front_of_the_trials_that_did_not_diverge(tmp_path):
    study = optuna.create_study(directions=["minimize", "maximize"],
                                storage=storage.open_storage(str(tmp_path / "o.journal")))
    points = {(1.0, 1.0): "converged", (2.0, 3.0): "max_epochs", (3.0, 2.0): "converged",
              (0.5, 0.5): "converged", (0.1, 9.0): "diverged", (2.0, 3.0 - 1e-9): "converged"}
    for values, status in points.items():
        study.add_trial(optuna.trial.create_trial(values=list(values),
                                                  user_attrs={"status": status}))
    best = {tuple(t.values) for t in objectives.best_trials(study)}
    # by hand: minimise the first, maximise the second; (0.1, 9) diverged and never counts
    kept = [v for v, s in points.items() if s != "diverged"]
    front = {v for v in kept
             if not any(w[0] <= v[0] and w[1] >= v[1] and w != v for w in kept)}
    assert best == front == {(1.0, 1.0), (2.0, 3.0), (0.5, 0.5)}


def test_a_single_objective_gives_its_one_best_and_none_when_all_diverged(tmp_path):
    study = optuna.create_study(storage=storage.open_storage(str(tmp_path / "o.journal")))
    assert objectives.best_trials(study) == []
    study.add_trial(optuna.trial.create_trial(value=objectives.DIVERGED_VALUE,
                                              user_attrs={"status": "diverged"}))
    assert objectives.best_trials(study) == []
    for value in (3.0, 1.5, 2.0):
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs={"status": "converged"}))
    assert [t.value for t in objectives.best_trials(study)] == [1.5]
