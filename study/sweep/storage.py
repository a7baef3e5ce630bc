"""The Optuna storage: open it, check the stored study against the config, probe that the
stores can be written, and turn storage errors into one clear line.

Storages. A path (the default ``optuna.journal``) is a ``JournalStorage`` on a local (or shared)
file; ``sqlite:///…`` and any other database URL (``postgresql://…``) is an ``RDBStorage``. An
sqlite storage waits ``STUDY_SQLITE_TIMEOUT`` seconds (default 30) for a lock, so a backup or a
reader holding it for seconds does not fail a trial; past that the error is a one-line
:class:`StorageError`, never Optuna's bare ``AssertionError``.

The study stores the config hash and fingerprint; resuming with another config is refused
naming the changed fields, unless ``fresh=True``. The journal file and its lock live in
:mod:`study.sweep.journal`. At start-up each local store's folder takes a test write
(:func:`probe_stores`), so a read-only or full store stops the command before anything is made.

Dead workers are found and their trials re-queued by :mod:`study.sweep.reaper`; RDB storages are
opened here with its heartbeat settings.
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from study.config.constraints import GRACE_FACTOR
from study.errors import StorageError
from study.sweep._optuna_private import quiet_rdb_retry_log
from study.sweep.journal import journal_damage, open_journal
from study.sweep.reaper import Requeue
from study.tracking.retry import retry
from study.tracking.sqlite_store import build_new
from study.tracking.uri import sqlite_path


def sqlite_timeout() -> float:
    """Seconds an sqlite storage waits for a lock (``STUDY_SQLITE_TIMEOUT``, default 30)."""
    try:
        return max(float(os.environ.get("STUDY_SQLITE_TIMEOUT", "30")), 0.1)
    except ValueError:
        return 30.0


def one_line(exc: BaseException) -> str:
    """An exception as one line, from the error that caused it (Optuna wraps a locked sqlite
    file in "invalid data in the commit"); database drivers put hints on later lines."""
    seen = {id(exc)}
    while isinstance(exc, optuna.exceptions.StorageInternalError) and exc.__cause__ is not None \
            and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    text = " ".join(str(exc).split("\n")[:1]).strip()
    return f"{type(exc).__name__}: {text or 'no message'}"


PROBE_BYTES = 256 * 1024  # written and removed at start-up to find a full or read-only store


def probe_folder(folder: Path, what: str) -> None:
    """Make sure ``folder`` exists and takes a write (a file of PROBE_BYTES, synced, then
    removed), so that a read-only or full store is a clear error before anything is made."""
    probe = folder / f".study-probe-{uuid.uuid4().hex[:12]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            with probe.open("wb") as f:
                f.write(b"\0" * PROBE_BYTES)
                f.flush()
                os.fsync(f.fileno())
        finally:
            probe.unlink(missing_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if folder.exists() and not folder.is_dir():
            reason = "it is a file, not a folder"
        raise StorageError(f"cannot write the {what} in {folder}: {reason} (free space or make "
                           f"it writable, or point the config's tracking section elsewhere; "
                           f"what it holds can still be read)") from exc


def probe_stores(cfg: Any) -> None:
    """Probe the folders of the local stores of ``cfg`` (a journal file, sqlite files)."""
    url = cfg.tracking.storage
    if not is_rdb(url):
        probe_folder(Path(url).expanduser().parent, f"Optuna storage {url}")
    elif url.startswith("sqlite:"):
        db = sqlite_path(url)
        if db is not None:
            probe_folder(db.parent, f"Optuna storage {url}")
    db = sqlite_path(cfg.tracking.mlflow_uri)
    if db is not None:
        probe_folder(db.parent, f"MLflow store {cfg.tracking.mlflow_uri}")


# ── opening ─────────────────────────────────────────────────────────────────────────────────


def is_rdb(url: str) -> bool:
    return "://" in url


def open_storage(url: str, heartbeat: int | None = None) -> optuna.storages.BaseStorage:
    """A journal file for a plain path; RDBStorage for a URL (sqlite waits on locks, see
    :func:`sqlite_timeout`), recording heartbeats every ``heartbeat`` seconds when given."""
    try:
        if not is_rdb(url):
            return open_journal(Path(url).expanduser())
        quiet_rdb_retry_log()
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
                          heartbeat_stale_trial_callback=Requeue())
        return _create_rdb(url, kwargs)
    except StorageError:
        raise
    except Exception as exc:  # OSError, sqlalchemy's errors, a bad URL
        raise StorageError(f"cannot open the Optuna storage {url}: {one_line(exc)}") from exc


SCHEMA_RETRY_DELAYS = (0.2, 0.4, 0.6, 0.8)  # seconds between attempts to create a schema


def _schema_collision(exc: BaseException) -> bool:
    """Another process created the same table or type at this moment (two machines starting
    on a new database collide in CREATE TABLE / CREATE TYPE)."""
    text = str(exc)
    return any(s in text for s in ("UniqueViolation", "IntegrityError", "already exists",
                                   "DuplicateTable"))


def _create_schema(db: Path) -> None:
    """Optuna's whole schema in the new sqlite file ``db``, its connections closed."""
    built = optuna.storages.RDBStorage(f"sqlite:///{db}")
    built.remove_session()
    built.engine.dispose()


