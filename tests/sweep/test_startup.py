"""What is made once before the first batch (:mod:`study.sweep.startup`): the target, the stored
study, the experiment and what the parent run records, checked against the data itself."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest
from mlflow import MlflowClient
from stores import check_exact, config, sweep, write_study

from study.cli import main
from study.errors import StorageError
from study.sweep import startup, storage
from study.tracking.tracker import Tracker


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


# ── resuming elsewhere, and what a start-up cut short leaves ───────────────────────────────


def _small_study(folder: Path) -> Path:
    return write_study(folder, n_trials=4, batch_size=4, epochs=20)


def test_a_copied_project_folder_resumes_and_a_changed_data_content_is_refused(tmp_path,
                                                                               monkeypatch):
    first = tmp_path / "checkout-a" / "project"
    first.mkdir(parents=True)
    monkeypatch.chdir(first)
    sweep(config(_small_study(first)))
    copy = tmp_path / "elsewhere" / "project"
    shutil.copytree(first, copy)
    monkeypatch.chdir(copy)
    summary = sweep(config(copy / "study.yaml", "search.n_trials=6"))
    assert summary.n_new == 2 and summary.n_complete == 6 and summary.notes == []
    data = copy / "line.csv"
    data.write_text(data.read_text() + "1.0,1.8\n")  # one row more: the content changed
    with pytest.raises(StorageError) as info:
        startup.setup(config(copy / "study.yaml"), fresh=False)
    message = str(info.value)
    assert "was made from a different config (changed: data.sha256: " in message
    assert "\n" not in message and "data.path" not in message


def test_a_study_stamped_with_the_datas_absolute_path_resumes_and_is_restamped(folder):
    cfg = config(_small_study(folder))
    sweep(cfg)
    st = startup.setup(cfg, fresh=False)
    old = cfg.study_fingerprint()
    old["data"]["path"] = "/home/someone/old-checkout/line.csv"  # as studies were stamped
    old_hash = hashlib.sha256(json.dumps(old, sort_keys=True, separators=(",", ":"))
                              .encode()).hexdigest()
    st.study.set_user_attr("fingerprint", old)
    st.study.set_user_attr("config_hash", old_hash)
    again = startup.setup(config(folder / "study.yaml"), fresh=False)
    assert again.notes == [f"study 'scale' in {cfg.tracking.storage}: its data are now "
                           f"identified by content and by their path from the config, no "
                           f"longer by the absolute path /home/someone/old-checkout/line.csv"]
    assert again.study.user_attrs["config_hash"] == cfg.hash()
    assert again.study.user_attrs["fingerprint"]["data"]["path"] == "line.csv"
    assert startup.setup(config(folder / "study.yaml"), fresh=False).notes == []


@pytest.mark.parametrize("stamped", [[], ["study_uid"], ["study_uid", "fingerprint"]])
def test_a_study_whose_creator_died_while_stamping_it_is_stamped_by_the_next_start(
        folder, stamped):
    cfg = config(_small_study(folder))
    study = optuna.create_study(storage=storage.open_storage(cfg.tracking.storage),
                                study_name=cfg.name)
    values = {"study_uid": "u" * 32, "fingerprint": cfg.study_fingerprint()}
    for key in stamped:
        study.set_user_attr(key, values[key])
    st = startup.setup(cfg, fresh=False)
    attrs = st.study.user_attrs
    assert attrs["config_hash"] == cfg.hash() and attrs["fingerprint"] == cfg.study_fingerprint()
    assert len(attrs["study_uid"]) == 32
    if stamped:
        assert attrs["study_uid"] == "u" * 32
    assert sweep(cfg).n_complete == 4


def test_a_deleted_mlflow_store_of_a_study_with_trials_is_refused_in_one_line(folder, capsys):
    path = _small_study(folder)
    cfg = config(path)
    sweep(cfg)
    (folder / "mlflow.db").unlink()
    code = main(["run", str(path), "--no-progress", "--no-report"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err == (f"study: error: study 'scale' in {cfg.tracking.storage} has 4 complete "
                   f"trial(s) logged in the MLflow store {cfg.tracking.mlflow_uri}, which no "
                   f"longer holds their runs (deleted or moved?): restore the store, or rerun "
                   f"with --fresh to start the study again (or give the study another name)\n")
    assert not (folder / "mlflow.db").exists()  # nothing made in its place
    # a new store in its place (made by hand, or by another study) holds none of the runs
    Tracker(cfg.tracking.mlflow_uri, cfg.name)
    assert main(["run", str(path), "--no-progress", "--no-report"]) == 2
    assert "no longer holds their runs" in capsys.readouterr().err
    assert main(["run", str(path), "--no-progress", "--no-report", "--fresh"]) == 0
    check_exact(cfg, 4)
