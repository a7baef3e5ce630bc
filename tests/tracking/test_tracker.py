"""The MLflow layer against real sqlite tracking stores in tmp_path (nothing mocked)."""

from __future__ import annotations

import math
import multiprocessing
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

from study.core import engine
from study.core.problem import Problem
from study.errors import StorageError
from study.tracking import runlog, uri, workerid
from study.tracking.tracker import Tracker


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    monkeypatch.chdir(tmp_path)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(scope="module")
def problem() -> Problem:
    rng = np.random.default_rng(5)
    x = rng.uniform(0.0, 2.0, 20)
    return Problem(x[:, None], 2.0 * x - 1.0 + rng.normal(0.0, 0.1, 20))


def record(problem: Problem, lr: float, number: int = 0, epochs: int = 150
           ) -> runlog.TrialRecord:
    settings = engine.Settings(tol_param=1e-4)
    res = engine.run_one(problem, engine.Trial(lr, epochs, (0.5, 0.0), settings))
    return runlog.TrialRecord("s", "uid1", number, {"lr": lr, "epochs": epochs, "init_m": 0.5,
                                                      "init_b": 0.0},
                                settings, 7, res, problem.param_names)


def test_child_run_holds_params_metrics_history_and_truthful_status(store, problem):
    tracker = Tracker(store, "s")
    parent = tracker.start_parent("s-sweep", config_yaml="name: s\n", dataset=None,
                                  params={"sampler": "random"}, metrics={"lr_max": 1.0},
                                  tags={})
    client = MlflowClient(store)
    for number, lr in enumerate((0.3, 50.0)):
        rec = record(problem, lr, number)
        run = client.get_run(tracker.log_trial(rec))
        assert run.data.tags["mlflow.parentRunId"] == parent
        assert run.info.run_name == f"s-{number}"
        assert run.data.tags["status"] == rec.result.status
        assert run.info.status == runlog.STATUS_TO_RUN_STATUS[rec.result.status]
        assert run.data.params["lr"] == repr(lr) and run.data.params["seed"] == "7"
        assert run.data.params["param_tols"] == "0.1,0.01,0.001"
        assert run.data.metrics["standardize"] == 0.0
        assert all(math.isfinite(v) for v in run.data.metrics.values())
        history = client.get_metric_history(run.info.run_id, "cost")
        assert [m.step for m in history] == rec.result.history_epoch.tolist()
        assert [m.value for m in history] == rec.result.history_cost.tolist()
        csv_text = (runlog.history_csv(rec.result, rec.param_names))
        assert csv_text.splitlines()[0] == "epoch,cost"
        assert len(csv_text.splitlines()) == len(history) + 1
    assert runlog.STATUS_TO_RUN_STATUS == {"converged": "FINISHED", "max_epochs": "FINISHED",
                                             "diverged": "FAILED"}


def test_payload_never_carries_non_finite_or_unreached_values(problem):
    rec = record(problem, 50.0)  # far past lr_max: diverges at once
    assert rec.result.status == "diverged"
    _, metrics, params, tags = runlog.trial_payload(rec, 1, None)
    assert all(math.isfinite(m.value) for m in metrics)
    unreached = [k for k, v in runlog.result_values(rec.result, ("m", "b")).items()
                 if v is None]
    assert unreached and not {m.key for m in metrics} & set(unreached)
    assert len(params) <= runlog.MAX_PARAMS and ("status", "diverged") in [(t.key, t.value)
                                                                              for t in tags]


def test_log_batch_splits_to_the_request_limits(store):
    tracker = Tracker(store, "s")
    client = tracker.client
    run_id = client.create_run(tracker.experiment_id).info.run_id
    metrics = [Metric("cost", float(k), 5, k) for k in range(2500)]
    params = [Param(f"p{k}", str(k)) for k in range(150)]
    tags = [RunTag(f"t{k}", "x") for k in range(120)]
    assert runlog.log_batch(client, run_id, metrics, params, tags) == 3
    run = client.get_run(run_id)
    assert len(run.data.params) == 150 and sum(k.startswith("t") for k in run.data.tags) == 120
    assert len(client.get_metric_history(run_id, "cost")) == 2500


def test_a_replayed_batch_with_the_same_timestamps_adds_no_points(store):
    tracker = Tracker(store, "s")
    run_id = tracker.client.create_run(tracker.experiment_id).info.run_id
    metrics = [Metric("cost", 1.0 / (k + 1), 1234, k) for k in range(50)]
    runlog.log_batch(tracker.client, run_id, metrics)
    runlog.log_batch(tracker.client, run_id, metrics)
    assert len(tracker.client.get_metric_history(run_id, "cost")) == 50


