"""The batched ask → run → log → tell loop, in one process (``study run``) or in each worker
process of ``study run --workers N`` (:mod:`study.sweep.workers`).

Each round: fail and re-queue the trials of dead workers; count COMPLETE and RUNNING trials;
ask ``min(batch_size, n_trials − complete − running)`` trials, run them as one
:func:`study.core.engine.run` call, log each as an MLflow child run (in a thread) and tell Optuna
its objective values. When only other workers' trials are left, the loop waits for them while it
can tell whether their workers live (this host, or heartbeats), so that it re-runs the trials
of a worker that dies at the end.

``n_trials`` is the *total*: re-running resumes, raising it adds the difference, and processes
sharing the study stop at exactly ``n_trials``: asks beyond the first ``n_trials`` live trials
(by number) are failed unrun, with ``surplus=True``.

Interrupts: SIGINT and SIGTERM halt the running trials (the engine's halt flag, seen within
milliseconds even in a trial of 10⁹ epochs) and stop the loop once the batch's finished trials
are logged and told; the halted ones are left untold, so they are failed and their points queued
again. A second signal stops at once (the open MLflow run becomes KILLED, trials asked but not told
— even one cut off while it was being created — are told FAIL and their points queued again,
see :func:`study.sweep.sampling.trial_point`). The summary's ``n_new`` counts the trials this
process completed, however it stopped.
"""

from __future__ import annotations

import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from study.config.constraints import HEARTBEAT_SECONDS
from study.core import engine
from study.core.stoppable import halt_flag
from study.sweep._optuna_private import (
    create_running_trial,
    pop_waiting_trial_id,
    set_listed_constraints,
    trial_for_id,
    trial_id,
)
from study.sweep.objectives import (
    CONSTRAINT,
    Scorer,
    complete_trials,
    constraint_value,
    user_attrs,
)
from study.sweep.reaper import Heartbeat, fail_trial, heartbeat_enabled, reap_stale, requeue
from study.sweep.sampling import (
    Space,
    engine_trial,
    grid_key,
    grid_points,
    suggest,
    trial_point,
    trial_seed,
)
from study.sweep.signals import Deferred, SignalScope
from study.sweep.startup import Setup, setup, start_parent
from study.sweep.storage import raise_storage_error
from study.sweep.summary import SweepSummary, build_summary, counts_text, progress_bar
from study.tracking.runlog import TrialRecord, as_storage_error, result_values
from study.tracking.tracker import Tracker
from study.tracking.workerid import worker_host, worker_id

WAIT_SECONDS = 0.5  # between looks at the study while its last trials run elsewhere
MAX_IDLE_SECONDS = 300  # stop waiting for them when nothing has changed for this long


class Interrupts(SignalScope):
    """SIGINT/SIGTERM: the first stops the running trials (the engine's ``halt`` flag, seen
    within milliseconds) and the loop after this batch's finished trials are logged; the
    second raises KeyboardInterrupt at once."""

    def __init__(self, quiet: bool = False) -> None:
        self.requested = 0
        self.quiet = quiet
        self.halt = halt_flag()

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested += 1
        self.halt[0] = 1
        if self.requested == 1:
            if not self.quiet:
                print(f"\nstudy: {signal.Signals(signum).name}: stopping; finished trials are "
                      f"kept, unfinished ones run again on resume (again to stop now)",
                      file=sys.stderr)
        else:
            raise KeyboardInterrupt


