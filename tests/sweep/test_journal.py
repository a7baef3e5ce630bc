"""The journal file (:mod:`study.sweep.journal`): its lock survives killed writers (flock released
by the kernel, a stale Optuna symlink lock removed with a warning), a torn last line is refused
with its exact repair, damage inside the file gets a repair that keeps every readable record,
and a file that is not a journal is refused as such."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
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
from study.sweep import storage
from study.sweep.journal import FlockJournalLock, journal_damage, repair_journal


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


def test_journal_damage_tells_a_torn_end_from_damage_inside(tmp_path):
    path = tmp_path / "o.journal"
    assert journal_damage(path) is None  # missing
    one, two = b'{"op_code":0,"worker_id":"w"}\n', b'{"op_code":2,"worker_id":"w"}\n'
    path.write_bytes(one + two)
    assert journal_damage(path) is None
    path.write_bytes(one + two + b'{"op_code":4,')
    assert f"truncate -s {len(one + two)} {path}" in journal_damage(path)
    path.write_bytes(one + b"not json\n" + two)
    damage = journal_damage(path)
    assert "damaged inside" in damage and "truncate" not in damage
    assert f"first at byte {len(one)}, with 1 readable records after it" in damage


def _complete_numbers(cfg) -> list[int]:
    return sorted(t.number for t in trials(cfg) if t.state.name == "COMPLETE")


def test_bytes_overwritten_inside_the_journal_never_get_advice_that_drops_trials(make_cfg):
    cfg = make_cfg(n_trials=12, batch_size=4)
    sweep(cfg)
    journal = Path(cfg.tracking.storage)
    before = _complete_numbers(cfg)
    data = bytearray(journal.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 5] = b"\x00#!@\x07"  # five bytes overwritten mid-file
    journal.write_bytes(bytes(data))
    more = make_cfg(overrides=["search.n_trials=14"])
    with pytest.raises(StorageError) as err:
        sweep(more)
    text = str(err.value)
    assert "damaged inside" in text and "truncate" not in text
    assert f"study repair-journal {journal}" in text
    done = subprocess.run([sys.executable, "-m", "study", "repair-journal", str(journal)],
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and done.stdout.startswith(f"repaired {journal}"), done.stderr
    backups = list(journal.parent.glob(f"{journal.name}.bak-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == bytes(data)
    assert journal_damage(journal) is None
    # at most the one trial whose record was hit lost its completion; every other one is kept
    assert len(set(before) - set(_complete_numbers(cfg))) <= 1
    assert sweep(more).n_complete == 14
    numbers = _complete_numbers(cfg)
    assert len(numbers) == 14 == len(set(numbers))


def test_two_records_glued_and_an_unreadable_trial_creation_keep_the_trial_numbers(tmp_path):
    good = [b'{"op_code":0,"worker_id":"w","study_name":"s","directions":[1]}',
            b'{"op_code":4,"worker_id":"w","study_id":0,"datetime_start":"2026-01-01T00:00:00"}',
            b'{"op_code":4,"worker_id":"w","study_id":0,"datetime_start":"2026-01-01T00:00:01"}',
            b'{"op_code":6,"worker_id":"w","trial_id":1,"state":1,"values":[0.5],'
            b'"datetime_complete":"2026-01-01T00:00:02"}']
    path = tmp_path / "o.journal"
    damaged = [good[0], good[1][:30] + b"\xff\xfe" + good[1][32:], good[2] + good[3]]
    path.write_bytes(b"\n".join(damaged) + b"\n")
    assert "damaged inside" in journal_damage(path)
    done = repair_journal(path)
    assert (done.kept, done.replaced, done.dropped) == (3, 1, 0)
    study = optuna.load_study(study_name="s", storage=storage.open_storage(str(path)))
    states = [(t.number, t.state.name) for t in study.get_trials()]
    assert states == [(0, "RUNNING"), (1, "COMPLETE")]  # trial 1 is still trial 1


def test_a_file_that_is_not_a_journal_is_refused_as_such(make_cfg):
    cfg = make_cfg(n_trials=2, batch_size=2)
    journal = Path(cfg.tracking.storage)
    journal.write_text("just some notes\nnot a journal\n")
    with pytest.raises(StorageError, match="is not an Optuna journal file") as err:
        sweep(cfg)
    assert "truncate" not in str(err.value)
    assert journal.read_text() == "just some notes\nnot a journal\n"
    with pytest.raises(StorageError, match="not an Optuna journal"):
        repair_journal(journal)
