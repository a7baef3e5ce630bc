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

Damage inside. Unreadable lines followed by readable records (bytes overwritten, a torn line
glued to the next record) are never "repaired" by cutting the file, which would drop every
trial after them: the message gives ``study repair-journal PATH``
(:func:`repair_journal`), which keeps every readable record after a backup. A file with no
journal record at its start is refused as not an Optuna journal.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
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


HEAD_BYTES = 64 * 1024  # what is read of a file to tell whether it is an Optuna journal at all
TAIL_BYTES = 1 << 20  # what start-up reads of a journal's end, where a killed writer tears it
CREATE_TRIAL = 4  # JournalOperation.CREATE_TRIAL: the record whose position numbers trials


def _record(line: bytes) -> dict | None:
    """A journal record (a JSON object with an integer ``op_code`` and a ``worker_id``, as
    Optuna writes them), or None."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    if isinstance(rec, dict) and isinstance(rec.get("op_code"), int) and "worker_id" in rec:
        return rec
    return None


def _foreign(path: Path) -> bool:
    """True when the start of ``path`` holds no journal record: not an Optuna journal."""
    with path.open("rb") as f:
        head = f.read(HEAD_BYTES)
    lines = [ln for ln in head.split(b"\n")[:64] if ln.strip()]
    whole = lines if head.endswith(b"\n") or len(head) < HEAD_BYTES else lines[:-1]
    started = any(ln.startswith(b'{"op_code":') for ln in lines)  # a torn first record
    return bool(lines) and not started and not any(_record(ln) for ln in whole)


def _scan(path: Path, tail: int | None) -> tuple[list[int], int, int]:
    """Byte offsets of the unreadable lines of ``path`` (of its last ``tail`` bytes when given),
    the number of readable records after the first of them, and where the scan started."""
    size = path.stat().st_size
    bad: list[int] = []
    after = 0
    with path.open("rb") as f:
        start = 0
        if tail is not None and size > tail:
            f.seek(size - tail)
            f.readline()  # from the next whole line
            start = f.tell()
        offset = start
        for line in f:
            readable = line.endswith(b"\n") and (not line.strip() or _record(line) is not None)
            if not readable:
                bad.append(offset)
            elif bad and line.strip():
                after += 1
            offset += len(line)
    return bad, after, start


def journal_damage(path: Path, tail: int | None = None) -> str | None:
    """Explain what is wrong with the journal file ``path`` and how to repair it, or None.

    - not an Optuna journal at all (no journal record at its start): refused as such;
    - a torn last line (a writer killed mid-append; nothing readable follows it): safe to cut
      off, and the message gives the exact ``truncate``;
    - unreadable lines inside the file (bytes overwritten, a torn line glued to the next
      record): cutting would drop every complete trial after them, so the message gives
      :func:`repair_journal` instead, which keeps every readable record after a backup.

    ``tail`` limits the scan to the last bytes (start-up: where a killed writer tears the
    file); damage found there that is not at the end is diagnosed on the whole file."""
    if not path.is_file() or path.stat().st_size == 0:
        return None
    if _foreign(path):
        return (f"{path} is not an Optuna journal file (no journal record at its start): "
                f"give tracking.storage the path of a journal, or of a file to create")
    bad, after, start = _scan(path, tail)
    if bad and after and start > 0:
        bad, after, start = _scan(path, None)
    if not bad:
        return None
    if len(bad) == 1 and after == 0:
        return (f"the Optuna journal {path} has an unreadable line at byte {bad[0]} (a "
                f"writer was killed mid-write; the trial it was writing is lost): keep "
                f"a copy and cut the file there, e.g. `cp {path} {path}.bak && "
                f"truncate -s {bad[0]} {path}`, then run again")
    return (f"the Optuna journal {path} is damaged inside, not at its end: {len(bad)} "
            f"unreadable line(s), the first at byte {bad[0]}, with {after} readable records "
            f"after it (do not cut the file there: that drops them); repair it, keeping every "
            f"readable record, after a backup: `study repair-journal {path}`, "
            f"then run again")


# ── repair ──────────────────────────────────────────────────────────────────────────────────


_GLUED = re.compile(rb'(?<=\})(?=\{"op_code")')
_OP = re.compile(rb'^\{"op_code":(\d+),')
_STUDY = re.compile(rb'"study_id":(\d+)')


def _placeholder(piece: bytes, study_id: int) -> dict | None:
    """A stand-in for an unreadable trial-creating record: trials are numbered by the position
    of these records, so dropping one would renumber every later trial and attach the later
    records to the wrong ones. The stand-in creates a RUNNING trial that the records after it
    complete (or that the reaper fails and queues again); other unreadable records are
    dropped (None)."""
    op = _OP.match(piece)
    if op is None or int(op.group(1)) != CREATE_TRIAL:
        return None
    found = _STUDY.search(piece)
    return {"op_code": CREATE_TRIAL, "worker_id": "study-repair",
            "study_id": int(found.group(1)) if found else study_id,
            "datetime_start": datetime.now().isoformat(timespec="microseconds"),
            "user_attrs": {"repaired": True}}


@dataclass
class Repair:
    """What :func:`repair_journal` did."""

    path: Path
    backup: Path
    kept: int  # readable records, kept as they were
    replaced: int  # unreadable trial creations, replaced by a stand-in
    dropped: int  # unreadable lines that held no trial creation (or a torn last line)

    def text(self) -> str:
        return (f"repaired {self.path}: {self.kept} readable records kept, {self.replaced} "
                f"unreadable trial creation(s) replaced by a stand-in, {self.dropped} "
                f"unreadable line(s) dropped; the original is {self.backup}")


def repair_journal(path: Path) -> Repair:
    """Rewrite the journal ``path`` keeping every readable record, after copying it to a
    backup beside it (``<name>.bak-<time>``, never overwritten). Two records glued into one
    line are split; an unreadable trial creation becomes a stand-in (see :func:`_placeholder`);
    other unreadable lines are dropped. The journal's lock is held throughout, and the new file
    replaces the old one in one rename."""
    path = Path(path)
    if _foreign(path):
        raise StorageError(f"{path} is not an Optuna journal file: nothing to repair")
    lock = FlockJournalLock(str(path))
    lock.acquire()
    try:
        backup = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
        while backup.exists():
            backup = backup.with_name(backup.name + "x")
        shutil.copy2(path, backup)
        kept = replaced = dropped = 0
        study_id = 0
        tmp = path.with_name(f".{path.name}.repair-{uuid.uuid4().hex[:8]}")
        with path.open("rb") as src, tmp.open("wb") as out:
            for line in src:
                for piece in _GLUED.split(line.rstrip(b"\n")) if line.strip() else []:
                    rec = _record(piece) if line.endswith(b"\n") else None
                    if rec is None:
                        rec = _placeholder(piece, study_id) if line.endswith(b"\n") else None
                        replaced += rec is not None
                        dropped += rec is None
                        if rec is None:
                            continue
                    else:
                        kept += 1
                    study_id = int(rec.get("study_id", study_id))
                    out.write(json.dumps(rec, separators=(",", ":")).encode() + b"\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        lock.release()
    return Repair(path, backup, kept, replaced, dropped)


def check_journal(path: Path) -> None:
    """Refuse a journal with a torn or unreadable line near its end: appending to it would
    glue the next record onto the torn one, and later reads fail."""
    for _ in range(3):  # a live writer may be mid-append: give it a moment
        damage = journal_damage(path, tail=TAIL_BYTES)
        if damage is None:
            return
        time.sleep(0.2)
    raise StorageError(damage)
