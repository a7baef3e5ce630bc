"""Objective values told to Optuna (:mod:`study.sweep.objectives`): finite and on the scale of
the others (no sentinel), diverged trials infeasible through Optuna's constraints, unreached
tolerances as the budget plus one budget per decade to go, and best trials that never diverged."""

from __future__ import annotations

import math

import optuna
import pytest
from stores import (
    client_runs,
    complete_of,
    sweep,
)

from study.core import theory
from study.core.data import load_problem
from study.sweep import objectives, storage
from study.sweep.sampling import Space
from study.sweep.summary import trials_frame


def plain_best(trials):
    """What optuna-dashboard shows as best (the storage's ``get_best_trial``): the smallest
    value, constraints ignored."""
    return min(trials, key=lambda t: t.value)


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
    # the distance at the last finite epoch (or just beyond the worst feasible one): finite,
    # on the scale of the others, and worse than every trial that did not diverge
    kept = frame[frame["status"] != "diverged"]
    assert (diverged["objective_dist_to_ols"] >= diverged["dist_to_ols"]).all()
    assert (diverged["objective_dist_to_ols"] < 1e3).all()
    assert diverged["objective_dist_to_ols"].min() > kept["objective_dist_to_ols"].max()
    assert (kept["objective_dist_to_ols"] == kept["dist_to_ols"]).all()
    assert diverged["diverged_at"].notna().all()
    assert all(b["status"] != "diverged" for b in summary.best)
    study = storage.load_study(cfg)
    assert all(t.user_attrs["status"] != "diverged" for t in objectives.best_trials(study))
    for trial in complete_of(cfg):
        infeasible = 1.0 if trial.user_attrs["status"] == "diverged" else 0.0
        # Optuna's named constraint, and the list optuna-dashboard reads
        assert trial.constraints == {"diverged": infeasible, "0": infeasible}
        assert trial.system_attrs["constraints"] == [infeasible]
    assert study.best_trial.user_attrs["status"] != "diverged"
    assert plain_best(complete_of(cfg)).user_attrs["status"] != "diverged"

    client, _, children = client_runs(cfg)
    for child in children:
        assert all(math.isfinite(v) for v in child.data.metrics.values())
        for point in client.get_metric_history(child.info.run_id, "cost"):
            assert math.isfinite(point.value)
        if child.data.tags["status"] == "diverged":
            assert child.info.status == "FAILED"
    assert summary.brackets[0]["lr_diverged"] == 4.2
    assert summary.brackets[0]["lr_converged"] == 0.1


class Obj:
    def __init__(self, metric, direction="minimize", tol=None):
        self.metric, self.direction, self.tol = metric, direction, tol


def test_objective_values_by_hand():
    objs = [Obj("final_cost"), Obj("epochs_to_param_tol", tol=0.01), Obj("dist_to_ols",
                                                                        "maximize")]
    values = {"final_cost": 2.0, "epochs_to_param_tol_0.01": 40, "dist_to_ols": 1.0,
              "cost_gap": 0.5}
    assert objectives.objective_values(values, "converged", objs, 1000) == [2.0, 40.0, 1.0]
    # unreached, ending 1.0 from θ*: two decades above 0.01 → the space's largest budget × 3,
    # whatever its own budget
    values["epochs_to_param_tol_0.01"] = None
    assert objectives.objective_values(values, "max_epochs", objs, 1000) == [
        2.0, pytest.approx(3000.0), 1.0]
    # diverged: its own last finite values
    values["epochs_to_param_tol_0.01"] = 40
    assert objectives.objective_values(values, "diverged", objs, 1000) == [
        2.0, pytest.approx(3000.0), 1.0]
    # ... and never better than the worst feasible value told before it
    got = objectives.objective_values(values, "diverged", objs, 1000, [5.0, None, 0.5])
    assert got == [pytest.approx(5.5), pytest.approx(3000.0), pytest.approx(0.45)]
    got = objectives.objective_values(values, "diverged", objs, 1000, [5.0, 4000.0, 0.5])
    assert got[1] == pytest.approx(4400.0)
    # a feasible trial is not moved by the worst values
    assert objectives.objective_values(values, "max_epochs", objs, 1000,
                                       [5.0, 10.0, 0.5])[:2] == [2.0, 40.0]
    # epochs to a cost tolerance read the cost gap: 0.5 is 2.7 decades above 1e-3
    cost = [Obj("epochs_to_cost_tol", tol=0.001)]
    assert objectives.objective_values({"cost_gap": 0.5}, "max_epochs", cost, 100) == [
        pytest.approx(100 * (1 + math.log10(500)))]
    values["final_cost"] = float("nan")
    with pytest.raises(ValueError, match="final_cost"):
        objectives.objective_values(values, "max_epochs", objs, 1000)


