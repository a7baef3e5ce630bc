"""A local sqlite MLflow store that a killed start-up cannot tear
(:mod:`study.tracking.sqlite_store`): built beside its place and renamed into it, a half-built
one rebuilt when it holds no run and refused with its fix when it does, on real stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from mlflow import MlflowClient

from study.errors import StorageError
from study.tracking._mlflow_private import create_schema, head_revision
from study.tracking.sqlite_store import ensure_store, inspect_store
from study.tracking.tracker import Tracker


def _half_migrated(db: Path, with_run: bool = False) -> None:
    """What a kill inside MLflow's in-place migration leaves (seen on MLflow 3.17): the whole
    schema but a revision short of head and a leftover ``_alembic_tmp_runs`` table."""
    create_schema(db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '2b4d017a5e9b'")
        conn.execute("CREATE TABLE _alembic_tmp_runs (run_uuid VARCHAR(32))")
    if with_run:
        with sqlite3.connect(db) as conn:
            conn.execute("INSERT INTO experiments (experiment_id, name, lifecycle_stage) "
                         "VALUES (1, 'e', 'active')")
            conn.execute("INSERT INTO runs (run_uuid, experiment_id, lifecycle_stage, status) "
                         "VALUES ('r1', 1, 'active', 'FINISHED')")


def test_a_new_store_is_built_whole_at_head_with_nothing_left_beside_it(tmp_path):
    db = tmp_path / "sub" / "mlflow.db"
    assert ensure_store(db) is None
    state = inspect_store(db)
    assert state.complete(head_revision()) and state.n_runs == 0
    assert sorted(p.name for p in db.parent.iterdir()) == [".mlflow.db.lock", "mlflow.db"]
    tracker = Tracker(f"sqlite:///{db}", "e")
    assert tracker.store_note is None
    assert MlflowClient(f"sqlite:///{db}").get_experiment(tracker.experiment_id).name == "e"


def test_a_half_migrated_store_without_runs_is_rebuilt_with_one_line(tmp_path):
    db = tmp_path / "mlflow.db"
    _half_migrated(db)
    with pytest.raises(Exception, match="out-of-date database schema"):  # what MLflow says
        MlflowClient(f"sqlite:///{db}").search_experiments()
    tracker = Tracker(f"sqlite:///{db}", "e")
    note = tracker.store_note
    assert note == (f"the MLflow store {db} was half-built by an interrupted start-up "
                    f"(leftover table _alembic_tmp_runs) and held no run: rebuilt it")
    assert inspect_store(db).complete(head_revision())
    assert inspect_store(db).temp_tables == []
    assert tracker.client.get_experiment(tracker.experiment_id).name == "e"


def test_a_store_torn_before_its_first_table_is_rebuilt(tmp_path):
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"")  # sqlite creates the file before the first table
    assert "schema revision none" in ensure_store(db)
    assert inspect_store(db).complete(head_revision())


def test_a_half_migrated_store_holding_runs_is_refused_untouched(tmp_path):
    db = tmp_path / "mlflow.db"
    _half_migrated(db, with_run=True)
    before = db.read_bytes()
    with pytest.raises(StorageError) as info:
        Tracker(f"sqlite:///{db}", "e")
    assert str(info.value) == (f"the MLflow store {db} is half-migrated (leftover table "
                               f"_alembic_tmp_runs) and holds 1 run(s): restore it from a "
                               f"backup, or move it away to start a new store, and run again")
    assert db.read_bytes() == before


def test_an_older_store_holding_runs_is_sent_to_mlflow_db_upgrade(tmp_path):
    db = tmp_path / "mlflow.db"
    _half_migrated(db, with_run=True)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE _alembic_tmp_runs")
    with pytest.raises(StorageError, match=r"is at schema revision 2b4d017a5e9b, not MLflow's "
                                           r"\w+, and holds 1 run\(s\): keep a copy, then run "
                                           r"`mlflow db upgrade sqlite:///"):
        ensure_store(db)


def test_other_files_are_refused_in_one_line(tmp_path):
    foreign = tmp_path / "optuna.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE studies (study_id INTEGER)")
    with pytest.raises(StorageError, match="is an sqlite database of something else"):
        ensure_store(foreign)
    text = tmp_path / "notes.db"
    text.write_text("just some notes\n" * 100)
    with pytest.raises(StorageError) as info:
        ensure_store(text)
    assert "cannot be read as an sqlite database" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_builder_killed_mid_build_leaves_a_file_the_next_start_removes(tmp_path):
    db = tmp_path / "mlflow.db"
    (tmp_path / ".mlflow.db.building-0123456789ab").write_bytes(b"SQLite format 3\0partial")
    assert ensure_store(db) is None
    assert not list(tmp_path.glob(".mlflow.db.building-*"))
    assert inspect_store(db).complete(head_revision())
