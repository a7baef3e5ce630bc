"""What is made once before the first batch (:mod:`study.sweep.startup`): the target, the stored
study, the experiment and what the parent run records, checked against the data itself."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow import MlflowClient

from study.sweep import startup


def test_the_target_is_n_trials_capped_to_the_grid_with_a_note(make_cfg):
    grid = {"lr": {"values": [0.05, 0.1]}, "epochs": 50, "init_m": {"values": [0.0, 1.0, 2.0]}}
    st = startup.setup(make_cfg(sampler="grid", n_trials=10, space=grid), fresh=False)
    assert st.target == 6 and st.notes == ["the grid has only 6 points: search.n_trials 10 "
                                           "capped to 6"]
    assert startup.setup(make_cfg(n_trials=7), fresh=True).target == 7


def test_setup_makes_the_study_and_the_experiment_and_a_worker_attaches_to_them(make_cfg):
    cfg = make_cfg(n_trials=5)
    st = startup.setup(cfg, fresh=False)
    assert st.study.study_name == "line" and startup.n_complete(st.study) == 0
    assert st.study.user_attrs["config_hash"] == cfg.hash()
    run_id = startup.start_parent(cfg, st)
    worker = startup.attach(cfg, st.tracker.experiment_id, run_id)
    assert worker.study.user_attrs["study_uid"] == st.study.user_attrs["study_uid"]
    assert (worker.tracker.experiment_id, worker.tracker.parent_run_id) == (
        st.tracker.experiment_id, run_id)
    assert not worker.tracker.owns_parent
    run = MlflowClient(cfg.tracking.mlflow_uri).get_run(run_id)
    assert run.info.run_name == "line-sweep" and run.data.tags["study.role"] == "sweep"


def test_the_parent_payload_holds_the_least_squares_solution_of_the_data(make_cfg):
    cfg = make_cfg()
    st = startup.setup(cfg, fresh=False)
    payload = startup.parent_payload(cfg, st.problem, st.base)
    data = np.loadtxt(cfg.data.path, delimiter=",", skiprows=1)
    design = np.column_stack([data[:, 0], np.ones(len(data))])
    (m, b), *_ = np.linalg.lstsq(design, data[:, 1], rcond=None)
    metrics, params = payload["metrics"], payload["params"]
    assert metrics["ols_m"] == pytest.approx(m, rel=1e-9)
    assert metrics["ols_b"] == pytest.approx(b, rel=1e-9)
    assert metrics["ols_cost"] == pytest.approx(np.mean((design @ [m, b] - data[:, 1]) ** 2),
                                                rel=1e-9)
    assert metrics["n_rows"] == len(data) == params["n_rows"]
    assert params["objectives"] == "dist_to_ols:minimize" and params["sampler"] == "random"
    assert payload["tags"]["config_hash"] == cfg.hash()
    assert payload["config_yaml"] == cfg.to_yaml()
