"""The journal file (:mod:`study.sweep.journal`): its lock survives killed writers (flock released
by the kernel, a stale Optuna symlink lock removed with a warning) and a torn last line is
refused with its exact repair."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from filelock import Timeout, UnixFileLock
from stores import (
    ROOT,
    config,
    sweep,
    trials,
    write_study,
)

from study.cli import main
from study.errors import StorageError
from study.sweep.journal import FlockJournalLock, journal_damage


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


def test_a_torn_journal_line_is_explained_with_its_repair(make_cfg):
    cfg = make_cfg(n_trials=3, batch_size=3)
    sweep(cfg)
    journal = Path(cfg.tracking.storage)
    size = journal.stat().st_size
    with journal.open("ab") as f:
        f.write(b'{"op_code": 6, "worker_id": "w", "trial_id": 2, "st')  # killed mid-write
    more = make_cfg(overrides=["search.n_trials=5"])
    with pytest.raises(StorageError, match=rf"truncate -s {size} {journal}"):
        sweep(more)
    os.truncate(journal, size)  # the repair the message gives
    assert sweep(more).n_complete == 5


HOLDER = """\
import sys, time
from study.sweep.journal import FlockJournalLock
lock = FlockJournalLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_writer_killed_while_holding_the_lock_does_not_keep_it(tmp_path):
    journal = tmp_path / "o.journal"
    journal.touch()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(journal)],
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        flock = UnixFileLock(str(tmp_path / ".o.journal.flock"))
        with pytest.raises(Timeout):  # held: by the live writer
            flock.acquire(timeout=0.2)
    finally:
        holder.kill()
        holder.wait()
    started = time.monotonic()
    lock = FlockJournalLock(str(journal))
    assert lock.acquire()  # the kernel released the flock; the symlink it left is stale
    assert time.monotonic() - started < 10
    lock.release()
    assert not os.path.lexists(f"{journal}.lock")


def test_two_locks_of_one_process_exclude_each_other(tmp_path):
    journal = str(tmp_path / "o.journal")
    first, second = FlockJournalLock(journal), FlockJournalLock(journal)
    first.acquire()
    got = []
    waiter = threading.Thread(target=lambda: got.append(second.acquire()))
    waiter.start()
    waiter.join(0.3)
    assert got == []  # still waiting
    first.release()
    waiter.join(5)
    assert got == [True]
    second.release()


def test_journal_damage_finds_only_a_torn_or_unreadable_line(tmp_path):
    path = tmp_path / "o.journal"
    assert journal_damage(path) is None  # missing
    path.write_bytes(b'{"a": 1}\n{"b": 2}\n')
    assert journal_damage(path) is None
    path.write_bytes(b'{"a": 1}\n{"b": 2}\n{"c": ')
    assert f"truncate -s 18 {path}" in journal_damage(path)
    path.write_bytes(b'{"a": 1}\nnot json\n{"c": 3}\n')
    assert f"truncate -s 9 {path}" in journal_damage(path)
