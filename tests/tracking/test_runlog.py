"""What a child run holds and how it is sent (:mod:`study.tracking.runlog`): the payload, batches
split to the request limits, replays that add nothing, and retries of transient errors; real
sqlite tracking stores in tmp_path."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE
from stores import record

from study.errors import StorageError
from study.tracking import runlog
from study.tracking.tracker import Tracker


def test_payload_never_carries_non_finite_or_unreached_values(problem):
    rec = record(problem, 50.0)  # far past lr_max: diverges at once
    assert rec.result.status == "diverged"
    _, metrics, params, tags = runlog.trial_payload(rec, 1, None)
    assert all(math.isfinite(m.value) for m in metrics)
    unreached = [k for k, v in runlog.result_values(rec.result, ("m", "b")).items()
                 if v is None]
    assert unreached and not {m.key for m in metrics} & set(unreached)
    assert len(params) <= runlog.MAX_PARAMS
    assert ("status", "diverged") in [(t.key, t.value) for t in tags]


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


@pytest.mark.parametrize(("changes", "own"), [
    ({}, {"update"}),
    ({"optimizer": "momentum"}, {"update", "momentum"}),
    ({"optimizer": "minibatch"}, {"update", "batch_size", "seed"}),
    ({"optimizer": "line_search"}, {"line_search", "armijo", "shrink"}),
    ({"optimizer": "line_search", "line_search": "exact"}, {"line_search"}),
])
def test_a_child_run_holds_only_the_settings_its_optimizer_reads(problem, changes, own):
    rec = record(problem, 0.01)
    rec = replace(rec, settings=replace(rec.settings, **changes))
    shared = {"optimizer", "cost", "standardize", "divergence_factor", "tol_param"}
    params = runlog.trial_params(rec)
    assert list(params)[:4] == ["lr", "epochs", "init_m", "init_b"]
    assert set(params) == {"lr", "epochs", "init_m", "init_b"} | shared | own
    # a swept setting is the trial's own value
    rec = replace(rec, params={**rec.params, "momentum": 0.5})
    assert runlog.trial_params(rec)["momentum"] == 0.5
