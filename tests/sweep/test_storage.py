"""Stores under stress, for real: sqlite files locked by another process, a stale journal lock,
read-only and full filesystems (a read-only bind mount and a size-limited tmpfs where this
machine allows mounting), and the reaper of dead workers' trials."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from stores import (
    check_exact,
    check_ran_again,
    config,
    finish,
    n_complete,
    start,
    study_cmd,
    trials,
    wait_for,
    write_study,
)

from study.cli import main
from study.config.constraints import GRACE_FACTOR
from study.core import engine
from study.errors import StorageError
from study.sweep import reaper, storage, summary
from study.tracking import runlog
from study.tracking import tracker as tracking


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


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
    path = write_study(folder, n_trials=40, batch_size=5, epochs=40)
    url = f"sqlite:///{folder / 'optuna.db'}"
    cfg = config(path, f"tracking.storage={url}")
    sweep_proc = start(study_cmd(path, "--set", f"tracking.storage={url}"), folder,
                       STUDY_SQLITE_TIMEOUT="2")
    wait_for(lambda: n_complete(cfg) >= 5)
    locker = hold_locks(8, folder / "optuna.db")
    code, _, err = finish(sweep_proc)
    locker.wait()
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"study: error: the Optuna storage {url} "
                                                   "failed: "), err
    assert "database is locked" in err and "run again to resume" in err
    code, _, err = finish(start(study_cmd(path, "--set", f"tracking.storage={url}"), folder))
    assert code == 0, err
    everything, _ = check_exact(cfg, 40)
    # trials in flight when the lock won (if it fell between batches there are none) were
    # failed and ran again with what they had drawn (the lock may fall between two suggestions)
    check_ran_again(everything)


@pytest.mark.slow
def test_an_mlflow_store_locked_past_the_retries_is_one_clear_line_and_nothing_is_lost(
        folder, capfd, monkeypatch):
    path = write_study(folder, n_trials=30, batch_size=5, epochs=40)
    monkeypatch.setattr(runlog, "RETRY_DELAYS", ())  # one attempt: MLflow's own 20 s wait
    real, lockers = engine.run, []

    def locking_run(problem, trials):  # the store locks while the third batch runs
        if len(lockers) < 3:
            lockers.append(hold_locks(25, folder / "mlflow.db") if len(lockers) == 2 else None)
        return real(problem, trials)

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


def test_a_stale_journal_lock_is_removed_with_a_warning(folder, capfd):
    path = write_study(folder, n_trials=4, batch_size=4, epochs=20)
    journal = folder / "optuna.journal"
    journal.touch()
    os.symlink(journal, f"{journal}.lock")  # what a writer killed inside a write leaves
    started = time.monotonic()
    assert main(["run", str(path), "--no-progress", "--no-report"]) == 0
    assert time.monotonic() - started < 25  # Optuna's own lock would wait 30 s
    err = capfd.readouterr().err
    assert f"study: warning: removed the stale journal lock {journal}.lock" in err
    assert len(trials(config(path))) == 4


# ── read-only and full stores ───────────────────────────────────────────────────────────────


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


# ── the reaper ──────────────────────────────────────────────────────────────────────────────


def dead_worker() -> str:
    pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return f"{tracking.worker_host()}:{pid}"


def test_two_processes_reaping_one_dead_trial_queue_it_once(folder):
    journal = str(folder / "o.journal")
    first = optuna.create_study(storage=storage.open_storage(journal), study_name="s")
    stale = first.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    stale.set_user_attr("worker", dead_worker())
    second = optuna.load_study(study_name="s", storage=storage.open_storage(journal))
    seen = second.get_trials(states=(TrialState.RUNNING,))  # both see it RUNNING
    assert [t.number for t in reaper.reap_stale(first)] == [stale.number]
    assert reaper.fail_trial(second, seen[0]) is False  # the storage refuses a second FAIL
    assert reaper.reap_stale(second) == []
    waiting = second.get_trials(states=(TrialState.WAITING,))
    assert [(t.system_attrs["fixed_params"], t.user_attrs["retry_of"]) for t in waiting] == [
        (stale.params, 0)]


def test_a_trial_naming_no_worker_for_long_is_reaped(folder, monkeypatch):
    study = optuna.create_study(storage=storage.open_storage(str(folder / "o.journal")))
    fresh = study.ask()  # asked a moment ago by a live process that names itself next
    assert reaper.reap_stale(study) == []
    monkeypatch.setattr(reaper, "ORPHAN_SECONDS", 0.0)
    assert [t.number for t in reaper.reap_stale(study)] == [fresh.number]


@pytest.mark.slow
def test_heartbeats_keep_live_trials_and_fail_silent_ones_on_sqlite(folder):
    url = f"sqlite:///{folder / 'o.db'}"
    study = optuna.create_study(storage=storage.open_storage(url, heartbeat=1), study_name="s")
    with reaper.Heartbeat(study) as beat:
        live = study.ask()
        beat.add(live._trial_id)
        live.set_user_attr("worker", "elsewhere:1")
        silent = study.ask()
        study._storage.record_heartbeat(silent._trial_id)  # then its worker dies
        silent.set_user_attr("worker", "elsewhere:2")
        time.sleep(GRACE_FACTOR * 1 + 1.5)
        reaped = reaper.reap_stale(study)
    assert [t.number for t in reaped] == [silent.number]
    states = {t.number: t.state for t in study.get_trials()}
    assert states[live.number] == TrialState.RUNNING and states[silent.number] == TrialState.FAIL
    (again,) = study.get_trials(states=(TrialState.WAITING,))
    assert again.user_attrs["retry_of"] == silent.number


def test_an_unreachable_postgresql_storage_is_one_line():
    with pytest.raises(StorageError) as info:
        storage.open_storage("postgresql://nobody@127.0.0.1:9/none")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("cannot open the Optuna storage postgresql://nobody@127.0.0.1:9/"
                              "none: OperationalError")


def test_worker_host_names_the_boot_and_pid_namespace_and_can_be_set(monkeypatch):
    host = tracking.worker_host()
    assert host.startswith(__import__("socket").gethostname())
    if Path("/proc/self/ns/pid").exists():
        assert host.endswith(f".{os.stat('/proc/self/ns/pid').st_ino}")
    monkeypatch.setenv("STUDY_WORKER_HOST", "node-7")
    assert tracking.worker_id() == f"node-7:{os.getpid()}"
    assert not tracking.worker_is_dead(f"{host}:1")  # another host's pid 1 is never judged



def test_a_worker_that_exited_but_was_not_collected_is_dead():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # a zombie still answers os.kill(pid, 0); its trials must be reaped all the same
    assert tracking.worker_is_dead(f"{tracking.worker_host()}:{child.pid}")
    child.wait()