def test_the_scorer_keeps_the_worst_feasible_value_of_the_batch():
    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(value=3.0, user_attrs={"status": "converged"}))
    space = Space({"epochs": optuna.distributions.CategoricalDistribution([10, 100])}, {}, None)
    scorer = objectives.Scorer(study, [Obj("dist_to_ols")], space)
    assert scorer.max_budget == 100 and scorer.worst == [3.0]
    assert scorer.score({"dist_to_ols": 7.0}, "max_epochs") == [7.0]
    assert scorer.score({"dist_to_ols": 1.0}, "diverged") == [pytest.approx(7.7)]
    assert scorer.worst == [7.0]  # a diverged trial never moves it


def test_epochs_to_tolerance_ranks_by_speed_and_no_value_is_a_sentinel(make_cfg):
    space = {"lr": {"low": 0.01, "high": 2.0, "log": True},
             "epochs": {"values": [20, 300]}, "init_m": {"low": -1.0, "high": 1.0},
             "init_b": 0.0}
    cfg = make_cfg(n_trials=16, batch_size=4, sampler="tpe", space=space,
                   objectives=[{"metric": "epochs_to_param_tol", "tol": 0.01}])
    summary = sweep(cfg)
    trials = complete_of(cfg)
    assert len(trials) == 16 and all(math.isfinite(t.value) and abs(t.value) < 1e100
                                     for t in trials)
    statuses = {t.user_attrs["status"] for t in trials}
    assert {"diverged", "converged"} <= statuses
    reached = []
    for t in trials:
        res, status = t.user_attrs["result"], t.user_attrs["status"]
        if res["epochs_to_param_tol_0.01"] is not None and status != "diverged":
            assert t.value == res["epochs_to_param_tol_0.01"] <= t.params["epochs"]
            reached.append(t)
        else:  # beyond the largest budget (300), one more per decade still to go
            assert t.value >= 300 * (1 + math.log10(res["dist_to_ols"] / 0.01)) - 1e-9
            assert t.value > 300
            if status != "diverged":
                assert t.value == pytest.approx(300 * (1 + math.log10(res["dist_to_ols"] / 0.01)))
        assert t.constraints["diverged"] == float(status == "diverged")
    fastest = min(reached, key=lambda t: t.value)
    assert plain_best(trials).number == fastest.number
    assert storage.load_study(cfg).best_trial.number == fastest.number
    assert summary.best[0]["number"] == fastest.number


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
    study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={"status": "diverged"}))
    assert objectives.best_trials(study) == []
    for value in (3.0, 1.5, 2.0):
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs={"status": "converged"}))
    assert [t.value for t in objectives.best_trials(study)] == [1.5]


def test_a_resumed_study_has_one_parent_real_durations_and_no_sentinel(make_cfg):
    space = {"lr": {"low": 0.01, "high": 4.0, "log": True}, "epochs": 300,
             "init_m": {"low": -1.0, "high": 1.0}}
    cfg = make_cfg(n_trials=6, space=space)
    sweep(make_cfg(n_trials=6, space=space, overrides=["search.n_trials=3"]))
    sweep(cfg)
    client, parents, children = client_runs(cfg)
    assert len(parents) == 1 and len(children) == 6
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    assert parents[0].data.tags["study.invocations"] == "2"
    assert all(c.info.end_time > c.info.start_time for c in children)
    exp = client.get_experiment_by_name(cfg.name)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    trials = complete_of(cfg)
    assert "diverged" in {t.user_attrs["status"] for t in trials}
    assert all(abs(v) < 1e100 for t in trials for v in t.values)
    assert all(all(abs(c) < 1e100 for c in t.constraints.values()) for t in trials)


def test_sentinels_of_an_older_study_are_counted_and_never_a_scale():
    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(value=1e299, user_attrs={"status": "max_epochs"}))
    study.add_trial(optuna.trial.create_trial(value=2.0, user_attrs={"status": "converged"}))
    assert objectives.legacy_trials(objectives.complete_trials(study)) == 1
    assert objectives.worst_feasible(study) == [2.0]
