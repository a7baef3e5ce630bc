"""Trials' logged histories read without MLflow (study.tracking.histories), the parent run found
with sqlite alone (study.tracking.sqlite_store.sweep_run_location), both against MLflow's own
answers and the engine's re-runs on a real sweep."""

from __future__ import annotations

import numpy as np
import pandas as pd
from stores import config, sweep, write_study

from study.api import load_problem
from study.report.figures import cost_curve_data
from study.report.regions import trials_table
from study.report.spec import spec_from_config
from study.sweep.summary import trials_frame
from study.tracking.histories import local_histories
from study.tracking.sqlite_store import sweep_run_location
from study.tracking.tracker import sweep_run
from study.tracking.uri import sqlite_path


def _study(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = config(write_study(tmp_path, n_trials=8, batch_size=4, epochs=200))
    sweep(cfg)
    return cfg


def test_logged_histories_are_what_the_engine_measures_again(tmp_path, monkeypatch):
    cfg = _study(tmp_path, monkeypatch)
    frame = trials_frame(cfg)
    problem = load_problem(cfg.data.path, cfg.data.x, cfg.data.y)
    spec = spec_from_config(cfg)
    table = trials_table(problem, frame, spec)
    read = local_histories(cfg.tracking.mlflow_uri)
    assert read is not None
    assert all(read(run_id) is not None for run_id in frame["mlflow_run_id"])
    assert (table["region"] == "diverged").any()  # a history that ends in inf is read too
    stored = cost_curve_data(problem, table, spec, stored=read)
    rerun = cost_curve_data(problem, table, spec)
    pd.testing.assert_frame_equal(stored, rerun, check_exact=True)
    assert len(stored) > 0


def test_what_cannot_be_read_is_none_for_a_re_run(tmp_path, monkeypatch):
    cfg = _study(tmp_path, monkeypatch)
    read = local_histories(cfg.tracking.mlflow_uri)
    run_id = trials_frame(cfg)["mlflow_run_id"].iloc[0]
    assert read("0" * 32) is None
    history = next((tmp_path / "mlruns").rglob(f"{run_id}/artifacts/history.csv"))
    epochs, costs = read(run_id)
    assert epochs.dtype == np.int64 and epochs[0] == 0 and len(epochs) == len(costs)
    history.write_text("epoch,cost\n0,not-a-number\n")
    assert read(run_id) is None
    history.unlink()
    assert read(run_id) is None
    assert local_histories("http://127.0.0.1:5000") is None
    assert local_histories(f"sqlite:///{tmp_path / 'absent.db'}") is None


def test_the_parent_run_found_with_sqlite_is_mlflows(tmp_path, monkeypatch):
    cfg = _study(tmp_path, monkeypatch)
    uri = cfg.tracking.mlflow_uri
    found = sweep_run_location(sqlite_path(uri), cfg.name)
    client, run_id = sweep_run(uri, cfg.name)
    assert found == (run_id, client.get_run(run_id).info.artifact_uri)
    assert sweep_run_location(sqlite_path(uri), "no-such-study") is None
    client.delete_run(run_id)  # a deleted parent is not logged to, as MLflow's search agrees
    assert sweep_run(uri, cfg.name) is None
    assert sweep_run_location(sqlite_path(uri), cfg.name) is None