class Batch:
    """One ask → engine → log → tell round; remembers what is asked but not yet told."""

    def __init__(self, study: optuna.Study, space: Space, heartbeat: Heartbeat) -> None:
        self.study, self.space, self.heartbeat = study, space, heartbeat
        self.pending: dict[int, optuna.Trial] = {}
        self.creating: int | None = None  # storage id of the trial being asked
        self.completed = 0  # trials this process told COMPLETE
        self.uid = ""  # the study's uid, read once per batch
        self.scorer: Scorer | None = None  # objective values, made once per batch

    def ask(self, k: int) -> list[optuna.Trial]:
        worker = worker_id()
        asked = []
        for _ in range(k):
            trial = self._ask_one(worker)
            self.pending[trial.number] = trial
            asked.append(trial)
        return asked

    def _ask_one(self, worker: str) -> optuna.Trial:
        """``study.ask`` whose new trial carries the ``worker`` attribute from the write that
        creates it, so a worker killed while asking never leaves a RUNNING trial that names
        no worker (a re-queued trial gets it right after it is popped)."""
        trial_id = pop_waiting_trial_id(self.study)
        popped = trial_id is not None
        if trial_id is None:
            trial_id = create_running_trial(self.study, {"worker": worker})
        self.creating = trial_id  # until it is pending: abandon() finds it by this id
        self.heartbeat.add(trial_id)
        trial = trial_for_id(self.study, trial_id)
        if popped:
            trial.set_user_attr("worker", worker)
        for name, distribution in self.space.distributions.items():
            suggest(trial, name, distribution)
        self.creating = None
        return trial

    def _done(self, trial: optuna.Trial) -> None:
        self.pending.pop(trial.number, None)
        self.heartbeat.discard([trial_id(trial)])

    def tell(self, trial: optuna.Trial, values: list[float], attrs: Mapping[str, Any],
             constraint: float = 0.0) -> bool:
        """Tell a trial its values (and its ``diverged`` constraint); False when another process
        failed it first (its heartbeat looked stale) and its parameters are queued again. Telling
        again a trial
        whose first tell an interrupt cut short after the storage took it is True."""
        try:
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
            trial.set_constraint(CONSTRAINT, constraint)
            set_listed_constraints(self.study, trial, [constraint])  # for optuna-dashboard
            frozen = self.study.tell(trial, values, skip_if_finished=True)
        except UpdateFinishedTrialError:  # finished: by this process (COMPLETE) or failed
            frozen = self.study.tell(trial, values, skip_if_finished=True)  # only reads it now
        self._done(trial)
        if frozen.state != TrialState.COMPLETE:
            return False
        self.completed += 1
        return True

    def drop_surplus(self, asked: list[optuna.Trial], target: int) -> list[optuna.Trial]:
        """Keep the asked trials that are among the first ``target`` live trials (complete,
        running or queued, by number); tell the others FAIL with ``surplus=True``. Workers
        sharing a study count before they ask, so without this they would overshoot."""
        live = sorted(t.number for t in self.study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)))
        if len(live) <= target:
            return asked
        allowed = set(live[:target])
        keep = []
        for trial in asked:
            if trial.number in allowed:
                keep.append(trial)
            else:
                trial.set_user_attr("surplus", True)
                fail_trial(self.study, trial)
                self._done(trial)
        return keep

    def abandon(self) -> list[int]:
        """Tell FAIL to what was asked but not told, and queue the points they were meant to
        evaluate again; returns their numbers. Besides the pending trials, that is any trial
        this process left RUNNING: one whose ask was cut off, perhaps before its creating
        write returned its id (a later sweep in this process could not reap it: its worker
        lives)."""
        me, numbers = worker_id(), []
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            mine = t.number in self.pending or trial_id(t) == self.creating \
                or t.user_attrs.get("worker") == me
            if mine and fail_trial(self.study, t):
                requeue(self.study, t)
                numbers.append(t.number)
        for trial in list(self.pending.values()):
            self._done(trial)
        if self.creating is not None:
            self.heartbeat.discard([self.creating])
            self.creating = None
        return numbers


def grid_todo(study: optuna.Study, space: Space, trials: Sequence[FrozenTrial]) -> int:
    """Grid points not yet complete or running; failed ones are queued again (GridSampler
    counts a failed point as visited and would never return to it)."""
    names = sorted(space.distributions)

    def cell(t: FrozenTrial) -> tuple | None:  # the cell it was meant for, params or not yet
        point = trial_point(study, t, trials)
        return None if point is None else grid_key(point.params, names)

    done = {grid_key(t.params, names) for t in trials if t.state == TrialState.COMPLETE}
    busy = {cell(t) for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)}
    failed = {cell(t) for t in trials if t.state == TrialState.FAIL}
    todo = 0
    for point in grid_points(space):
        key = grid_key(point, names)
        if key in done or key in busy:
            continue
        if key in failed:
            study.enqueue_trial(point)
        todo += 1
    return todo


def close_after(batch: Batch, tracker: Tracker, status: str | None) -> None:
    """After an interrupt or error: untold trials FAIL (and queued again), an open child run
    KILLED, and on error (``status`` FAILED) the parent run. Best effort and without long
    retries: a store that is down must not hide the error that stopped the sweep."""
    abandoned: list[int] = []
    steps = [lambda: abandoned.extend(batch.abandon()),
             lambda: tracker.kill_open_child(patient=False),
             lambda: tracker.kill_trial_runs(batch.uid, abandoned, patient=False)]
    if status == "FAILED":
        steps.append(lambda: tracker.end_parent(status, patient=False))
    for step in steps:
        try:
            step()
        except Exception:  # what stays RUNNING is reaped by the next start-up
            pass


