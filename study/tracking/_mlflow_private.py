"""Every use of MLflow's internal (undocumented) API, in one place, each with the reason no
public API serves. MLflow 3.17 is the version pyproject allows;
``tests/tracking/test_mlflow_private.py`` pins each behaviour on a real sqlite store."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

STORE_ERROR_LOGGER = "mlflow.store.db.utils"


def log_text_artifact(artifact_uri: str, tracking_uri: str, text: str, name: str) -> None:
    """Write ``text`` as the artifact ``name`` of the run whose artifact location is
    ``artifact_uri``.

    ``MlflowClient.log_text`` takes a run id and looks the run up first to find its artifact
    location: one request more per trial on a tracking server. The location comes with the run
    we created, and the repository behind it is only reachable through MLflow's internal
    registry of artifact repositories."""
    repo = get_artifact_repository(artifact_uri, tracking_uri=tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(text, encoding="utf-8")
        repo.log_artifact(str(path))


def quiet_store_errors() -> None:
    """Keep the SQL store from logging every SQLAlchemy error with its traceback.

    It logs even a lock that a retry waits out; an error that stops the sweep is its one line
    (its traceback with --debug). The logger is that of an internal module of MLflow."""
    logging.getLogger(STORE_ERROR_LOGGER).setLevel(logging.CRITICAL)


def head_revision() -> str:
    """The schema revision of a complete store of the installed MLflow.

    MLflow checks it only when it opens a store (and then fails with a traceback); the
    start-up inspects a store before opening it, to rebuild a half-built one."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


def create_schema(db: Path) -> None:
    """Create MLflow's whole tracking schema, at head revision, in the new sqlite file ``db``.

    ``SqlAlchemyStore`` migrates a new store in place and keeps its engine in a process-wide
    cache; the schema is built here in a file that is then renamed into place, so it must be
    built with an engine of our own that is closed before the rename."""
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables

    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()


def forget_engines(db: Path) -> None:
    """Close the engines this process keeps for the sqlite file ``db``.

    ``SqlAlchemyStore`` keeps one engine per URI for the life of the process; its pooled
    connections stay on the file they opened, so after a half-built store was replaced by a
    rebuilt one they would still read the old file. The cache is a private class attribute."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with SqlAlchemyStore._engine_map_lock:
        for uri in list(SqlAlchemyStore._engine_map):
            database = SqlAlchemyStore._engine_map[uri].url.database or ""
            if database and Path(database).resolve() == db.resolve():
                SqlAlchemyStore._engine_map.pop(uri).dispose()
