"""Every use of Optuna's private API, in one place, each with the reason no public API serves.

The sweep relies on these behaviours of Optuna 5.0–5.1 (the versions pyproject allows);
``tests/sweep/test_optuna_private.py`` pins each one on real storages (a journal file and
sqlite), so an Optuna upgrade that changes one fails there, not in the middle of a sweep.

- asking a trial whose creating write already names its worker (:func:`pop_waiting_trial_id`,
  :func:`create_running_trial`, :func:`trial_for_id`);
- a trial's storage id (:func:`trial_id`), which heartbeats are recorded by;
- the heartbeat of RDB storages outside ``study.optimize`` (:func:`heartbeat_interval`,
  :func:`record_heartbeat`, :func:`stale_trial_callback`);
- reseeding RandomSampler per trial (:func:`reseed_random_sampler`) and choosing QMCSampler's
  point (:class:`IndexedQMCSampler`);
- the journal lock's interface (:class:`JournalFileLock`) and the path of Optuna's symlink lock
  (:func:`symlink_lock_path`);
- the logger of the RDB storage's retries (:func:`quiet_rdb_retry_log`);
- a trial's constraints in the list form optuna-dashboard reads (:func:`set_listed_constraints`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
from optuna.storages.journal._file import LOCK_FILE_SUFFIX, BaseJournalFileLock
from optuna.trial import FrozenTrial, TrialState

# Optuna's JournalFileBackend takes ``lock_obj``, documented as one of its two lock classes; their
# base (acquire() -> bool, release()) is private, and the backend calls only those two methods.
JournalFileLock = BaseJournalFileLock

RDB_STORAGE_LOGGER = "optuna.storages._rdb.storage"


def pop_waiting_trial_id(study: optuna.Study) -> int | None:
    """Take a queued (WAITING) trial for this process, as ``study.ask`` does first: it becomes
    RUNNING, and no other process can take it. None when the queue is empty.

    No public API: ``study.ask`` pops and creates in one call, and a trial it creates names no
    worker until a second write (a worker killed in between would leave an anonymous RUNNING
    trial, reaped only after ``ORPHAN_SECONDS``). The study's cache of all trials is dropped
    first, as ``study.ask`` does, so that trials queued by other workers are seen."""
    study._thread_local.cached_all_trials = None
    return study._pop_waiting_trial_id()


def create_running_trial(study: optuna.Study, user_attrs: Mapping[str, Any]) -> int:
    """Create a RUNNING trial carrying ``user_attrs`` in the same storage write; returns its id.

    No public API: ``study.add_trial`` takes finished trials only, and ``study.ask`` cannot
    set attributes in the write that creates the trial."""
    template = optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs=dict(user_attrs))
    return study._storage.create_new_trial(study._study_id, template_trial=template)


def trial_for_id(study: optuna.Study, trial_id: int) -> optuna.Trial:
    """The ``optuna.Trial`` of a RUNNING trial of ``study`` (its sampler's ``before_trial`` is
    called, as in ``study.ask``).

    Optuna documents this constructor as not meant to be called by users: ``study.ask`` is, and
    it cannot be used here (see :func:`pop_waiting_trial_id`)."""
    return optuna.Trial(study, trial_id)


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of a trial (unique across studies, unlike ``trial.number``).

    No public API: the storage's heartbeat methods take this id, and neither ``Trial`` nor
    ``FrozenTrial`` expose it publicly."""
    return trial._trial_id


def heartbeat_interval(study: optuna.Study) -> int | None:
    """Seconds between heartbeats when the study's storage records them (an RDBStorage opened
    with ``heartbeat_interval``), else None.

    No public API: Optuna records heartbeats only inside ``study.optimize``; the ask/tell loop
    keeps them itself (see :class:`study.sweep.reaper.Heartbeat`), so it must know whether the
    storage has one and its interval."""
    storage = study._storage
    if not isinstance(storage, BaseHeartbeat) or not is_heartbeat_enabled(storage):
        return None
    return storage.get_heartbeat_interval()


def record_heartbeat(study: optuna.Study, trial_id: int) -> None:
    """Record now as the last heartbeat of the running trial ``trial_id``.

    No public API: see :func:`heartbeat_interval`."""
    study._storage.record_heartbeat(trial_id)


def stale_trial_callback(study: optuna.Study) -> Callable[[optuna.Study, FrozenTrial], None] | None:
    """The ``heartbeat_stale_trial_callback`` the study's storage was opened with (called by
    ``optuna.storages.fail_stale_trials`` for each trial it failed), or None.

    No public API reaches it from the study; it is read back to learn which trials
    ``fail_stale_trials`` failed (that function returns nothing)."""
    if heartbeat_interval(study) is None:
        return None
    return study._storage.get_heartbeat_stale_trial_callback()


def reseed_random_sampler(sampler: optuna.samplers.RandomSampler, entropy: np.ndarray) -> None:
    """Reseed the generator that ``sampler`` draws every parameter from.

    No public API: ``RandomSampler.reseed_rng`` reseeds from the operating system's entropy,
    and a trial's parameters must follow from (seed, trial number) alone."""
    sampler._rng.rng.seed(entropy)


class IndexedQMCSampler(optuna.samplers.QMCSampler):
    """QMCSampler that takes point ``sample_index`` of its sequence for the next trial.

    No public API: QMCSampler picks the index with a read-then-write counter on the study
    (``_find_sample_id``), which two workers asking at once read alike. A subclass sets
    ``sample_index`` in ``sample_relative`` before calling this class's."""

    sample_index = 0

    def _find_sample_id(self, study: optuna.Study,
                        search_space: dict[str, BaseDistribution]) -> int:
        return self.sample_index


def symlink_lock_path(journal: str) -> str:
    """The path of the symlink that ``JournalFileSymlinkLock`` (the lock of a plain-Optuna
    writer of ``journal``) creates while it writes.

    No public API names it; a writer killed while holding it leaves it behind, and the journal
    lock of :mod:`study.sweep.journal` takes and removes it by this name."""
    return journal + LOCK_FILE_SUFFIX


def quiet_rdb_retry_log() -> None:
    """Silence the RDB storage's warnings below ERROR.

    Optuna logs a locked sqlite file as "too many variables in IN" and retries; the lock is
    waited for, or becomes one StorageError line, so the misleading warning is noise. The
    logger's name is that of a private module."""
    logging.getLogger(RDB_STORAGE_LOGGER).setLevel(logging.ERROR)


LISTED_CONSTRAINTS_KEY = "constraints"


def set_listed_constraints(study: optuna.Study, trial: optuna.Trial | FrozenTrial,
                           values: Sequence[float]) -> None:
    """Write a trial's constraint values also as the list system attribute ``constraints``.

    ``Trial.set_constraint`` (public) writes one ``constraints:<name>`` key per constraint,
    which Optuna reads; optuna-dashboard (0.21) reads only the list that the samplers'
    ``constraints_func`` (deprecated in Optuna 5) used to write, to draw infeasible trials apart.
    Optuna still reads the list too (as constraint ``"0"``, ``"1"``, …). No public API writes it."""
    study._storage.set_trial_system_attr(trial_id(trial), LISTED_CONSTRAINTS_KEY,
                                         [float(v) for v in values])