def raise_as_storage_error(cfg: Any, exc: BaseException) -> None:
    """Raise a one-line StorageError for an error of either store that stopped the sweep."""
    raise_storage_error(cfg.tracking.storage, exc)
    error = as_storage_error(cfg.tracking.mlflow_uri, exc)
    if error is not None:
        raise error from exc


@contextmanager
def store_errors(cfg: Any) -> Iterator[None]:
    """Errors of either store (opening them, starting the parent run) as one line."""
    try:
        yield
    except Exception as exc:
        raise_as_storage_error(cfg, exc)
        raise


def _tell(batch: Batch, cfg: Any, tracker: Tracker, trial: optuna.Trial,
          rec: TrialRecord, run_id: str, counts: Counter, bar: Any) -> None:
    res = rec.result
    named = result_values(res, rec.param_names)
    named["status"] = res.status
    scores = batch.scorer.score(named, res.status)
    if not batch.tell(trial, scores, user_attrs(named, run_id, rec.seed),
                      constraint_value(res.status)):
        tracker.mark_killed(run_id, "a worker thought dead re-queued this trial")
        return
    counts[res.status] += 1
    bar.update(1)
    bar.set_postfix_str(counts_text(counts), refresh=False)


def point_seeds(cfg: Any, st: Setup, asked: Sequence[optuna.Trial]) -> list[int]:
    """The minibatch seeds of the asked trials, from their point indices (a retry's is the
    point of the trial it replaces), never from their numbers."""
    trials = st.study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    seeds = []
    for t in asked:
        point = trial_point(st.study, by_number[t.number], trials)
        seeds.append(trial_seed(cfg, st.base, t.number if point is None else point.index))
    return seeds


def run_batch(cfg: Any, st: Setup, batch: Batch, k: int, counts: Counter, bar: Any,
              halt: np.ndarray | None = None) -> int:
    """Ask k trials, run them as one engine call, log and tell each. Trials that ``halt`` cut
    short are left pending (an interrupt's clean-up fails them and queues their points again).

    MLflow logging runs in one worker thread while this thread tells Optuna: both wait on
    their store's disk writes, so the Optuna writes hide behind the MLflow ones. A trial is
    told only after its run is logged (its run id is a user attribute)."""
    since = int(time.time() * 1000)
    asked = batch.drop_surplus(batch.ask(k), st.target)
    if not asked:
        return 0
    uid = batch.uid = st.study.user_attrs["study_uid"]
    batch.scorer = Scorer(st.study, cfg.search.objectives, batch.space)
    values = [{**batch.space.constants, **t.params} for t in asked]
    seeds = point_seeds(cfg, st, asked)
    trials = [engine_trial(v, st.base, st.problem.d, s)
              for v, s in zip(values, seeds, strict=True)]
    results = engine.run(st.problem, trials, halt)
    existing = st.tracker.existing_children(uid, since)
    finished = [(t, TrialRecord(cfg.name, uid, t.number, v, e.settings, s, r,
                                st.problem.param_names, since))
                for t, v, e, r, s in zip(asked, values, trials, results, seeds, strict=True)
                if r.status != engine.HALTED]
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow")
    futures = [pool.submit(st.tracker.log_trial, rec, existing.get(rec.number))
               for _, rec in finished]
    told = 0
    try:
        for (trial, rec), future in zip(finished, futures, strict=True):
            _tell(batch, cfg, st.tracker, trial, rec, future.result(), counts, bar)
            told += 1
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if told < len(finished):  # interrupted: keep what was logged before the stop
            for (trial, rec), future in list(zip(finished, futures, strict=True))[told:]:
                if future.done() and not future.cancelled() and future.exception() is None:
                    _tell(batch, cfg, st.tracker, trial, rec, future.result(), counts, bar)
    return len(finished)


def _reap(st: Setup) -> bool:
    """Fail and re-queue dead workers' trials; their MLflow runs become KILLED."""
    reaped = reap_stale(st.study)
    if reaped:
        st.tracker.kill_trial_runs(st.study.user_attrs.get("study_uid", ""),
                                   [t.number for t in reaped])
        st.tracker.reap_dead_workers()
    return bool(reaped)


