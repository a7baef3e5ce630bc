"""Opening and checking Optuna storages (:mod:`study.sweep.storage`), and the stores under stress,
for real: sqlite files locked by another process, read-only and full filesystems (a read-only
bind mount and a size-limited tmpfs where this machine allows mounting), unreachable servers."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from stores import (
    check_exact,
    check_ran_again,
    complete_of,
    config,
    finish,
    n_complete,
    raw_config,
    start,
    study_cmd,
    sweep,
    wait_for,
    write_study,
)

from study.cli import main
from study.core import engine
from study.errors import StorageError
from study.sweep import storage, summary
from study.tracking import runlog

LOCKER = """\
import sqlite3, sys, time
conns = [sqlite3.connect(p, timeout=60, isolation_level=None) for p in sys.argv[2:]]
for c in conns:
    c.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[1]))
for c in conns:
    c.execute("ROLLBACK")
print("released", flush=True)
"""


def hold_locks(seconds: float, *files: Path) -> subprocess.Popen:
    """Another process holding BEGIN EXCLUSIVE on sqlite ``files`` for ``seconds``; returns
    once it holds them."""
    proc = subprocess.Popen([sys.executable, "-c", LOCKER, str(seconds), *map(str, files)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.slow
def test_sqlite_stores_locked_for_8_s_by_another_process_lose_no_trial(folder):
    path = write_study(folder, n_trials=60, batch_size=5, epochs=40)
    sets = ["--set", f"tracking.storage=sqlite:///{folder / 'optuna.db'}"]
    cfg = config(path, *sets[1::2])
    sweep_proc = start(study_cmd(path, *sets), folder)
    wait_for(lambda: n_complete(cfg) >= 5)
    locker = hold_locks(8, folder / "mlflow.db", folder / "optuna.db")
    assert locker.stdout.readline().strip() == "released"
    assert sweep_proc.poll() is None  # the sweep waited out the locks
    code, _, err = finish(sweep_proc)
    assert code == 0, err
    everything, _ = check_exact(cfg, 60)
    assert not [t for t in everything if t.state == TrialState.FAIL]


@pytest.mark.slow
def test_a_lock_held_past_the_limit_is_one_clear_line_and_the_trial_runs_again(folder):
    # enough trials that the sweep is still running when the lock is taken, on a loaded machine
    path = write_study(folder, n_trials=150, batch_size=5, epochs=40)
    url = f"sqlite:///{folder / 'optuna.db'}"
    cfg = config(path, f"tracking.storage={url}")
    sweep_proc = start(study_cmd(path, "--set", f"tracking.storage={url}"), folder,
                       STUDY_SQLITE_TIMEOUT="2")
    wait_for(lambda: n_complete(cfg) >= 5)
    locker = hold_locks(8, folder / "optuna.db")
    assert sweep_proc.poll() is None, "the sweep ended before the lock was taken"
    code, _, err = finish(sweep_proc)
    locker.wait()
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"study: error: the Optuna storage {url} "
                                                   "failed: "), err
    assert "database is locked" in err and "run again to resume" in err
    code, _, err = finish(start(study_cmd(path, "--set", f"tracking.storage={url}"), folder))
    assert code == 0, err
    everything, _ = check_exact(cfg, 150)
    # trials in flight when the lock won (if it fell between batches there are none) were
    # failed and ran again with what they had drawn (the lock may fall between two suggestions)
    check_ran_again(everything)


@pytest.mark.slow
def test_an_mlflow_store_locked_past_the_retries_is_one_clear_line_and_nothing_is_lost(
        folder, capfd, monkeypatch):
    path = write_study(folder, n_trials=30, batch_size=5, epochs=40)
    monkeypatch.setattr(runlog, "RETRY_DELAYS", ())  # one attempt: MLflow's own 20 s wait
    real, lockers = engine.run, []

    def locking_run(problem, trials, halt=None):  # the store locks while the third batch runs
        if len(lockers) < 3:
            lockers.append(hold_locks(25, folder / "mlflow.db") if len(lockers) == 2 else None)
        return real(problem, trials, halt)

    monkeypatch.setattr(engine, "run", locking_run)
    assert main(["run", str(path), "--no-progress", "--no-report"]) == 2
    err = capfd.readouterr().err
    url = f"sqlite:///{folder / 'mlflow.db'}"
    assert err.count("\n") == 1 and err.startswith(f"study: error: the MLflow store {url} "), err
    assert "database is locked" in err and "run again to resume" in err
    lockers[2].wait()
    monkeypatch.undo()
    monkeypatch.chdir(folder)
    assert main(["run", str(path), "--no-progress", "--no-report"]) == 0
    assert capfd.readouterr().err == ""
    everything, _ = check_exact(config(path), 30)
    check_ran_again(everything)


def mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


def first_sweep(folder: Path, store: Path) -> tuple[Path, list[str]]:
    """A finished 4-trial sweep whose stores live in ``store``."""
    path = write_study(folder, n_trials=4, batch_size=4, epochs=20)
    sets = ["--set", f"tracking.storage={store / 'optuna.journal'}",
            "--set", f"tracking.mlflow_uri=sqlite:///{store / 'mlflow.db'}"]
    assert main(["run", str(path), "--no-progress", "--no-report", *sets]) == 0
    return path, sets


def assert_refused_and_readable(capsys, folder: Path, store: Path, path: Path,
                                sets: list[str], reason: str) -> None:
    """A resume is one line naming the store and the reason, exit 2, nothing written; the
    complete trials can still be read."""
    capsys.readouterr()
    before = sorted(p.name for p in folder.iterdir()), sorted(p.name for p in store.iterdir())
    code = main(["run", str(path), "--no-progress", "--no-report", *sets,
                 "--set", "search.n_trials=6"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"study: error: cannot write the Optuna storage {store}"), err
    assert reason in err
    after = sorted(p.name for p in folder.iterdir()), sorted(p.name for p in store.iterdir())
    assert after == before
    frame = summary.trials_frame(config(path, *sets[1::2]))
    assert len(frame) == 4 and frame["mlflow_run_id"].notna().all()


def test_a_read_only_store_is_refused_at_start_up_and_its_trials_stay_readable(folder, capsys):
    store = folder / "store"
    path, sets = first_sweep(folder, store)
    if not (mount("--bind", str(store), str(store))):
        pytest.skip("this machine does not allow a bind mount (needs CAP_SYS_ADMIN)")
    try:
        assert mount("-o", "remount,bind,ro", str(store))
        assert_refused_and_readable(capsys, folder, store, path, sets, "Read-only file system")
    finally:
        subprocess.run(["umount", "--lazy", str(store)], check=True)


def test_a_full_store_is_refused_at_start_up_and_its_trials_stay_readable(folder, capsys):
    store = folder / "store"
    store.mkdir()
    if not mount("-t", "tmpfs", "-o", "size=24m", "tmpfs", str(store)):
        pytest.skip("this machine does not allow mounting a tmpfs (needs CAP_SYS_ADMIN)")
    try:
        path, sets = first_sweep(folder, store)
        with (store / "filler").open("wb") as f:  # fill the filesystem to the last byte
            try:
                while True:
                    f.write(b"\0" * (1 << 16))
                    f.flush()
            except OSError:
                pass
        assert os.statvfs(store).f_bavail == 0
        assert_refused_and_readable(capsys, folder, store, path, sets,
                                    "No space left on device")
    finally:
        subprocess.run(["umount", "--lazy", str(store)], check=True)


def test_a_file_where_the_store_folder_should_be_is_refused(folder, capsys):
    path = write_study(folder, n_trials=4, batch_size=4, epochs=20)
    (folder / "taken").write_text("not a folder")
    code = main(["run", str(path), "--no-progress", "--set",
                 f"tracking.mlflow_uri=sqlite:///{folder / 'taken' / 'mlflow.db'}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"cannot write the MLflow store sqlite:///{folder}/taken/mlflow.db in " \
           f"{folder}/taken: it is a file, not a folder" in err
    assert sorted(p.name for p in folder.iterdir()) == ["line.csv", "study.yaml", "taken"]


def test_an_unreachable_postgresql_storage_is_one_line():
    with pytest.raises(StorageError) as info:
        storage.open_storage("postgresql://nobody@127.0.0.1:9/none")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("cannot open the Optuna storage postgresql://nobody@127.0.0.1:9/"
                              "none: OperationalError")


def test_changed_config_is_refused_naming_the_field_and_fresh_replaces_it(make_cfg):
    sweep(make_cfg(n_trials=4))
    changed = raw_config(n_trials=4)
    changed["search"]["space"]["lr"]["high"] = 1.0
    with pytest.raises(StorageError, match=r"search\.space\.lr\.high: 2\.0 → 1\.0"):
        sweep(make_cfg(changed))
    summary = sweep(make_cfg(changed), fresh=True)
    assert summary.n_new == 4 and any("replaced" in n for n in summary.notes)
    assert all(t.params["lr"] <= 1.0 for t in complete_of(make_cfg(changed)))


def test_sqlite_storage_is_accepted(make_cfg, tmp_path):
    raw = raw_config(n_trials=3)
    raw["tracking"] = {"storage": f"sqlite:///{tmp_path / 'optuna.db'}"}
    cfg = make_cfg(raw)
    assert sweep(cfg).n_complete == 3
    store = storage.open_storage(cfg.tracking.storage)
    assert isinstance(store, optuna.storages.RDBStorage)


def test_errors_raised_inside_the_optuna_storage_are_recognised(tmp_path):
    store = storage.open_storage(str(tmp_path / "o.journal"))
    with pytest.raises(KeyError) as info:
        store.get_trial(12345)
    assert storage.raised_in_storage(info.value)
    with pytest.raises(KeyError) as info:
        {}["x"]
    assert not storage.raised_in_storage(info.value)


def test_changed_fields_name_each_dotted_key_with_both_values():
    old = {"search": {"space": {"lr": {"high": 2.0}}, "seed": 1}, "name": "a"}
    new = {"search": {"space": {"lr": {"high": 1.0, "log": True}}, "seed": 1}, "name": "a"}
    assert storage.changed_fields(old, new) == ["search.space.lr.high: 2.0 → 1.0",
                                                "search.space.lr.log: '(absent)' → True"]
    assert storage.changed_fields(old, old) == []


def test_one_line_goes_to_the_cause_of_a_storage_internal_error():
    try:
        try:
            raise OSError("database is locked\n[SQL: UPDATE …]")
        except OSError as cause:
            raise optuna.exceptions.StorageInternalError("invalid data in the commit") from cause
    except optuna.exceptions.StorageInternalError as exc:
        assert storage.one_line(exc) == "OSError: database is locked"
    assert storage.one_line(ValueError("")) == "ValueError: no message"


def test_only_a_schema_collision_is_retried_when_an_rdb_storage_is_opened(tmp_path):
    # what PostgreSQL and sqlite say when two processes create one table or type at once
    assert storage._schema_collision(RuntimeError('(psycopg.errors.UniqueViolation) duplicate '
                                                  'key value violates unique constraint'))
    assert storage._schema_collision(RuntimeError("table studies already exists"))
    assert not storage._schema_collision(RuntimeError("could not translate host name"))
    store = storage.open_storage(f"sqlite:///{tmp_path / 'o.db'}")
    assert isinstance(store, optuna.storages.RDBStorage)


def test_a_new_sqlite_storage_is_built_beside_its_place_and_renamed_into_it(tmp_path):
    db = tmp_path / "optuna.db"
    leftover = tmp_path / ".optuna.db.building-0123456789ab"  # of a creator killed mid-build
    leftover.write_bytes(b"SQLite format 3\0partial")
    store = storage.open_storage(f"sqlite:///{db}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".optuna.db.lock", "optuna.db"]
    study = optuna.create_study(storage=store, study_name="s")
    study.optimize(lambda t: t.suggest_float("a", 0.0, 1.0), n_trials=2)
    with sqlite3.connect(db) as conn:  # the schema is whole: Optuna's version is recorded
        (version,) = conn.execute("SELECT schema_version FROM version_info").fetchone()
    assert version > 0
    again = storage.open_storage(f"sqlite:///{db}")  # an existing file is opened as it is
    assert len(optuna.load_study(study_name="s", storage=again).trials) == 2
