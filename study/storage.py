"""The Optuna storage: open it, check the stored study against the config, explain damage, and
fail and re-queue the trials of dead workers.

Storages. A path (the default ``optuna.journal``) is a ``JournalStorage`` on a local (or shared)
file; ``sqlite:///…`` and any other database URL (``postgresql://…``) is an ``RDBStorage``. An
sqlite storage waits ``STUDY_SQLITE_TIMEOUT`` seconds (default 30) for a lock, so a backup or a
reader holding it for seconds does not fail a trial; past that the error is a one-line
:class:`StorageError`, never Optuna's bare ``AssertionError``.

The study stores the config hash and fingerprint; resuming with another config is refused
naming the changed fields, unless ``fresh=True``. A journal with a torn last line (a writer
killed mid-write) is refused with the exact command that repairs it.

Dead workers. A killed worker leaves its trials RUNNING. Two ways to find them, used together:

- the ``worker`` user attribute (``host:pid``): on this host, a trial whose process no longer
  exists is stale at once (any storage; the only way on a journal file, which has no heartbeat);
- on RDB storages, Optuna's heartbeat: every running trial's heartbeat is recorded every
  ``heartbeat`` seconds by :class:`Heartbeat`, and a trial silent for ``GRACE_FACTOR`` times
  that is failed by ``optuna.storages.fail_stale_trials`` — a dead worker on any machine.

Either way the trial is told FAIL (by exactly one process: the storage refuses a second) and its
parameters are queued again once, with the user attribute ``retry_of`` naming it
(RetryHeartbeatStaleTrialCallback's semantics, up to ``MAX_RETRIES`` times in a row).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, TrialState

from study import tracking
from study.errors import StorageError

HEARTBEAT_SECONDS = 10  # default interval of running trials' heartbeats (RDB storages)
GRACE_FACTOR = 4  # a trial silent for this many intervals belongs to a dead worker
MAX_RETRIES = 3  # a trial whose workers keep dying is re-queued at most this often in a row


def sqlite_timeout() -> float:
    """Seconds an sqlite storage waits for a lock (``STUDY_SQLITE_TIMEOUT``, default 30)."""
    try:
        return max(float(os.environ.get("STUDY_SQLITE_TIMEOUT", "30")), 0.1)
    except ValueError:
        return 30.0


def one_line(exc: BaseException) -> str:
    """An exception as one line: database drivers put hints and URLs on later lines."""
    text = " ".join(str(exc).split("\n")[:1]).strip()
    return f"{type(exc).__name__}: {text or 'no message'}"


# ── opening ─────────────────────────────────────────────────────────────────────────────────


def is_rdb(url: str) -> bool:
    return "://" in url


def open_storage(url: str, heartbeat: int | None = None) -> optuna.storages.BaseStorage:
    """A journal file for a plain path; RDBStorage for a URL (sqlite waits on locks, see
    :func:`sqlite_timeout`), recording heartbeats every ``heartbeat`` seconds when given."""
    try:
        if not is_rdb(url):
            from optuna.storages.journal import JournalFileBackend

            path = Path(url).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            check_journal(path)
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite:"):
            kwargs["engine_kwargs"] = {"connect_args": {"timeout": sqlite_timeout()}}
        elif url.startswith("postgresql"):
            kwargs["engine_kwargs"] = {"pool_pre_ping": True,
                                       "connect_args": {"connect_timeout": 10}}
        if heartbeat:
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            kwargs.update(heartbeat_interval=int(heartbeat),
                          grace_period=int(heartbeat) * GRACE_FACTOR,
                          heartbeat_stale_trial_callback=_Requeue())
        return optuna.storages.RDBStorage(url, **kwargs)
    except StorageError:
        raise
    except Exception as exc:  # OSError, sqlalchemy's errors, a bad URL
        raise StorageError(f"cannot open the Optuna storage {url}: {one_line(exc)}") from exc


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, Mapping):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def changed_fields(old: Mapping, new: Mapping) -> list[str]:
    """Dotted keys whose values differ, as ``key: old → new``."""
    a, b = _flatten(old), _flatten(new)
    return [f"{k}: {a.get(k, '(absent)')!r} → {b.get(k, '(absent)')!r}"
            for k in sorted(set(a) | set(b)) if a.get(k, "(absent)") != b.get(k, "(absent)")]


def _load(name: str, storage: Any, sampler: Any = None) -> optuna.Study | None:
    try:
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    except KeyError:
        return None


def _stamped(study: optuna.Study, wait: float = 10.0) -> dict[str, Any]:
    """The study's user attributes once its creator has stamped the config hash on it (a
    study another machine is creating at this moment has none for a few milliseconds)."""
    deadline = time.monotonic() + wait
    attrs = study.user_attrs
    while "config_hash" not in attrs and time.monotonic() < deadline:
        time.sleep(0.1)
        attrs = study.user_attrs
    return attrs


def open_study(cfg: Any, sampler: optuna.samplers.BaseSampler, fresh: bool = False,
               heartbeat: int | None = None) -> tuple[optuna.Study, str | None]:
    """Create or load the study ``cfg.name``; returns it and a note of what ``fresh``
    replaced. Refuses (StorageError) a study made from another config."""
    storage = open_storage(cfg.tracking.storage, heartbeat)
    directions = [o.direction for o in cfg.search.objectives]
    where = f"study {cfg.name!r} in {cfg.tracking.storage}"
    replaced = None
    try:
        old = _load(cfg.name, storage)
        if old is not None:
            attrs = _stamped(old)
            n_done = len(old.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
            if fresh:
                optuna.delete_study(study_name=cfg.name, storage=storage)
                replaced = (f"--fresh: replaced {where} ({n_done} complete trials, "
                            f"study uid {attrs.get('study_uid')}; its MLflow runs stay "
                            f"in experiment {cfg.name!r})")
            elif "config_hash" in attrs and attrs["config_hash"] != cfg.hash():
                diff = changed_fields(attrs.get("fingerprint", {}),
                                      cfg.study_fingerprint()) or ["config hash"]
                raise StorageError(f"{where} was made from a different config (changed: "
                                   f"{'; '.join(diff)}); rerun with --fresh to replace its "
                                   f"{n_done} complete trials, or give the study another name")
            else:
                study = _load(cfg.name, storage, sampler)
                _stamp(study, cfg)
                return study, None
        study = optuna.create_study(storage=storage, sampler=sampler, study_name=cfg.name,
                                    directions=directions, load_if_exists=True)
        _stamp(study, cfg)
        return study, replaced
    except StorageError:
        raise
    except Exception as exc:  # storage back-ends raise many types; name the store
        raise StorageError(storage_message(cfg.tracking.storage, exc)) from exc


def _stamp(study: optuna.Study, cfg: Any) -> None:
    if "study_uid" not in study.user_attrs:
        study.set_user_attr("study_uid", uuid.uuid4().hex)
        study.set_user_attr("config_hash", cfg.hash())
        study.set_user_attr("fingerprint", cfg.study_fingerprint())


def load_study(cfg: Any, heartbeat: int | None = None,
               sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    """The stored study of ``cfg`` (StorageError if there is none)."""
    try:
        study = _load(cfg.name, open_storage(cfg.tracking.storage, heartbeat), sampler)
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(storage_message(cfg.tracking.storage, exc)) from exc
    if study is None:
        raise StorageError(f"no study {cfg.name!r} in {cfg.tracking.storage}; run "
                           f"`study run` on the config first")
    return study


# ── errors and damage ───────────────────────────────────────────────────────────────────────


def storage_message(url: str, exc: Exception) -> str:
    """One line for an error raised by the storage ``url``."""
    damage = journal_damage(Path(url)) if not is_rdb(url) else None
    if damage:
        return damage
    return f"cannot use the Optuna storage {url}: {one_line(exc)}"


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


def raise_storage_error(url: str, exc: BaseException) -> None:
    """Raise a one-line StorageError for a damaged journal or a failing Optuna storage."""
    if isinstance(exc, ValueError) and not is_rdb(url):
        damage = journal_damage(Path(url))
        if damage:
            raise StorageError(damage) from exc
    if isinstance(exc, Exception) and raised_in_storage(exc):
        raise StorageError(f"the Optuna storage {url} failed: {one_line(exc)} (the trials told "
                           f"so far are kept; run again to resume)") from exc


def raised_in_storage(exc: BaseException) -> bool:
    """True when ``exc`` was raised inside Optuna's storage code (a sqlite lock held past the
    timeout surfaces there as a bare AssertionError)."""
    if isinstance(exc, optuna.exceptions.StorageInternalError):
        return True
    tb = exc.__traceback__
    while tb is not None:
        if "/optuna/storages/" in tb.tb_frame.f_code.co_filename.replace("\\", "/"):
            return True
        tb = tb.tb_next
    return False


# ── dead workers ────────────────────────────────────────────────────────────────────────────


def fail_trial(study: optuna.Study, trial: FrozenTrial | optuna.Trial) -> bool:
    """Tell FAIL to a running trial; False when another process finished it first."""
    try:
        return bool(study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL))
    except UpdateFinishedTrialError:
        return False


def requeue(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Queue ``trial``'s parameters again (``retry_of`` = its number), unless its chain of
    retries is already ``MAX_RETRIES`` long."""
    retries = int(trial.user_attrs.get("retries", 0))
    if retries >= MAX_RETRIES:
        return False
    study.enqueue_trial(dict(trial.params),
                        user_attrs={"retry_of": trial.number, "retries": retries + 1})
    return True