def loop(cfg: Any, st: Setup, batch: Batch, stop: Interrupts, counts: Counter, bar: Any,
         orphaned: Callable[[], bool] = lambda: False) -> int:
    """Run batches until the study holds ``st.target`` complete trials (or the grid is done,
    or a stop is asked); returns the number of trials this process completed."""
    seen, since = None, time.monotonic()
    while not stop.requested and not orphaned():
        if _reap(st):
            continue
        trials = st.study.get_trials(deepcopy=False)
        states = Counter(t.state for t in trials)
        k = min(int(cfg.search.batch_size),
                st.target - states[TrialState.COMPLETE] - states[TrialState.RUNNING])
        if st.space.grid is not None and k > 0:
            k = min(k, grid_todo(st.study, st.space, trials))
        if k <= 0:
            if states[TrialState.COMPLETE] >= st.target or not _wait_for_others(st, trials):
                break
            now = (states[TrialState.COMPLETE], states[TrialState.RUNNING])
            if now != seen:
                seen, since = now, time.monotonic()
            elif time.monotonic() - since > MAX_IDLE_SECONDS:
                break  # nothing moves: leave the rest to a later `study run`
            time.sleep(WAIT_SECONDS)  # the last trials are running elsewhere, or died there
            continue
        run_batch(cfg, st, batch, k, counts, bar, stop.halt)
    return batch.completed


def _wait_for_others(st: Setup, trials: Sequence[FrozenTrial]) -> bool:
    """Whether the RUNNING trials of other workers will end one way or the other: they
    complete, or their worker is found dead (by process id on this host, by heartbeat on an
    RDB storage). A worker on another machine sharing a journal file cannot be judged: then
    this process stops, and a later `study run` there finishes the study."""
    running = [t for t in trials if t.state == TrialState.RUNNING]
    if not running:
        return False
    if heartbeat_enabled(st.study):
        return True
    here = worker_host()
    return all(t.user_attrs.get("worker", f"{here}:0").rpartition(":")[0] == here
               for t in running)


def run_sweep(cfg: Any, *, fresh: bool = False, progress: bool = True,
              heartbeat: int | None = HEARTBEAT_SECONDS) -> SweepSummary:
    """Run (or resume) the sweep of ``cfg`` until ``search.n_trials`` trials are complete.

    ``fresh`` replaces a stored study of the same name; ``progress`` shows a bar on stderr;
    ``heartbeat`` is the interval in seconds of running trials' heartbeats on RDB storages
    (None: no heartbeat). Ctrl-C/SIGTERM return a summary with ``interrupted=True``.
    """
    started = time.perf_counter()
    with store_errors(cfg):
        st = setup(cfg, fresh, heartbeat)
        start_parent(cfg, st)
    complete = complete_trials(st.study)
    counts = Counter(t.user_attrs.get("status") for t in complete)
    bar = progress_bar(progress, st.target, len(complete), counts)
    with Heartbeat(st.study) as beat:
        batch = Batch(st.study, st.space, beat)
        interrupted = run_loop(cfg, st, batch, counts, bar)
    # what this process completed, also when a second signal cut the loop short
    return finish(cfg, st, batch.completed, started, interrupted)


def run_loop(cfg: Any, st: Setup, batch: Batch, counts: Counter, bar: Any, *,
             worker: bool = False, orphaned: Callable[[], bool] = lambda: False) -> bool:
    """:func:`loop` under :class:`Interrupts`; True when a signal stopped it. Then, or on an
    error (raised as one line), the untold trials are failed and queued again and the open
    child run is KILLED; an error also fails the parent run unless this is a ``worker`` (the
    parent process closes it)."""
    # a signal after the loop's own handlers are gone waits for the clean-up (Deferred)
    with Deferred():
        try:
            with Interrupts(quiet=worker) as stop:
                loop(cfg, st, batch, stop, counts, bar, orphaned)
                interrupted = bool(stop.requested)
        except KeyboardInterrupt:
            interrupted = True
        except BaseException as exc:
            bar.close()
            close_after(batch, st.tracker, None if worker else "FAILED")
            raise_as_storage_error(cfg, exc)
            raise
        bar.close()
        if interrupted:
            close_after(batch, st.tracker, "KILLED")
    return interrupted


def finish(cfg: Any, st: Setup, n_new: int, started: float, interrupted: bool,
           failed: bool = False) -> SweepSummary:
    """The summary, with the parent run closed (FINISHED, KILLED or FAILED)."""
    summary = build_summary(cfg, st, n_new, started)
    summary.interrupted = interrupted
    status = "KILLED" if interrupted else "FAILED" if failed else "FINISHED"
    st.tracker.end_parent(status, {"trials_new": n_new, "trials_complete": summary.n_complete,
                                   **{f"trials_{k}": v for k, v in summary.counts.items()}})
    return summary
