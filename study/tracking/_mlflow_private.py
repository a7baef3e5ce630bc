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
