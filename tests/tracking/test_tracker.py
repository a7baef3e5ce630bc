"""The MLflow layer (:mod:`study.tracking.tracker`) against real sqlite tracking stores in tmp_path
(nothing mocked)."""

from __future__ import annotations

import math
import multiprocessing
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest
from mlflow import MlflowClient
from stores import record

from study.tracking import runlog, uri, workerid
from study.tracking._mlflow_private import head_revision
from study.tracking.sqlite_store import inspect_store
from study.tracking.tracker import Tracker


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
        # the trial's own values and the settings plain GD reads, nothing else
        assert run.data.params == {
            "lr": repr(lr), "epochs": "150", "init_m": "0.5", "init_b": "0.0",
            "optimizer": "gd", "update": "simultaneous", "cost": "mse",
            "standardize": "False", "divergence_factor": "10.0", "tol_param": "0.0001"}
        assert {"final_m", "final_b", "dist_to_ols", "epochs_run"} <= set(run.data.metrics)
        assert not {"lr", "epochs", "standardize"} & set(run.data.metrics)
        assert run.info.end_time > run.info.start_time
        assert all(math.isfinite(v) for v in run.data.metrics.values())
        history = client.get_metric_history(run.info.run_id, "cost")
        assert [m.step for m in history] == rec.result.history_epoch.tolist()
        assert [m.value for m in history] == rec.result.history_cost.tolist()
        csv_text = (runlog.history_csv(rec.result, rec.param_names))
        assert csv_text.splitlines()[0] == "epoch,cost"
        assert len(csv_text.splitlines()) == len(history) + 1
    assert runlog.STATUS_TO_RUN_STATUS == {"converged": "FINISHED", "max_epochs": "FINISHED",
                                             "diverged": "FAILED"}


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
def test_eight_workers_starting_together_on_a_new_store_share_one_whole_store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'new.db'}"
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_open_tracker, args=(uri, queue)) for _ in range(8)]
    for p in procs:
        p.start()
    ids = [queue.get(timeout=300) for _ in procs]  # 8 MLflow imports on a loaded machine
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    assert len(set(ids)) == 1 and ids[0] != "0"
    assert MlflowClient(uri).get_experiment(ids[0]).name == "shared"
    state = inspect_store(tmp_path / "new.db")  # RELIABILITY case 1: whole, at head
    assert state.complete(head_revision()) and not list(tmp_path.glob(".new.db.building-*"))


def test_experiment_artifacts_live_beside_the_database(store, tmp_path):
    tracker = Tracker(store, "s")
    location = tracker.client.get_experiment(tracker.experiment_id).artifact_location
    assert location == (tmp_path / "mlruns" / "s").as_uri()
    assert Tracker(store, "s").experiment_id == tracker.experiment_id


def test_a_child_run_lasts_from_its_batch_to_its_logging(store, problem):
    tracker = Tracker(store, "s")
    asked = int(time.time() * 1000) - 1500  # its batch was asked 1.5 s ago
    rec = replace(record(problem, 0.3), started_ms=asked)
    before = int(time.time() * 1000)
    run = tracker.client.get_run(tracker.log_trial(rec))
    assert run.info.start_time == asked
    assert before <= run.info.end_time <= int(time.time() * 1000)
    assert run.info.end_time - run.info.start_time >= 1500


def test_one_parent_run_per_study_reopened_by_each_invocation(store):
    def start(tracker, n_trials, uid="u1"):
        return tracker.start_parent("s-sweep", config_yaml=f"n_trials: {n_trials}\n",
                                    dataset=None, params={"sampler": "qmc", "n_trials": n_trials},
                                    metrics={"lr_max": 1.0},
                                    tags={"optuna.study_uid": uid, "config_hash": "h"})

    first = Tracker(store, "s")
    parent = start(first, 80)
    first.end_parent("FINISHED", {"trials_new": 80})
    second = Tracker(store, "s")
    assert start(second, 120) == parent
    client = second.client
    run = client.get_run(parent)
    assert run.info.status == "RUNNING"
    second.end_parent("FINISHED", {"trials_new": 40})
    run = client.get_run(parent)
    assert run.info.status == "FINISHED" and run.info.end_time >= run.info.start_time
    assert run.data.params["n_trials"] == "80"  # MLflow params never change: the tag says so
    assert run.data.tags["study.invocations"] == "2"
    assert "n_trials=120 (was 80)" in run.data.tags["study.invocation.2"]
    assert "changed" not in run.data.tags["study.invocation.1"]
    history = client.get_metric_history(parent, "trials_new")
    assert sorted((m.step, m.value) for m in history) == [(1, 80.0), (2, 40.0)]
    assert len(client.get_metric_history(parent, "lr_max")) == 1
    texts = client.download_artifacts(parent, "config.yaml")
    assert open(texts).read() == "n_trials: 120\n"
    # another study (a --fresh one has a new uid) gets its own parent
    third = Tracker(store, "s")
    assert start(third, 120, uid="u2") != parent
    parents = client.search_runs([second.experiment_id], "tags.`study.role` = 'sweep'")
    assert len(parents) == 2


def test_the_experiment_opens_on_its_runs_in_the_ui(store):
    tracker = Tracker(store, "s")
    tracker.start_parent("s-sweep", config_yaml="", dataset=None, params={}, metrics={},
                         tags={})
    tags = tracker.client.get_experiment(tracker.experiment_id).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    # a kind chosen in the UI is kept
    tracker.client.set_experiment_tag(tracker.experiment_id, "mlflow.experimentKind",
                                      "genai_development")
    Tracker(store, "s").start_parent("s-sweep", config_yaml="", dataset=None, params={},
                                     metrics={}, tags={})
    tags = tracker.client.get_experiment(tracker.experiment_id).tags
    assert tags["mlflow.experimentKind"] == "genai_development"
