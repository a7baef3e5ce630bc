"""The Optuna journal file, the default storage: open it with a lock that a killed writer
cannot leave behind, and explain a torn last line with its exact repair.

Lock. Optuna's journal lock is a symlink ``<journal>.lock``; a writer killed while holding it
(kill -9 lands inside a write now and then) leaves it, and every other process then waits
30 s before breaking it. Here a writer first takes a ``filelock.UnixFileLock`` (``flock``) on a
hidden ``.<journal>.flock`` beside the journal — the kernel releases it when its holder dies —
and then Optuna's symlink lock, for any plain-Optuna writer of the same file. Holding the flock,
a symlink lock that stays for ``STALE_LOCK_SECONDS`` was left by a killed writer: it is removed
with a warning and the write proceeds.

Torn line. A writer killed mid-append leaves a partial last line: the next append would be
glued to it and later reads fail. Such a journal is refused (:func:`check_journal`) with the
command that cuts it back to its last whole line.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path

import optuna
from filelock import UnixFileLock
from optuna.storages.journal import JournalFileBackend

from study.errors import StorageError
from study.sweep._optuna_private import JournalFileLock, symlink_lock_path

STALE_LOCK_SECONDS = 2.0  # a plain-Optuna writer holds the symlink lock for milliseconds
# a journal write holds the lock for about one fsync: a waiter looks again this often
POLL_SECONDS = 0.002


class FlockJournalLock(JournalFileLock):
    """Optuna's journal lock interface (``acquire``, ``release``): a flock on a hidden file
    beside the journal, then Optuna's symlink lock (see the module docstring)."""

    def __init__(self, journal: str) -> None:
        path = Path(journal)
        # thread-local (filelock's default): two threads of one process exclude each other too
        self._flock = UnixFileLock(str(path.with_name(f".{path.name}.flock")))
        self._target = journal
        self._symlink = symlink_lock_path(journal)

    def acquire(self) -> bool:
        self._flock.acquire(poll_interval=POLL_SECONDS)
        try:
            self._take_symlink()
        except BaseException:
            self._flock.release()
            raise
        return True

    def _take_symlink(self) -> None:
        deadline = time.monotonic() + STALE_LOCK_SECONDS
        pause = 0.001
        while True:
            try:
                os.symlink(self._target, self._symlink)
                return
            except FileExistsError:
                if time.monotonic() > deadline:
                    print(f"study: warning: removed the stale journal lock {self._symlink} "
                          f"(left by a writer that was killed)", file=sys.stderr)
                    _unlink(self._symlink)
                    deadline = time.monotonic() + STALE_LOCK_SECONDS
                    continue
                time.sleep(pause)
                pause = min(pause * 2, 0.05)

    def release(self) -> None:
        try:
            _unlink(self._symlink)
        finally:
            self._flock.release()


def _unlink(link: str) -> None:
    """Remove a symlink lock by renaming it first (as Optuna does), so that two removers never
    delete a lock taken in between."""
    moved = f"{link}{uuid.uuid4().hex}.rename"
    try:
        os.rename(link, moved)
    except FileNotFoundError:
        return
    os.unlink(moved)


def open_journal(path: Path) -> optuna.storages.JournalStorage:
    """The journal storage on ``path`` (created if missing), refused if its end is torn."""
    path.parent.mkdir(parents=True, exist_ok=True)
    check_journal(path)
    backend = JournalFileBackend(str(path), lock_obj=FlockJournalLock(str(path)))
    return optuna.storages.JournalStorage(backend)


def journal_damage(path: Path, tail: int = 1 << 20) -> str | None:
    """Explain a journal file whose last ``tail`` bytes hold a torn or unreadable line (where
    a killed writer leaves one), and how to repair it."""
    if not path.is_file() or path.stat().st_size == 0:
        return None
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(max(size - tail, 0))
        data = f.read()
    start = 0 if size <= tail else data.index(b"\n") + 1
    offset = size - len(data) + start
    for line in data[start:].split(b"\n"):
        if line.strip():
            try:
                json.loads(line)
            except ValueError:
                return (f"the Optuna journal {path} has an unreadable line at byte {offset} (a "
                        f"writer was killed mid-write; the trial it was writing is lost): keep "
                        f"a copy and cut the file there, e.g. `cp {path} {path}.bak && "
                        f"truncate -s {offset} {path}`, then run again")
        offset += len(line) + 1
    return None


def check_journal(path: Path) -> None:
    """Refuse a journal with a torn or unreadable line near its end: appending to it would
    glue the next record onto the torn one, and later reads fail."""
    for _ in range(3):  # a live writer may be mid-append: give it a moment
        damage = journal_damage(path)
        if damage is None:
            return
        time.sleep(0.2)
    raise StorageError(damage)