def test_a_trial_logged_twice_keeps_one_run_and_one_history(store, problem):
    tracker = Tracker(store, "s")
    since = int(time.time() * 1000) - 1
    rec = record(problem, 0.3, number=4)
    first = tracker.log_trial(rec)
    found = tracker.existing_children("uid1", since)
    assert list(found) == [4] and found[4].info.run_id == first
    assert tracker.log_trial(rec, found[4]) == first
    # a run left RUNNING by an interrupted attempt is completed, not duplicated
    client = tracker.client
    client.update_run(first, status="RUNNING")
    again = tracker.existing_children("uid1", since)[4]
    assert tracker.log_trial(rec, again) == first
    assert len(client.get_metric_history(first, "cost")) == rec.result.history_epoch.size
    runs = client.search_runs([tracker.experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"


def test_retry_waits_out_transient_errors_only():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise MlflowException("busy", error_code=TEMPORARILY_UNAVAILABLE)
        return "ok"

    assert runlog.retry_store(flaky, "log", delays=(0, 0, 0)) == "ok" and len(calls) == 3
    calls.clear()
    with pytest.raises(StorageError, match="stayed unavailable while trying to log"):
        runlog.retry_store(flaky, "log", delays=(0,))
    with pytest.raises(MlflowException, match="bad"):
        runlog.retry_store(lambda: (_ for _ in ()).throw(MlflowException("bad")), "log")
    calls.clear()
    # a run that the failed attempt did create is found instead of created twice
    assert runlog.retry_store(flaky, "create", before_retry=lambda: "found", delays=(0,)) == "found"
    assert len(calls) == 1
    # a lookup that meets the same transient error is one more failed attempt, not the end
    calls.clear()
    lookups = []

    def busy_lookup():
        lookups.append(1)
        raise MlflowException("busy", error_code=TEMPORARILY_UNAVAILABLE)

    assert runlog.retry_store(flaky, "create", before_retry=busy_lookup, delays=(0, 0)) == "ok"
    assert len(calls) == 3 and len(lookups) == 2
    # the error that stops a sweep names the store
    calls.clear()
    with pytest.raises(StorageError) as caught:
        runlog.retry_store(flaky, "log", delays=())
    named = runlog.as_storage_error("sqlite:///s.db", caught.value)
    assert str(named) == ("the MLflow store sqlite:///s.db stayed unavailable while trying to log "
                          "(1 attempt): busy (the trials told so far are kept; run again to "
                          "resume)")


def test_a_locked_sqlite_store_is_waited_for(store, problem):
    tracker = Tracker(store, "s")
    db = uri.sqlite_path(store)
    conn = sqlite3.connect(db, check_same_thread=False)
    conn.execute("BEGIN EXCLUSIVE")

    def release():
        time.sleep(1.0)
        conn.rollback()

    holder = threading.Thread(target=release)
    holder.start()
    rec = record(problem, 0.3)
    run_id = tracker.log_trial(rec)
    holder.join()
    history = tracker.client.get_metric_history(run_id, "cost")
    assert len(history) == rec.result.history_epoch.size


def _dead_pid() -> int:
    out = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_runs_of_dead_workers_are_marked_killed(store):
    tracker = Tracker(store, "s")
    host = workerid.worker_id().rpartition(":")[0]
    dead = tracker.client.create_run(tracker.experiment_id, tags={
        runlog.WORKER_TAG: f"{host}:{_dead_pid()}"}).info.run_id
    alive = tracker.client.create_run(tracker.experiment_id, tags={
        runlog.WORKER_TAG: workerid.worker_id()}).info.run_id
    elsewhere = tracker.client.create_run(tracker.experiment_id, tags={
        runlog.WORKER_TAG: "another-host:1"}).info.run_id
    assert tracker.reap_dead_workers() == 1
    status = {r: tracker.client.get_run(r).info.status for r in (dead, alive, elsewhere)}
    assert status == {dead: "KILLED", alive: "RUNNING", elsewhere: "RUNNING"}


def _open_tracker(uri: str, queue) -> None:
    queue.put(Tracker(uri, "shared").experiment_id)


@pytest.mark.slow
def test_workers_starting_together_on_a_new_store_share_one_experiment(tmp_path):
    uri = f"sqlite:///{tmp_path / 'new.db'}"
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_open_tracker, args=(uri, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    ids = [queue.get(timeout=5) for _ in procs]
    assert all(p.exitcode == 0 for p in procs)
    assert len(set(ids)) == 1 and ids[0] != "0"
    assert MlflowClient(uri).get_experiment(ids[0]).name == "shared"


def test_ui_command_and_store_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = f"sqlite:///{tmp_path / 'm.db'}"
    assert uri.ui_command(store) == ["mlflow", "ui", "--backend-store-uri", store,
                                        "--default-artifact-root",
                                        (tmp_path / "mlruns").as_uri()]
    assert uri.sqlite_path("sqlite:///rel.db") == tmp_path / "rel.db"
    assert uri.ui_command("http://host:5000") == ["python", "-m", "webbrowser",
                                                       "http://host:5000"]
    assert uri.ui_text("http://host:5000") == "http://host:5000 (served by the tracking " \
                                                   "server)"
    assert uri.ui_text(store).startswith("mlflow ui --backend-store-uri sqlite:///")


def test_experiment_artifacts_live_beside_the_database(store, tmp_path):
    tracker = Tracker(store, "s")
    location = tracker.client.get_experiment(tracker.experiment_id).artifact_location
    assert location == (tmp_path / "mlruns" / "s").as_uri()
    assert Tracker(store, "s").experiment_id == tracker.experiment_id
