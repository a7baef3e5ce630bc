"""Whole sweeps against real stores: an Optuna journal file and an MLflow sqlite store in
tmp_path, read back through MlflowClient and Optuna. Nothing is mocked."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from study import api
from study.config.model import StudyConfig
from study.core import engine, theory
from study.core.data import load_problem
from study.errors import StorageError
from study.sweep import loop as runner
from study.sweep import objectives, sampling, storage
from study.sweep.summary import format_summary, trials_frame
from study.tracking.workerid import worker_id

N_POINTS = 30


def write_data(folder: Path) -> Path:
    """y ≈ 1.3 x + 0.5 on x ∈ [0, 2]: lr_max ≈ 0.42 under mse."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 2.0, N_POINTS)
    y = 1.3 * x + 0.5 + rng.normal(0.0, 0.1, N_POINTS)
    path = folder / "line.csv"
    path.write_text("x,y\n" + "".join(f"{a!r},{b!r}\n" for a, b in zip(x.tolist(), y.tolist(),
                                                                         strict=True)))
    return path


def raw_config(**search) -> dict:
    space = {"lr": {"low": 0.01, "high": 2.0, "log": True}, "epochs": 300,
             "init_m": {"low": -1.0, "high": 1.0}, "init_b": 0.0}
    base = {"sampler": "random", "seed": 3, "n_trials": 10, "batch_size": 4,
            "objectives": [{"metric": "dist_to_ols"}], "space": space}
    base.update(search)
    return {"name": "line", "data": {"path": "line.csv"}, "algorithm": {"tol_param": 1e-4},
            "search": base}