def _create_rdb(url: str, kwargs: dict[str, Any]) -> optuna.storages.RDBStorage:
    """RDBStorage, retried when another process is creating the same schema at this moment.
    A new local sqlite file is built beside its place and renamed into it, so that a kill
    during the schema's creation leaves no half-made file."""
    db = sqlite_path(url) if url.startswith("sqlite:") else None
    if db is not None and db.name != ":memory:" and not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        build_new(db, _create_schema)
    return retry(lambda: optuna.storages.RDBStorage(url, **kwargs),
                 transient=_schema_collision, delays=SCHEMA_RETRY_DELAYS)


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


STAMP_WAIT_SECONDS = 3.0  # a creator stamps a new study within milliseconds


def _stamped(study: optuna.Study, wait: float = STAMP_WAIT_SECONDS) -> dict[str, Any]:
    """The study's user attributes once its creator has stamped the config hash on it (a
    study another machine is creating at this moment has none for a few milliseconds; one
    whose creator was killed before stamping it never gets one, and is stamped here)."""
    deadline = time.monotonic() + wait
    attrs = study.user_attrs
    while "config_hash" not in attrs and time.monotonic() < deadline:
        time.sleep(0.1)
        attrs = study.user_attrs
    return attrs


def _resume(cfg: Any, old: optuna.Study, storage: Any, sampler: Any, fresh: bool
            ) -> tuple[optuna.Study | None, str | None]:
    """What to do with the stored study ``old``: (the study to resume, None), or (None, a note)
    after ``fresh`` deleted it; refuses one made from another config."""
    where = f"study {cfg.name!r} in {cfg.tracking.storage}"
    attrs = _stamped(old)
    n_done = len(old.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if fresh:
        optuna.delete_study(study_name=cfg.name, storage=storage)
        return None, (f"--fresh: replaced {where} ({n_done} complete trials, study uid "
                      f"{attrs.get('study_uid')}; its MLflow runs stay in experiment "
                      f"{cfg.name!r})")
    stored = attrs.get("fingerprint", {})
    if "config_hash" in attrs and attrs["config_hash"] != cfg.hash():
        if _moved_data_only(stored, cfg.study_fingerprint()):
            study = _load(cfg.name, storage, sampler)
            _restamp(study, cfg)
            return study, (f"{where}: its data are now identified by content and by their path "
                           f"from the config, no longer by the absolute path "
                           f"{stored['data']['path']}")
        diff = changed_fields(stored, cfg.study_fingerprint()) or ["config hash"]
        raise StorageError(f"{where} was made from a different config (changed: "
                           f"{'; '.join(diff)}); rerun with --fresh to replace its {n_done} "
                           f"complete trials, or give the study another name")
    study = _load(cfg.name, storage, sampler)
    _stamp(study, cfg)
    return study, None


def open_study(cfg: Any, sampler: optuna.samplers.BaseSampler, fresh: bool = False,
               heartbeat: int | None = None) -> tuple[optuna.Study, str | None]:
    """Create or load the study ``cfg.name``; returns it and a note of what was done to the
    stored study (``fresh`` replaced it, its fingerprint was updated). Refuses (StorageError)
    a study made from another config."""
    storage = open_storage(cfg.tracking.storage, heartbeat)
    directions = [o.direction for o in cfg.search.objectives]
    note = None
    try:
        old = _load(cfg.name, storage)
        if old is not None:
            study, note = _resume(cfg, old, storage, sampler, fresh)
            if study is not None:
                return study, note
        study = optuna.create_study(storage=storage, sampler=sampler, study_name=cfg.name,
                                    directions=directions, load_if_exists=True)
        _stamp(study, cfg)
        return study, note
    except StorageError:
        raise
    except Exception as exc:  # storage back-ends raise many types; name the store
        raise StorageError(storage_message(cfg.tracking.storage, exc)) from exc


def _stamp(study: optuna.Study, cfg: Any) -> None:
    """Write what the study lacks of its uid, fingerprint and config hash (one write each: a
    creator killed between them leaves some, which the next start-up completes). The hash
    comes last, as the mark of a stamped study."""
    attrs = study.user_attrs
    if "study_uid" not in attrs:
        study.set_user_attr("study_uid", uuid.uuid4().hex)
    if "fingerprint" not in attrs or "config_hash" not in attrs:
        study.set_user_attr("fingerprint", cfg.study_fingerprint())
    if "config_hash" not in attrs:
        study.set_user_attr("config_hash", cfg.hash())


def _moved_data_only(old: Mapping, new: Mapping) -> bool:
    """Whether two fingerprints differ only in ``data.path``, the old one absolute (studies
    stamped before data were identified by content and the path relative to the config)."""
    a, b = dict(old), dict(new)
    a_data, b_data = dict(a.pop("data", {})), dict(b.pop("data", {}))
    old_path = a_data.pop("path", "")
    b_data.pop("path", None)
    return a == b and a_data == b_data and os.path.isabs(str(old_path))


def _restamp(study: optuna.Study, cfg: Any) -> None:
    study.set_user_attr("fingerprint", cfg.study_fingerprint())
    study.set_user_attr("config_hash", cfg.hash())


def load_study(cfg: Any, heartbeat: int | None = None,
               sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    """The stored study of ``cfg`` (StorageError if there is none; nothing is created)."""
    url = cfg.tracking.storage
    missing = not is_rdb(url) and not Path(url).expanduser().is_file()
    try:
        study = None if missing else _load(cfg.name, open_storage(url, heartbeat), sampler)
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
    timeout surfaces there as a bare AssertionError): by its type, or by the module of a frame
    of its traceback (``optuna.storages`` and below), wherever Optuna is installed."""
    if isinstance(exc, optuna.exceptions.StorageInternalError):
        return True
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module == "optuna.storages" or module.startswith("optuna.storages."):
            return True
        tb = tb.tb_next
    return False
