"""The end-of-run summary and the tidy trials table (:mod:`study.sweep.summary`)."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from stores import sweep

from study.core.data import load_problem
from study.sweep import summary
from study.sweep.summary import trials_frame


def test_trials_frame_is_tidy(make_cfg):
    cfg = make_cfg(n_trials=5, objectives=[{"metric": "dist_to_ols"},
                                           {"metric": "epochs_to_param_tol", "tol": 0.01}],
                   sampler="nsga2")
    sweep(cfg)
    frame = trials_frame(cfg)
    assert list(frame.columns) == [
        "trial", "lr", "epochs", "init_m", "init_b", "status", "final_m", "final_b",
        "final_cost", "initial_cost", "dist_to_ols", "cost_gap", "rel_cost_gap", "grad_norm",
        "epochs_run", "diverged_at", "epochs_to_param_tol_0.1", "epochs_to_param_tol_0.01",
        "epochs_to_param_tol_0.001", "epochs_to_cost_tol_0.01", "epochs_to_cost_tol_0.001",
        "epochs_to_cost_tol_0.0001", "seed", "mlflow_run_id", "objective_dist_to_ols",
        "objective_epochs_to_param_tol_0.01"]
    assert len(frame) == 5 and (frame["epochs"] == 300).all()
    assert str(frame["epochs_to_param_tol_0.01"].dtype) == "Int64"
    reached = frame["epochs_to_param_tol_0.01"].notna()
    assert (frame.loc[~reached, "objective_epochs_to_param_tol_0.01"]
            > frame.loc[~reached, "epochs"]).all()
    assert (frame.loc[reached, "objective_epochs_to_param_tol_0.01"]
            == frame.loc[reached, "epochs_to_param_tol_0.01"].astype(float)).all()


def frozen(lr: float, status: str, **params) -> optuna.trial.FrozenTrial:
    distributions = {"lr": FloatDistribution(1e-6, 10.0)}
    distributions.update({k: CategoricalDistribution(["mse", "sse"]) for k in params})
    return optuna.trial.create_trial(params={"lr": lr, **params}, distributions=distributions,
                                     value=1.0, user_attrs={"status": status})


def test_brackets_give_the_largest_converged_and_smallest_diverged_lr_per_setting(make_cfg):
    cfg = make_cfg()
    problem, base = load_problem(cfg.data.path), cfg.settings()
    trials = [frozen(0.1, "converged", cost="mse"), frozen(0.3, "converged", cost="mse"),
              frozen(0.5, "diverged", cost="mse"), frozen(0.9, "diverged", cost="mse"),
              frozen(0.01, "max_epochs", cost="sse"), frozen(0.02, "diverged", cost="sse")]
    got = {b["settings"]["cost"]: b for b in summary.brackets(trials, problem, base)}
    assert (got["mse"]["lr_converged"], got["mse"]["lr_diverged"]) == (0.3, 0.5)
    assert (got["sse"]["lr_converged"], got["sse"]["lr_diverged"]) == (None, 0.02)
    # theory's edge: 2 / λ_max of the cost's Hessian, sse's N times mse's
    data = np.loadtxt(cfg.data.path, delimiter=",", skiprows=1)
    design = np.column_stack([data[:, 0], np.ones(len(data))])
    lam_max = np.linalg.eigvalsh(2.0 / len(data) * design.T @ design).max()
    assert got["mse"]["lr_max"] == pytest.approx(2.0 / lam_max, rel=1e-9)
    assert got["sse"]["lr_max"] == pytest.approx(2.0 / lam_max / len(data), rel=1e-9)


def test_the_summary_text_names_counts_best_brackets_and_stores():
    s = summary.SweepSummary(
        study="line", n_trials=10, n_complete=10, n_new=4, seconds=2.0,
        counts={"converged": 7, "max_epochs": 2, "diverged": 1},
        best=[{"number": 3, "values": [0.0125], "params": {"lr": 0.25, "epochs": 300},
               "status": "converged"}],
        brackets=[{"settings": {}, "lr_converged": 0.3, "lr_diverged": 0.5, "lr_max": 0.42}],
        storage="optuna.journal", mlflow_uri="http://host:5000", experiment_id="1",
        parent_run_id="abc", ui_command=[], notes=["a note"], workers=2,
        failed_workers=["worker 2 (pid 9) exited with code 1"])
    lines = summary.format_summary(s).splitlines()
    assert lines[0] == "study 'line': 10 of 10 trials complete (4 new by 2 workers in 2.0 s, " \
                       "2.0 trials/s)"
    assert lines[1] == "  converged 7 · max_epochs 2 · diverged 1"
    assert "  note: a note" in lines and "  failed: worker 2 (pid 9) exited with code 1" in lines
    assert "  best trial #3 (converged; objective 0.0125): lr=0.25 epochs=300" in lines
    assert ("  lr bracket: largest converged 0.3 · smallest diverged 0.5 · theory lr_max 0.42"
            in lines)
    assert lines[-2] == "  open the UI: http://host:5000 (served by the tracking server)"
    # MLflow 3.17 opens an experiment on its GenAI view unless the link picks Model training
    assert lines[-1] == "  its runs: http://host:5000/#/experiments/1?workflowType=machine_learning"
    s.brackets = [{"settings": {"optimizer": "line_search"}, "lr_converged": None,
                   "lr_diverged": None, "lr_max": float("inf")}]
    assert ("  lr bracket [optimizer=line_search]: largest converged none · smallest diverged "
            "none · no edge in theory (line search picks its own step)"
            in summary.format_summary(s).splitlines())
    s.best, s.interrupted = [], True
    text = summary.format_summary(s)
    assert "— interrupted" in text and "best: none (every complete trial diverged)" in text


def test_status_counts_list_every_status():
    trials = [frozen(0.1, "converged"), frozen(0.2, "converged"), frozen(0.9, "diverged")]
    assert summary.status_counts(trials) == {"converged": 2, "max_epochs": 0, "diverged": 1}
    assert summary.counts_text({"diverged": 1}) == "converged=0 max_epochs=0 diverged=1"
