"""The ask → run → log → tell loop (:mod:`study.sweep.loop`) against real stores: an Optuna journal
file and an MLflow sqlite store in tmp_path, read back through MlflowClient and Optuna. Whole
sweeps, resumed sweeps, and sweeps stopped by signals. Nothing is mocked."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
from optuna.trial import TrialState
from stores import (
    client_runs,
    complete_of,
    interrupt_on_batch,
    sweep,
)

from study import api
from study.config.model import StudyConfig
from study.core import engine, theory
from study.core.data import load_problem
from study.sweep import loop as runner
from study.sweep import storage
from study.sweep.summary import format_summary, trials_frame


def test_one_parent_and_one_child_per_trial_with_history_params_and_metrics(make_cfg):
    cfg = make_cfg()
    summary = sweep(cfg)
    assert summary.n_complete == 10 and summary.n_new == 10 and not summary.interrupted

    client, parents, children = client_runs(cfg)
    assert len(parents) == 1 and len(children) == 10
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert sorted(int(c.data.tags["optuna.trial_number"]) for c in children) == list(range(10))

    problem = load_problem(cfg.data.path)
    data = np.loadtxt(cfg.data.path, delimiter=",", skiprows=1)
    x, y = data[:, 0], data[:, 1]
    for child in children:
        tags, params, metrics = child.data.tags, child.data.params, child.data.metrics
        number = int(tags["optuna.trial_number"])
        assert child.info.run_name == f"line-{number}"
        assert tags["optuna.study"] == "line" and tags["status"] in engine.STATUSES
        for key in ("lr", "epochs", "init_m", "init_b", "cost", "update", "optimizer",
                    "standardize", "divergence_factor"):
            assert key in params, key
        for key in ("final_m", "final_b", "final_cost",
                    "dist_to_ols", "cost_gap", "rel_cost_gap", "epochs_run"):
            assert key in metrics, key
        m0, b0 = float(params["init_m"]), float(params["init_b"])
        history = client.get_metric_history(child.info.run_id, "cost")
        history.sort(key=lambda m: m.step)
        assert history[0].step == 0
        # the initial cost, computed here from the data alone: mean((y − m0·x − b0)²)
        assert history[0].value == pytest.approx(np.mean((y - m0 * x - b0) ** 2), rel=1e-12)
        assert history[-1].step == metrics["epochs_run"]
        assert history[-1].value == pytest.approx(metrics["final_cost"], rel=1e-9)
        assert len(history) <= cfg.algorithm.history_points
        expected = {"converged": "FINISHED", "max_epochs": "FINISHED", "diverged": "FAILED"}
        assert child.info.status == expected[tags["status"]]
        artifacts = [a.path for a in client.list_artifacts(child.info.run_id)]
        assert artifacts == ["history.csv"]

    pm = parent.data.metrics
    assert pm["lr_max"] == pytest.approx(theory.lr_max(problem, cfg.settings()))
    assert pm["ols_m"] == pytest.approx(problem.ols_theta[0])
    for key in ("lambda_min", "lambda_max", "condition_number", "ols_cost", "ols_b"):
        assert key in pm
    assert parent.data.params["sampler"] == "random" and parent.data.params["seed"] == "3"
    assert "version.optuna" in parent.data.tags and "version.mlflow" in parent.data.tags
    assert [a.path for a in client.list_artifacts(parent.info.run_id)] == ["config.yaml"]
    (ds,) = parent.inputs.dataset_inputs
    assert ds.dataset.name == "line" and str(cfg.data.path) in ds.dataset.source

    frame = trials_frame(cfg)
    assert list(frame["trial"]) == list(range(10))
    assert set(frame["mlflow_run_id"]) == {c.info.run_id for c in children}
    by_run = {c.info.run_id: c for c in children}
    for trial in complete_of(cfg):
        attrs = trial.user_attrs
        child = by_run[attrs["mlflow_run_id"]]
        assert attrs["status"] == child.data.tags["status"]
        assert int(child.data.tags["optuna.trial_number"]) == trial.number
        result = attrs["result"]
        for key in ("final_m", "final_b", "final_cost", "dist_to_ols", "cost_gap",
                    "rel_cost_gap", "epochs_run"):
            assert result[key] == child.data.metrics[key], key
        assert set(result) >= {"diverged_at", "epochs_to_param_tol_0.01",
                               "epochs_to_cost_tol_0.001", "seed"}


def test_rerun_resumes_and_a_larger_n_trials_adds_only_the_difference(make_cfg):
    cfg = make_cfg(n_trials=8)
    sweep(cfg)
    again = sweep(make_cfg(n_trials=8))
    assert again.n_new == 0 and again.n_complete == 8
    more = sweep(make_cfg(overrides=["search.n_trials=11"]))
    assert more.n_new == 3 and more.n_complete == 11
    numbers = [t.number for t in complete_of(cfg)]
    assert len(numbers) == 11 == len(set(numbers))
    _, parents, children = client_runs(cfg)
    assert len(parents) == 1 and parents[0].data.tags["study.invocations"] == "3"
    per_number = [c.data.tags["optuna.trial_number"] for c in children]
    assert len(per_number) == 11 == len(set(per_number))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_running_batch_and_a_rerun_completes(make_cfg, monkeypatch, sig):
    cfg = make_cfg(n_trials=12, batch_size=4)
    interrupt_on_batch(monkeypatch, 2, [sig])  # the signal comes before batch 2's kernel starts
    summary = sweep(cfg)
    assert summary.interrupted and summary.n_complete == summary.n_new == 4
    study = storage.load_study(cfg)
    halted = study.get_trials(states=(TrialState.FAIL,))
    assert len(halted) == 4
    _, parents, children = client_runs(cfg)
    assert parents[0].info.status == "KILLED" and len(children) == 4
    monkeypatch.undo()
    monkeypatch.chdir(Path(cfg.data.path).parent)
    assert sweep(cfg).n_complete == 12
    assert len(client_runs(cfg)[2]) == 12
    retried = {t.user_attrs["retry_of"]: t.params for t in complete_of(cfg)
               if "retry_of" in t.user_attrs}
    assert {h.number: h.params for h in halted} == retried


def test_a_signal_during_the_clean_up_after_a_stop_does_not_cut_it_short(make_cfg, monkeypatch):
    cfg = make_cfg(n_trials=12, batch_size=4)
    interrupt_on_batch(monkeypatch, 2, [signal.SIGINT])  # halts the second batch's trials
    real = runner.Batch.abandon

    def signalled_abandon(self):  # the user presses Ctrl-C again while they are failed
        os.kill(os.getpid(), signal.SIGINT)
        return real(self)

    monkeypatch.setattr(runner.Batch, "abandon", signalled_abandon)
    summary = sweep(cfg)
    assert summary.interrupted and summary.n_complete == 4
    study = storage.load_study(cfg)
    assert not study.get_trials(states=(TrialState.RUNNING,))
    assert len(study.get_trials(states=(TrialState.FAIL,))) == 4
    _, parents, children = client_runs(cfg)
    assert not [r for r in parents + children if r.info.status == "RUNNING"]


def test_a_second_signal_stops_at_once_and_the_lost_trials_run_again(make_cfg, monkeypatch):
    cfg = make_cfg(n_trials=8, batch_size=4)
    interrupt_on_batch(monkeypatch, 2, [signal.SIGINT, signal.SIGINT])
    summary = sweep(cfg)
    assert summary.interrupted and summary.n_complete == 4
    assert summary.n_new == 4  # what this process completed, though the loop was cut short
    assert "(4 new in" in format_summary(summary)
    study = storage.load_study(cfg)
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(failed) == 4
    _, parents, children = client_runs(cfg)
    assert parents[0].info.status == "KILLED" and len(children) == 4
    assert not [r for r in client_runs(cfg)[1] + children if r.info.status == "RUNNING"]
    monkeypatch.undo()
    monkeypatch.chdir(Path(cfg.data.path).parent)
    sweep(cfg)
    done = complete_of(cfg)
    assert len(done) == 8
    retried = {t.user_attrs["retry_of"]: t.params for t in done if "retry_of" in t.user_attrs}
    assert {f.number: f.params for f in failed} == retried


def test_a_stop_right_after_the_storage_took_a_tell_keeps_the_trial_and_its_run(make_cfg,
                                                                                 monkeypatch):
    cfg = make_cfg(n_trials=8, batch_size=4)
    real, calls = runner.Batch._done, []

    def interrupted_done(self, trial):  # the tell is stored; the stop comes before it returns
        calls.append(trial.number)
        if len(calls) == 6:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        real(self, trial)

    monkeypatch.setattr(runner.Batch, "_done", interrupted_done)
    assert sweep(cfg).interrupted
    _, _, children = client_runs(cfg)
    status = {c.info.run_id: c.info.status for c in children}
    told = complete_of(cfg)
    assert len(told) >= 6
    assert all(status[t.user_attrs["mlflow_run_id"]] in ("FINISHED", "FAILED") for t in told)
    monkeypatch.undo()
    monkeypatch.chdir(Path(cfg.data.path).parent)
    sweep(cfg)
    assert len(complete_of(cfg)) == 8
    assert sum(c.info.status in ("FINISHED", "FAILED") for c in client_runs(cfg)[2]) == 8


def test_the_report_is_written_at_the_end_of_a_whole_sweep(make_cfg):
    cfg = make_cfg(n_trials=4)
    done = api.run_sweep(cfg, progress=False)
    assert done.report_path is not None and Path(done.report_path).exists()
    assert f"report: {done.report_path}" in format_summary(done)
    assert api.run_sweep(cfg, progress=False, report=False).report_path is None


# ── stopped and resumed: the same parameters as one uninterrupted sweep ──────────────────────


SPACES = {
    "random": {"lr": {"low": 0.01, "high": 2.0, "log": True}, "epochs": 60,
               "init_m": {"low": -1.0, "high": 1.0}},
    "qmc": {"lr": {"low": 0.01, "high": 2.0, "log": True}, "epochs": 60,
            "init_m": {"low": -1.0, "high": 1.0}},
    "grid": {"lr": {"values": [0.05, 0.1, 0.2, 0.4]}, "epochs": 60,
             "init_m": {"values": [-1.0, 0.0, 1.0]}},
}


def make(folder: Path, sampler: str) -> StudyConfig:
    folder.mkdir()
    lines = "".join(f"{x},{1.3 * x + 0.5 + 0.1 * ((7 * x) % 1 - 0.5)}\n"
                    for x in (0.1 * k for k in range(25)))
    (folder / "line.csv").write_text("x,y\n" + lines)
    raw = {"name": "resume", "data": {"path": "line.csv"},
           "search": {"sampler": sampler, "seed": 5, "n_trials": 12, "batch_size": 4,
                      "space": SPACES[sampler]},
           "tracking": {"storage": str(folder / "optuna.journal"),
                        "mlflow_uri": f"sqlite:///{folder / 'mlflow.db'}"}}
    return StudyConfig.from_mapping(raw, base_dir=folder)


def params(cfg: StudyConfig) -> list[tuple]:
    done = storage.load_study(cfg).get_trials(states=(TrialState.COMPLETE,))
    return sorted(tuple(sorted(t.params.items())) for t in done)


@pytest.mark.parametrize(("sampler", "signals"), [("random", 1), ("qmc", 2), ("grid", 2)],
                         ids=["random-one-signal", "qmc-two-signals", "grid-two-signals"])
def test_an_interrupted_and_resumed_sweep_runs_the_same_parameters(tmp_path, monkeypatch,
                                                                   sampler, signals):
    whole = make(tmp_path / "whole", sampler)
    runner.run_sweep(whole, progress=False)

    cut = make(tmp_path / "cut", sampler)
    # one signal halts the second batch's trials, two stop at once: either way they run again
    interrupt_on_batch(monkeypatch, 2, [signal.SIGINT] * signals)
    stopped = runner.run_sweep(cut, progress=False)
    assert stopped.interrupted and stopped.n_complete == 4
    monkeypatch.undo()
    assert runner.run_sweep(cut, progress=False).n_complete == 12

    assert params(cut) == params(whole) and len(set(params(whole))) == 12
    failed = storage.load_study(cut).get_trials(states=(TrialState.FAIL,))
    assert len(failed) == 4  # each run again with its parameters
