"""A local sqlite MLflow store that a killed start-up cannot tear.

MLflow creates a new sqlite store by running some forty schema migrations in place; a Ctrl-C or
kill -9 among them leaves the file half-migrated (tables ``_alembic_tmp_*``, a revision short of
head), and every later open fails with ``table _alembic_tmp_runs already exists``. Here the
schema is built in a hidden file beside the store and renamed into place (atomic on one
filesystem), under a file lock so that processes starting together on a new store wait for one
builder. At start-up a store is inspected (read-only, stdlib ``sqlite3``) before MLflow opens it:

==================================  ===================================================
found                               done
==================================  ===================================================
no file                             built and renamed into place
complete, at MLflow's head          opened
half-built (temp tables, an older   rebuilt when it holds no run, with one line saying so;
revision or none) and no run        refused naming the fix when it holds runs
an older revision holding runs      refused: ``mlflow db upgrade`` after a backup
not an MLflow store                 refused
==================================  ===================================================

Files ``.<store>.building-*`` left by a builder that was killed are removed under the lock.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from study.errors import StorageError

LOCK_SECONDS = 120  # building a store takes seconds; waiting for one past this is a fault
# tables every complete MLflow store has; a store holding any of them was made by MLflow
MLFLOW_TABLES = frozenset({"experiments", "runs", "metrics", "params", "tags",
                           "alembic_version"})


@dataclass(frozen=True)
class StoreState:
    """What an sqlite MLflow store file holds, read without MLflow."""

    exists: bool
    tables: frozenset[str]
    revision: str | None
    n_runs: int

    @property
    def temp_tables(self) -> list[str]:
        return sorted(t for t in self.tables if t.startswith("_alembic_tmp_"))

    def complete(self, head: str) -> bool:
        return self.revision == head and not self.temp_tables

    @property
    def is_mlflow(self) -> bool:
        return not self.tables or bool(self.tables & MLFLOW_TABLES)


def lock_path(db: Path) -> Path:
    return db.parent / f".{db.name}.lock"


@contextmanager
def store_lock(db: Path) -> Iterator[None]:
    """The lock under which a store is built, checked or rebuilt (one per store file)."""
    with FileLock(str(lock_path(db)), timeout=LOCK_SECONDS):
        yield


def inspect_store(db: Path) -> StoreState:
    """Tables, schema revision and number of runs of ``db`` (read-only)."""
    if not db.exists():
        return StoreState(False, frozenset(), None, 0)
    try:
        # read-write (never create): a hot journal left by a killed writer is rolled back
        # here, as any later open would
        with closing(sqlite3.connect(f"{db.as_uri()}?mode=rw", uri=True, timeout=30)) as conn:
            tables = frozenset(r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"))
            revision = None
            if "alembic_version" in tables:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = row[0] if row else None
            n_runs = 0
            if "runs" in tables:
                n_runs = int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    except sqlite3.DatabaseError as exc:  # not a database, or a damaged one
        raise StorageError(f"the MLflow store {db} cannot be read as an sqlite database "
                           f"({exc}); move it away (or point tracking.mlflow_uri elsewhere) "
                           f"and run again") from exc
    return StoreState(True, tables, revision, n_runs)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_leftovers(db: Path) -> None:
    """Half-built files of builders that were killed (the caller holds the store lock)."""
    for stale in db.parent.glob(f".{db.name}.building-*"):
        stale.unlink(missing_ok=True)


def build_atomically(db: Path, create: Callable[[Path], None]) -> None:
    """Run ``create`` on a hidden new file beside ``db``, then rename that file to ``db``
    (the caller holds the store lock): ``db`` is whole or absent, whenever a kill lands."""
    tmp = db.with_name(f".{db.name}.building-{uuid.uuid4().hex[:12]}")
    try:
        create(tmp)
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        for suffix in ("-journal", "-wal", "-shm"):  # of a half-built file: never to replay
            db.with_name(db.name + suffix).unlink(missing_ok=True)
        os.replace(tmp, db)
        _fsync_dir(db.parent)
    finally:
        tmp.unlink(missing_ok=True)


def build_new(db: Path, create: Callable[[Path], None]) -> bool:
    """Build ``db`` with ``create`` (atomically, under its lock) unless it exists; True when
    this call built it."""
    with store_lock(db):
        _remove_leftovers(db)
        if db.exists():
            return False
        build_atomically(db, create)
        return True


def _refusal(db: Path, state: StoreState, head: str) -> str | None:
    """Why ``state`` cannot be opened or rebuilt, as one line (None if it can)."""
    if not state.is_mlflow:
        return (f"the MLflow store {db} is an sqlite database of something else (tables "
                f"{', '.join(sorted(state.tables)[:5])}); point tracking.mlflow_uri elsewhere "
                f"or move it away")
    if state.complete(head) or state.n_runs == 0:
        return None
    if state.temp_tables:
        return (f"the MLflow store {db} is half-migrated (leftover table "
                f"{state.temp_tables[0]}) and holds {state.n_runs} run(s): restore it from a "
                f"backup, or move it away to start a new store, and run again")
    return (f"the MLflow store {db} is at schema revision {state.revision}, not MLflow's "
            f"{head}, and holds {state.n_runs} run(s): keep a copy, then run `mlflow db upgrade "
            f"sqlite:///{db}`, and run again")


def ensure_store(db: Path) -> str | None:
    """Make ``db`` a complete MLflow store at head revision, or refuse (StorageError, one
    line). Returns one line when a half-built store was rebuilt, else None."""
    from study.tracking._mlflow_private import head_revision

    head = head_revision()
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the MLflow store folder {db.parent}: "
                           f"{exc.strerror or exc}") from exc
    state = inspect_store(db)
    if state.exists and state.complete(head):
        return None
    with store_lock(db):
        _remove_leftovers(db)
        state = inspect_store(db)  # another process may have built it meanwhile
        if state.exists and state.complete(head):
            return None
        refusal = _refusal(db, state, head)
        if refusal is not None:
            raise StorageError(refusal)
        from study.tracking._mlflow_private import create_schema, forget_engines

        build_atomically(db, create_schema)
        forget_engines(db)
    if not state.exists:
        return None
    what = (f"leftover table {state.temp_tables[0]}" if state.temp_tables
            else f"schema revision {state.revision or 'none'} of {head}")
    return (f"the MLflow store {db} was half-built by an interrupted start-up ({what}) and "
            f"held no run: rebuilt it")



# The latest active run tagged study.role = sweep of an active experiment: what
# MlflowClient.search_runs(..., "tags.`study.role` = 'sweep'", order_by start_time DESC) finds.
_SWEEP_RUN = """
SELECT r.run_uuid, r.artifact_uri FROM runs r
JOIN experiments e ON e.experiment_id = r.experiment_id
JOIN tags t ON t.run_uuid = r.run_uuid
WHERE e.name = ? AND e.lifecycle_stage = 'active' AND r.lifecycle_stage = 'active'
  AND t.key = 'study.role' AND t.value = 'sweep'
ORDER BY r.start_time DESC LIMIT 1
"""


def _read_row(db: Path, query: str, *args: str) -> tuple | None:
    """The first row of ``query`` on the store ``db``, opened read-only with sqlite alone
    (importing MLflow and opening its store takes ~2 s). Raises sqlite3.Error on a store it
    cannot read (not MLflow's schema, locked past 5 s), for the caller to ask MLflow instead."""
    with closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=5)) as conn:
        return conn.execute(query, args).fetchone()


def sweep_run_location(db: Path, experiment: str) -> tuple[str, str] | None:
    """(run id, artifact URI) of ``experiment``'s latest parent run in the store ``db``; None
    when there is no such run (see :func:`_read_row` for what raises)."""
    row = _read_row(db, _SWEEP_RUN, experiment)
    return None if row is None else (str(row[0]), str(row[1]))


def run_artifact_uri(db: Path, run_id: str) -> str | None:
    """The artifact URI of the run ``run_id`` in the store ``db``; None when there is none."""
    row = _read_row(db, "SELECT artifact_uri FROM runs WHERE run_uuid = ?", run_id)
    return None if row is None else str(row[0])
