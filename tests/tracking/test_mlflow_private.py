"""The MLflow behaviours :mod:`study.tracking._mlflow_private` relies on, pinned on a real sqlite
tracking store in tmp_path: an MLflow release that changes one fails here."""

from __future__ import annotations

import importlib
import logging
import sqlite3
from pathlib import Path

from mlflow import MlflowClient

from study.tracking import _mlflow_private as private
from study.tracking.tracker import Tracker


def test_a_text_artifact_written_from_the_runs_location_is_the_runs_artifact(store, tmp_path):
    tracker = Tracker(store, "s")
    run = tracker.client.create_run(tracker.experiment_id)
    private.log_text_artifact(run.info.artifact_uri, store, "epoch,cost\n0,1.5\n", "history.csv")
    client = MlflowClient(store)
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["history.csv"]
    local = client.download_artifacts(run.info.run_id, "history.csv", str(tmp_path))
    assert Path(local).read_text() == "epoch,cost\n0,1.5\n"
    # where the experiment keeps artifacts: mlruns/ beside the database
    assert run.info.artifact_uri.startswith((tmp_path / "mlruns" / "s").as_uri())


def test_the_sql_store_logs_its_errors_under_the_logger_that_is_quietened(store):
    Tracker(store, "s")  # opens the SQL store, importing its modules
    module = importlib.import_module(private.STORE_ERROR_LOGGER)
    assert module._logger.name == private.STORE_ERROR_LOGGER
    private.quiet_store_errors()
    assert logging.getLogger(private.STORE_ERROR_LOGGER).getEffectiveLevel() == logging.CRITICAL


def test_a_schema_built_by_create_schema_is_what_mlflow_opens_at_head(tmp_path):
    db = tmp_path / "built.db"
    private.create_schema(db)
    with sqlite3.connect(db) as conn:
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision == private.head_revision()
    client = MlflowClient(f"sqlite:///{db}")
    assert client.create_experiment("e")  # MLflow takes the file as a complete store


def test_forget_engines_closes_the_cached_engine_of_a_replaced_file(tmp_path):
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    db = tmp_path / "s.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()  # caches an engine for the file
    assert any(str(db) in u for u in SqlAlchemyStore._engine_map)
    private.forget_engines(db)
    assert not any(str(db) in u for u in SqlAlchemyStore._engine_map)