class _Requeue:
    """Optuna's heartbeat-stale callback: re-queue the failed trial, remember it."""

    def __init__(self) -> None:
        self.failed: list[FrozenTrial] = []

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        requeue(study, trial)
        self.failed.append(trial)


def reap_stale(study: optuna.Study) -> list[FrozenTrial]:
    """Fail the RUNNING trials of dead workers (dead processes on this host; on RDB storages
    also trials whose heartbeat stopped) and queue their parameters again; returns them."""
    reaped = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if tracking.worker_is_dead(t.user_attrs.get("worker")) and fail_trial(study, t):
            requeue(study, t)
            reaped.append(t)
    storage = study._storage
    backend = getattr(storage, "_backend", storage)
    callback = getattr(backend, "heartbeat_stale_trial_callback", None)
    if isinstance(callback, _Requeue):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        reaped += callback.failed
        callback.failed = []
    return reaped


class Heartbeat:
    """Records the heartbeat of the trials this process is running, every interval, from a
    thread (RDB storages with a heartbeat; a no-op otherwise). The first beat of a trial is
    recorded at once by :meth:`add`, so a trial is never RUNNING without one for long."""

    def __init__(self, study: optuna.Study) -> None:
        self._storage = study._storage
        beats = isinstance(self._storage, BaseHeartbeat)
        self.interval = self._storage.get_heartbeat_interval() if beats else None
        self._ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        if self.interval:
            self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def add(self, trial_id: int) -> None:
        if self.interval:
            self._storage.record_heartbeat(trial_id)
            with self._lock:
                self._ids.add(trial_id)

    def discard(self, trial_ids: Iterable[int]) -> None:
        with self._lock:
            self._ids.difference_update(trial_ids)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                ids = sorted(self._ids)
            for trial_id in ids:
                try:
                    self._storage.record_heartbeat(trial_id)
                except Exception:  # a missed beat only risks a retry; the loop reports errors
                    pass
