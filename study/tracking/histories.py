"""Trials' cost histories as logged (``history.csv`` of each trial's MLflow run), read without
MLflow from a local sqlite store whose artifacts are local files.

The report's cost figure draws these measured curves instead of re-running the trials, which
would load the engine's compiled code (about 0.6 s of a fresh ``study report``). Anything this
cannot read (a tracking server, remote artifacts, a missing or unreadable file) is None, and the
report re-runs that trial: the same numbers, the engine being deterministic.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from study.tracking.sqlite_store import run_artifact_uri
from study.tracking.uri import file_path, sqlite_path


class LocalHistories:
    """``reader(run_id)`` → (epochs, costs) of that run's ``history.csv``, or None."""

    def __init__(self, db: Path) -> None:
        self.db = db

    def __call__(self, run_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            folder = file_path(run_artifact_uri(self.db, run_id) or "")
            if folder is None:
                return None
            table = np.loadtxt(folder / "history.csv", delimiter=",", skiprows=1,
                               usecols=(0, 1), ndmin=2)
        except (sqlite3.Error, OSError, ValueError):
            return None
        return table[:, 0].astype(np.int64), table[:, 1]


def local_histories(uri: str) -> LocalHistories | None:
    """A reader of the trials' histories in the store ``uri``; None unless it is an existing
    local sqlite file."""
    db = sqlite_path(uri)
    return LocalHistories(db) if db is not None and db.exists() else None