@pytest.fixture
def make_cfg(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_data(tmp_path)

    def make(raw: dict | None = None, overrides=(), **search) -> StudyConfig:
        return StudyConfig.from_mapping(raw or raw_config(**search), base_dir=tmp_path,
                                        overrides=overrides)

    return make


def runs(cfg: StudyConfig) -> tuple[MlflowClient, list, list]:
    """(client, parent runs, child runs) of the config's experiment."""
    client = MlflowClient(cfg.tracking.mlflow_uri)
    exp = client.get_experiment_by_name(cfg.name)
    everything = client.search_runs([exp.experiment_id], max_results=5000)
    parents = [r for r in everything if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in everything if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


def run(cfg: StudyConfig, **kwargs) -> summary.SweepSummary:
    return api.run_sweep(cfg, progress=False, report=False, **kwargs)


def complete(cfg: StudyConfig) -> list:
    return storage.load_study(cfg).get_trials(states=(TrialState.COMPLETE,))


def test_one_parent_and_one_child_per_trial_with_history_params_and_metrics(make_cfg):
    cfg = make_cfg()
    summary = run(cfg)
    assert summary.n_complete == 10 and summary.n_new == 10 and not summary.interrupted

    client, parents, children = runs(cfg)
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
                    "standardize", "divergence_factor", "seed"):
            assert key in params, key
        for key in ("lr", "epochs", "init_m", "init_b", "final_m", "final_b", "final_cost",
                    "dist_to_ols", "cost_gap", "rel_cost_gap", "epochs_run"):
            assert key in metrics, key
        lr, m0, b0 = float(params["lr"]), float(params["init_m"]), float(params["init_b"])
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
        assert lr == metrics["lr"]
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
    for trial in complete(cfg):
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


def test_diverging_lr_is_a_result_with_finite_values_and_never_best(make_cfg):
    cfg = make_cfg(n_trials=4, batch_size=4, sampler="grid",
                   space={"lr": {"values": [0.1, 4.2]}, "epochs": 300,
                          "init_m": {"values": [0.0, 1.0]}})
    lr_max = theory.lr_max(load_problem(cfg.data.path), cfg.settings())
    assert 4.2 == pytest.approx(10 * lr_max, rel=0.01)
    summary = run(cfg)
    frame = trials_frame(cfg)
    diverged = frame[frame["status"] == "diverged"]
    assert len(diverged) == 2 and set(diverged["lr"]) == {4.2}
    assert (diverged["objective_dist_to_ols"] == objectives.DIVERGED_VALUE).all()
    assert diverged["diverged_at"].notna().all()
    assert all(b["status"] != "diverged" for b in summary.best)
    assert all(t.user_attrs["status"] != "diverged" for t in objectives.best_trials(
        storage.load_study(cfg)))

    client, _, children = runs(cfg)
    for child in children:
        assert all(math.isfinite(v) for v in child.data.metrics.values())
        for point in client.get_metric_history(child.info.run_id, "cost"):
            assert math.isfinite(point.value)
        if child.data.tags["status"] == "diverged":
            assert child.info.status == "FAILED"
    assert summary.brackets[0]["lr_diverged"] == 4.2
    assert summary.brackets[0]["lr_converged"] == 0.1


def test_rerun_resumes_and_a_larger_n_trials_adds_only_the_difference(make_cfg):
    cfg = make_cfg(n_trials=8)
    run(cfg)
    again = run(make_cfg(n_trials=8))
    assert again.n_new == 0 and again.n_complete == 8
    more = run(make_cfg(overrides=["search.n_trials=11"]))
    assert more.n_new == 3 and more.n_complete == 11
    numbers = [t.number for t in complete(cfg)]
    assert len(numbers) == 11 == len(set(numbers))
    _, parents, children = runs(cfg)
    assert len(parents) == 3
    per_number = [c.data.tags["optuna.trial_number"] for c in children]
    assert len(per_number) == 11 == len(set(per_number))


def test_changed_config_is_refused_naming_the_field_and_fresh_replaces_it(make_cfg):
    run(make_cfg(n_trials=4))
    changed = raw_config(n_trials=4)
    changed["search"]["space"]["lr"]["high"] = 1.0
    with pytest.raises(StorageError, match=r"search\.space\.lr\.high: 2\.0 → 1\.0"):
        run(make_cfg(changed))
    summary = run(make_cfg(changed), fresh=True)
    assert summary.n_new == 4 and any("replaced" in n for n in summary.notes)
    assert all(t.params["lr"] <= 1.0 for t in complete(make_cfg(changed)))


@pytest.mark.parametrize("sampler", ["random", "qmc", "grid", "tpe"])
def test_same_config_and_seed_give_the_same_trials(make_cfg, tmp_path, monkeypatch, sampler):
    space = raw_config()["search"]["space"]
    if sampler == "grid":
        space = {"lr": {"values": [0.05, 0.1, 0.2]}, "epochs": 50,
                 "init_m": {"values": [-1.0, 0.0, 1.0]}}
    params = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        write_data(tmp_path / folder)
        cfg = StudyConfig.from_mapping(raw_config(sampler=sampler, n_trials=6, space=space),
                                       base_dir=tmp_path / folder)
        run(cfg)
        params.append([t.params for t in sorted(complete(cfg), key=lambda t: t.number)])
    assert params[0] == params[1] and len(params[0]) == 6


def test_grid_stops_at_its_end_without_duplicates(make_cfg):
    space = {"lr": {"values": [0.05, 0.1, 0.2]}, "epochs": 50, "init_m": {"values": [0.0, 1.0]}}
    cfg = make_cfg(sampler="grid", n_trials=10, batch_size=4, space=space)
    summary = run(cfg)
    assert summary.n_complete == 6 and any("only 6 points" in n for n in summary.notes)
    again = run(cfg)
    assert again.n_new == 0
    combos = [(t.params["lr"], t.params["init_m"]) for t in complete(cfg)]
    assert len(combos) == 6 == len(set(combos))


def _interrupt_on_batch(monkeypatch, batch: int, signals: list[int]) -> None:
    """Send ``signals`` to this process when the engine starts batch number ``batch``."""
    real = engine.run
    calls = []

    def signalling_run(problem, trials):
        calls.append(len(trials))
        if len(calls) == batch:
            for sig in signals:
                os.kill(os.getpid(), sig)
        return real(problem, trials)

    monkeypatch.setattr(engine, "run", signalling_run)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_after_the_batch_and_a_rerun_completes(make_cfg, monkeypatch, sig):
    cfg = make_cfg(n_trials=12, batch_size=4)
    _interrupt_on_batch(monkeypatch, 2, [sig])
    summary = run(cfg)
    assert summary.interrupted and summary.n_complete == 8
    _, parents, children = runs(cfg)
    assert parents[0].info.status == "KILLED" and len(children) == 8
    monkeypatch.undo()
    monkeypatch.chdir(Path(cfg.data.path).parent)
    assert run(cfg).n_complete == 12
    assert len(runs(cfg)[2]) == 12


def test_a_second_signal_stops_at_once_and_the_lost_trials_run_again(make_cfg, monkeypatch):
    cfg = make_cfg(n_trials=8, batch_size=4)
    _interrupt_on_batch(monkeypatch, 2, [signal.SIGINT, signal.SIGINT])
    summary = run(cfg)
    assert summary.interrupted and summary.n_complete == 4
    study = storage.load_study(cfg)
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(failed) == 4
    _, parents, children = runs(cfg)
    assert parents[0].info.status == "KILLED" and len(children) == 4
    assert not [r for r in runs(cfg)[1] + children if r.info.status == "RUNNING"]
    monkeypatch.undo()
    monkeypatch.chdir(Path(cfg.data.path).parent)
    run(cfg)
    done = complete(cfg)
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
    assert run(cfg).interrupted
    _, _, children = runs(cfg)
    status = {c.info.run_id: c.info.status for c in children}
    told = complete(cfg)
    assert len(told) >= 6
    assert all(status[t.user_attrs["mlflow_run_id"]] in ("FINISHED", "FAILED") for t in told)
    monkeypatch.undo()
    monkeypatch.chdir(Path(cfg.data.path).parent)
    run(cfg)
    assert len(complete(cfg)) == 8
    assert sum(c.info.status in ("FINISHED", "FAILED") for c in runs(cfg)[2]) == 8


def test_trials_left_running_by_a_dead_process_are_failed_and_run_again(make_cfg):
    cfg = make_cfg(n_trials=3, batch_size=3)
    sampler = sampling.make_sampler(cfg, sampling.build_space(cfg, 1))
    study, _ = storage.open_study(cfg, sampler)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = study.ask(sampling.build_space(cfg, 1).distributions)
    stale.set_user_attr("worker", f"{worker_id().rpartition(':')[0]}:{dead}")
    summary = run(cfg)
    assert any("dead worker" in n for n in summary.notes)
    study = storage.load_study(cfg)
    assert study.trials[stale.number].state == TrialState.FAIL
    done = complete(cfg)
    assert len(done) == 3
    assert [t.params for t in done if t.user_attrs.get("retry_of") == stale.number] \
        == [stale.params]


def test_trials_frame_is_tidy(make_cfg):
    cfg = make_cfg(n_trials=5, objectives=[{"metric": "dist_to_ols"},
                                           {"metric": "epochs_to_param_tol", "tol": 0.01}],
                   sampler="nsga2")
    run(cfg)
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
            >= objectives.UNREACHED_VALUE).all()
    assert (frame.loc[reached, "objective_epochs_to_param_tol_0.01"]
            == frame.loc[reached, "epochs_to_param_tol_0.01"].astype(float)).all()


