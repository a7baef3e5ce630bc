"""Dead workers: find the trials a killed worker left RUNNING, fail them, queue their
parameters again, and keep the heartbeat of this process's own running trials.

A killed worker leaves its trials RUNNING. Three ways to find them, used together:

- the ``worker`` user attribute (``host:pid``, written with the trial itself): on this host, a
  trial whose process no longer exists is stale at once (any storage; the only way on a
  journal file, which has no heartbeat);
- on RDB storages, Optuna's heartbeat: every running trial's heartbeat is recorded every
  ``heartbeat`` seconds by :class:`Heartbeat`, and a trial silent for ``GRACE_FACTOR`` times
  that is failed by ``optuna.storages.fail_stale_trials`` — a dead worker on any machine;
- a re-queued trial popped by a worker that died before naming itself: RUNNING without a
  ``worker`` for ``ORPHAN_SECONDS``.

Either way the trial is told FAIL by exactly one process (the storage refuses a second) and the
point it was meant to evaluate is queued again once (:func:`study.sweep.sampling.trial_point`:
its sampler's point, not the parameters it happened to record before it died, which are none
when it died right after its creation), with the user attributes ``retry_of`` naming it and
``point`` its point index (RetryHeartbeatStaleTrialCallback's semantics, up to ``MAX_RETRIES``
times in a row). Every process runs :func:`reap_stale` at start-up and before each batch.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from study.sweep._optuna_private import (
    heartbeat_interval,
    record_heartbeat,
    stale_trial_callback,
)
from study.sweep.sampling import trial_point
from study.tracking.workerid import worker_is_dead

MAX_RETRIES = 3  # a trial whose workers keep dying is re-queued at most this often in a row
ORPHAN_SECONDS = 120  # a RUNNING trial naming no worker for this long lost its worker


def fail_trial(study: optuna.Study, trial: FrozenTrial | optuna.Trial) -> bool:
    """Tell FAIL to a running trial; False when it was finished first (another process failed
    it, or it was told). The storage refuses a second FAIL, so of several processes failing one
    trial at once exactly one gets True."""
    try:
        study.tell(trial.number, state=TrialState.FAIL)
    except (UpdateFinishedTrialError, ValueError):  # finished before the read, or the write
        return False
    return True


def requeue(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Queue the point ``trial`` was meant to evaluate again (``retry_of`` = its number,
    ``point`` = its point index), unless its chain of retries is already ``MAX_RETRIES`` long
    or it is a grid trial that died before taking a cell (the grid keeps the cell for another
    trial)."""
    retries = int(trial.user_attrs.get("retries", 0))
    if retries >= MAX_RETRIES:
        return False
    point = trial_point(study, trial)
    if point is None:
        return False
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.WAITING,
        system_attrs={**point.system_attrs, "fixed_params": point.params},
        user_attrs={"retry_of": trial.number, "retries": retries + 1, "point": point.index}))
    return True


class Requeue:
    """Optuna's heartbeat-stale callback: re-queue the failed trial, remember it."""

    def __init__(self) -> None:
        self.failed: list[FrozenTrial] = []

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        requeue(study, trial)
        self.failed.append(trial)


def _orphaned(trial: FrozenTrial) -> bool:
    """RUNNING for ORPHAN_SECONDS without naming its worker: a live worker names itself in
    the write right after popping a queued trial, so this one's worker died in between."""
    if "worker" in trial.user_attrs or trial.datetime_start is None:
        return False
    start = trial.datetime_start
    now = datetime.now(start.tzinfo) if start.tzinfo else datetime.now()
    return (now - start).total_seconds() > ORPHAN_SECONDS


def reap_stale(study: optuna.Study) -> list[FrozenTrial]:
    """Fail the RUNNING trials of dead workers (dead processes on this host; on RDB storages
    also trials whose heartbeat stopped) and queue their parameters again; returns them."""
    reaped = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        dead = worker_is_dead(t.user_attrs.get("worker")) or _orphaned(t)
        if dead and fail_trial(study, t):
            requeue(study, t)
            reaped.append(t)
    callback = stale_trial_callback(study)
    if isinstance(callback, Requeue):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        reaped += callback.failed
        callback.failed = []
    return reaped


def heartbeat_enabled(study: optuna.Study) -> bool:
    """True when the study's storage records heartbeats (an RDB storage opened with one)."""
    return bool(heartbeat_interval(study))


class Heartbeat:
    """Records the heartbeat of the trials this process is running, every interval, from a
    thread (RDB storages with a heartbeat; a no-op otherwise). The first beat of a trial is
    recorded at once by :meth:`add`, so a trial is never RUNNING without one for long."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study
        self.interval = heartbeat_interval(study) or None
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
            record_heartbeat(self._study, trial_id)
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
                    record_heartbeat(self._study, trial_id)
                except Exception:  # a missed beat only risks a retry; the loop reports errors
                    pass