def test_swept_settings_reach_the_engine(make_cfg):
    space = {"lr": 0.1, "epochs": 200, "standardize": {"values": [False, True]},
             "cost": {"values": ["mse", "sse"]}}
    cfg = make_cfg(sampler="grid", n_trials=4, space=space)
    run(cfg)
    frame = trials_frame(cfg)
    assert sorted(zip(frame["standardize"], frame["cost"], strict=True)) == [
        (False, "mse"), (False, "sse"), (True, "mse"), (True, "sse")]
    problem = load_problem(cfg.data.path)
    for row in frame.itertuples():
        settings = engine.Settings(tol_param=1e-4, standardize=row.standardize, cost=row.cost)
        res = engine.run_one(problem, engine.Trial(0.1, 200, (0.0, 0.0), settings, row.seed))
        assert res.status == row.status and res.cost == row.final_cost


def test_objective_values_are_finite_and_capped():
    class Obj:
        def __init__(self, metric, direction="minimize", tol=None):
            self.metric, self.direction, self.tol = metric, direction, tol

    objs = [Obj("final_cost"), Obj("epochs_to_cost_tol", tol=0.001), Obj("dist_to_ols",
                                                                        "maximize")]
    values = {"final_cost": 2.0, "epochs_to_cost_tol_0.001": None, "dist_to_ols": 1.0}
    assert objectives.objective_values(values, "max_epochs", objs) == [2.0, objectives.UNREACHED_VALUE,
                                                                   1.0]
    assert objectives.objective_values(values, "diverged", objs) == [
        objectives.DIVERGED_VALUE, objectives.DIVERGED_VALUE, -objectives.DIVERGED_VALUE]
    values["final_cost"] = float("inf")
    assert objectives.objective_values(values, "max_epochs", objs)[0] == objectives.DIVERGED_VALUE


def test_sqlite_storage_is_accepted(make_cfg, tmp_path):
    raw = raw_config(n_trials=3)
    raw["tracking"] = {"storage": f"sqlite:///{tmp_path / 'optuna.db'}"}
    cfg = make_cfg(raw)
    assert run(cfg).n_complete == 3
    store = storage.open_storage(cfg.tracking.storage)
    assert isinstance(store, optuna.storages.RDBStorage)


def test_a_torn_journal_line_is_explained_with_its_repair(make_cfg):
    cfg = make_cfg(n_trials=3, batch_size=3)
    run(cfg)
    journal = Path(cfg.tracking.storage)
    size = journal.stat().st_size
    with journal.open("ab") as f:
        f.write(b'{"op_code": 6, "worker_id": "w", "trial_id": 2, "st')  # killed mid-write
    more = make_cfg(overrides=["search.n_trials=5"])
    with pytest.raises(StorageError, match=rf"truncate -s {size} {journal}"):
        run(more)
    os.truncate(journal, size)  # the repair the message gives
    assert run(more).n_complete == 5


def test_the_report_is_written_at_the_end_of_a_whole_sweep(make_cfg):
    cfg = make_cfg(n_trials=4)
    done = api.run_sweep(cfg, progress=False)
    assert done.report_path is not None and Path(done.report_path).exists()
    assert f"report: {done.report_path}" in format_summary(done)
    assert api.run_sweep(cfg, progress=False, report=False).report_path is None


def test_errors_raised_inside_the_optuna_storage_are_recognised(tmp_path):
    store = storage.open_storage(str(tmp_path / "o.journal"))
    with pytest.raises(KeyError) as info:
        store.get_trial(12345)
    assert storage.raised_in_storage(info.value)
    with pytest.raises(KeyError) as info:
        {}["x"]
    assert not storage.raised_in_storage(info.value)


def test_qmc_trials_are_the_scrambled_sobol_sequence_in_order(make_cfg):
    """Trial n takes point n of scipy's scrambled Sobol sequence (the sampler's seed), mapped
    onto the ranges: log-uniform for lr, uniform for init_m, in the space's order."""
    from scipy.stats import qmc

    cfg = make_cfg(sampler="qmc", n_trials=8, batch_size=3)
    run(cfg)
    got = sorted(complete(cfg), key=lambda t: t.number)
    u = qmc.Sobol(2, scramble=True, seed=3).random(8)  # columns: lr, init_m
    lr = np.exp(np.log(0.01) + (np.log(2.0) - np.log(0.01)) * u[:, 0])
    init_m = -1.0 + 2.0 * u[:, 1]
    np.testing.assert_allclose([t.params["init_m"] for t in got], init_m, rtol=1e-12)
    np.testing.assert_allclose([t.params["lr"] for t in got], lr, rtol=1e-12)
