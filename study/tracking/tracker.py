"""MLflow bookkeeping of a sweep: one experiment, one parent run per study, one child run per
trial. With :mod:`study.tracking.runlog` (what a child run holds, retries) and
:mod:`study.tracking._mlflow_private` the only modules that import mlflow; they know nothing about
Optuna.

Layout in the tracking store:

- experiment = the config's ``name``, created once (create-or-get under a file lock for local
  sqlite stores; its id is then passed explicitly to every call, never ``set_experiment``);
- the experiment is tagged ``mlflow.experimentKind = custom_model_development`` (model
  training), the kind MLflow's UI records when one picks it there. MLflow 3.17's UI opens an
  experiment on the view of its global GenAI / Model training switch whatever this tag says, so
  the sweep's summary also prints the link to the runs (``?workflowType=machine_learning``);
- parent run (one per study, found again by its study uid and config hash and reopened by
  every later ``study run``): the resolved config as ``config.yaml``, the data set as an MLflow
  dataset input, N and column names, OLS θ* and J*, the Hessian spectrum and lr_max as
  metrics, sampler and seed as params, package versions as tags; each invocation as a tag
  ``study.invocation.<k>`` (when, by which process, which params changed) and its closing
  counts as metrics at step k;
- child run per trial, named ``<study>-<trial number>``, tagged ``mlflow.parentRunId`` (so it
  works across processes), ``optuna.study``, ``optuna.study_uid``, ``optuna.trial_number`` and
  ``status``; it starts when its batch was asked and ends when it is logged (the engine runs a
  batch at once, so its duration is the batch's); params: the trial's own values and only the
  settings its optimizer reads (:func:`study.tracking.runlog.trial_params`); metrics: its
  results and the checkpointed cost as step metric ``cost`` (step = epoch); the checkpoint
  history as ``history.csv``.

Run status mapping (the run status tells the truth about the trial):

=============  ===============  =================================================
trial status   MLflow status    why
=============  ===============  =================================================
converged      FINISHED         a good run
max_epochs     FINISHED         a valid result; the ``status`` tag says it stopped on budget
diverged       FAILED           GD failed; metrics hold the last finite values
interrupted    KILLED           Ctrl-C/SIGTERM while logging, or a worker found dead at start-up
=============  ===============  =================================================

Metrics are never NaN or ±inf, and every call is retried on transient store errors with the
same payload and timestamps (:mod:`study.tracking.runlog`). A child run is looked up by (study
uid, trial number) before it is created, so a retry never makes two runs for one trial. Runs of
trials failed because their worker died are marked KILLED (:meth:`Tracker.kill_trial_runs`,
:meth:`Tracker.reap_dead_workers`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import (
    Dataset,
    DatasetInput,
    InputTag,
    Metric,
    Param,
    Run,
    RunStatus,
    RunTag,
)
from mlflow.exceptions import MlflowException

from study.errors import StorageError
from study.tracking._mlflow_private import log_text_artifact, quiet_store_errors
from study.tracking.runlog import (
    STATUS_TO_RUN_STATUS,
    WORKER_TAG,
    TrialRecord,
    Unavailable,
    collided,
    finite,
    first_line,
    history_csv,
    log_batch,
    param_text,
    retry_store,
    retryable,
    trial_payload,
)
from study.tracking.sqlite_store import ensure_store, store_lock
from study.tracking.uri import artifact_root, sqlite_path, sqlite_store_missing
from study.tracking.workerid import worker_id, worker_is_dead

PARENT_ROLE = ("study.role", "sweep")  # the tag of a study's parent run
PARENT_KEYS = ("optuna.study_uid", "config_hash", "optuna.study")  # what finds it again
INVOCATIONS_TAG = "study.invocations"  # how many `study run`s opened the parent run
# the experiment's kind as MLflow's UI writes it when "Model training" is chosen (MLflow 3.17's
# UI itself now follows its global GenAI / Model training switch; see the module docstring)
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")

# ── the tracker ─────────────────────────────────────────────────────────────────────────────


def _quiet_migrations() -> None:
    # A new sqlite store prints its schema migration at INFO; a sweep's output is its summary.
    for name in ("alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    quiet_store_errors()


class Tracker:
    """One experiment in one tracking store; see the module docstring for what is logged."""

    def __init__(self, uri: str, experiment: str, *, create: bool = True) -> None:
        self.uri = uri
        self.experiment = experiment
        self.parent_run_id: str | None = None
        self.invocation = 0  # the how-manieth ``study run`` of the study this one is
        self.owns_parent = True
        self._open_child: str | None = None
        self.store_note: str | None = None  # what start-up did to a half-built store
        _quiet_migrations()
        # a tracking server would print two "View run" lines per closed run (and fetch the run
        # again to make them); the summary says where the runs are
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        if not create:
            self.client = MlflowClient(tracking_uri=uri)
            self.experiment_id = ""
            return
        db = sqlite_path(uri)
        if db is None:
            self.client = MlflowClient(tracking_uri=uri)
            self.experiment_id = self._experiment_id()
            return
        # A new store is built beside its place and renamed into it (a kill during MLflow's
        # in-place migration tears it); a half-built one is rebuilt or refused. The
        # experiment's create-or-get takes the same lock.
        self.store_note = ensure_store(db)
        with store_lock(db):
            self.client = MlflowClient(tracking_uri=uri)
            self.experiment_id = self._experiment_id()

    @classmethod
    def attach(cls, uri: str, experiment: str, experiment_id: str,
               parent_run_id: str | None) -> Tracker:
        """A worker's tracker: the experiment and the parent run exist (made once by the
        process that started the workers); nothing is created or migrated here, and the
        parent run is left for its owner to close."""
        tracker = cls(uri, experiment, create=False)
        tracker.experiment_id = str(experiment_id)
        tracker.parent_run_id = parent_run_id
        tracker.owns_parent = False
        return tracker

    def _experiment_id(self) -> str:
        try:
            exp = retry_store(lambda: self.client.get_experiment_by_name(self.experiment),
                              "read the experiment")
            if exp is not None:
                if exp.lifecycle_stage == "deleted":
                    raise StorageError(f"MLflow experiment {self.experiment!r} is deleted in "
                                       f"{self.uri}; restore it or choose another name")
                return exp.experiment_id
            root = artifact_root(self.uri)
            location = None if root is None else (root / self.experiment).as_uri()
            try:
                return self.client.create_experiment(self.experiment, artifact_location=location)
            except MlflowException as exc:  # another worker created it first
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                return self.client.get_experiment_by_name(self.experiment).experiment_id
        except MlflowException as exc:
            raise StorageError(f"cannot use the MLflow store {self.uri}: {first_line(exc)}") \
                from exc
        except OSError as exc:
            raise StorageError(f"cannot use the MLflow store {self.uri}: {exc}") from exc

    def runs_exist(self, run_ids: Sequence[str]) -> bool:
        """Whether every run of ``run_ids`` is in this experiment (a store deleted and made
        again, or another store at the same URI, holds none of a study's runs)."""
        for run_id in run_ids:
            try:
                run = retry_store(lambda r=run_id: self.client.get_run(r), "read a run")
            except MlflowException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                    return False
                raise
            if run.info.experiment_id != self.experiment_id:
                return False
        return True

    # parent ─────────────────────────────────────────────────────────────────────────────────

    def start_parent(self, run_name: str, *, config_yaml: str, dataset: DatasetInput | None,
                     params: Mapping[str, Any], metrics: Mapping[str, float],
                     tags: Mapping[str, str]) -> str:
        """Open the study's parent run and record this invocation on it.

        The first ``study run`` of a study creates it and logs what describes the whole sweep;
        a later one (a resume, another machine's worker) finds it by its ``study.role`` tag and
        the ``optuna.study_uid`` / ``config_hash`` / ``optuna.study`` tags given, sets it
        RUNNING again, and logs only the params it does not hold yet (MLflow params cannot
        change: a changed value, e.g. ``n_trials``, is written in the invocation's tag)."""
        now = int(time.time() * 1000)
        self._mark_experiment_kind()
        run = self._find_parent(tags)
        if run is None:
            run = retry_store(lambda: self.client.create_run(
                self.experiment_id, start_time=now, run_name=run_name,
                tags={**tags, WORKER_TAG: worker_id(), PARENT_ROLE[0]: PARENT_ROLE[1]}),
                "create the parent run")
            first = self._find_parent(tags)  # processes starting together: the first one wins
            if first is not None and first.info.run_id != run.info.run_id:
                mine = run.info.run_id
                retry_store(lambda: self.client.delete_run(mine), "drop a duplicate parent run")
                run = first
        held: Mapping[str, str] = run.data.params
        if held:  # made by an earlier invocation (or a process that started at the same time)
            retry_store(lambda: self.client.update_run(run.info.run_id, status="RUNNING"),
                        "reopen the parent run")
        run_id = run.info.run_id
        self.parent_run_id = run_id
        self.invocation = int(run.data.tags.get(INVOCATIONS_TAG, "0")) + 1
        texts = {k: param_text(v) for k, v in params.items()}
        changed = [f"{k}={v} (was {held[k]})" for k, v in texts.items()
                   if k in held and held[k] != v]
        note = (f"started {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now / 1000))} by "
                f"{worker_id()}" + (f"; changed: {', '.join(changed)}" if changed else ""))
        log_batch(self.client, run_id,
                  metrics=[] if held else [Metric(k, float(v), now, 0)
                                           for k, v in metrics.items() if finite(v)],
                  params=[Param(k, v) for k, v in texts.items() if k not in held],
                  tags=[RunTag(INVOCATIONS_TAG, str(self.invocation)),
                        RunTag(f"study.invocation.{self.invocation}", note)],
                  # processes starting together log the same params at once: the loser's
                  # retry finds them logged, with the same values
                  transient=lambda e: retryable(e) or collided(e))
        retry_store(lambda: self.client.log_text(run_id, config_yaml, "config.yaml"), "log config")
        if dataset is not None and not run.inputs.dataset_inputs:
            retry_store(lambda: self.client.log_inputs(run_id, [dataset]), "log the data set",
                        transient=lambda e: retryable(e) or collided(e))
        return run_id

    def _find_parent(self, tags: Mapping[str, str]) -> Run | None:
        """The study's parent run: tagged ``study.role = sweep`` and with the same study keys."""
        keys = {k: tags[k] for k in PARENT_KEYS if tags.get(k)}
        if not keys:
            return None
        flt = " AND ".join([f"tags.`{PARENT_ROLE[0]}` = '{PARENT_ROLE[1]}'",
                            *(f"tags.`{k}` = '{v}'" for k, v in keys.items())])
        runs = retry_store(lambda: self.client.search_runs(
            [self.experiment_id], flt, order_by=["attributes.start_time ASC"], max_results=100),
            "search runs")
        return min(runs, key=lambda r: (r.info.start_time, r.info.run_id)) if runs else None

    def _mark_experiment_kind(self) -> None:
        """Tag the experiment as model training (``mlflow.experimentKind``); a kind someone
        chose in the UI is kept."""
        def tagged() -> bool:
            exp = retry_store(lambda: self.client.get_experiment(self.experiment_id),
                              "read the experiment")
            return EXPERIMENT_KIND[0] in exp.tags

        if tagged():
            return
        try:
            retry_store(lambda: self.client.set_experiment_tag(self.experiment_id,
                                                               *EXPERIMENT_KIND),
                        "tag the experiment")
        except MlflowException:
            # another process (a second machine starting on the same study) tagged it between
            # the read and the write: a tracking server on PostgreSQL refuses the second insert
            if not tagged():
                raise

    def end_parent(self, status: str, metrics: Mapping[str, float] | None = None,
                   patient: bool = True) -> None:
        """Close the parent run (FINISHED, KILLED or FAILED), with closing metrics; a worker's
        tracker leaves it to the process that made it. ``patient=False``: no retries."""
        if self.parent_run_id is None or not self.owns_parent:
            return
        run_id, now = self.parent_run_id, int(time.time() * 1000)
        delays = None if patient else ()
        if metrics:  # one point per invocation: step k is the k-th ``study run``
            step = self.invocation
            log_batch(self.client, run_id, metrics=[Metric(k, float(v), now, step)
                                                    for k, v in metrics.items() if finite(v)])
        retry_store(lambda: self.client.set_terminated(run_id, status, end_time=now), "end the run",
                    delays=delays)
        self.parent_run_id = None

    # children ───────────────────────────────────────────────────────────────────────────────

    def existing_children(self, study_uid: str, since_ms: int) -> dict[int, Run]:
        """Child runs by trial number of ``study_uid`` started at or after ``since_ms``: one
        query per batch instead of one per trial."""
        flt = (f"tags.`optuna.study_uid` = '{study_uid}' "
               f"AND attributes.start_time >= {int(since_ms)}")
        found: dict[int, Run] = {}
        token = None
        while True:
            page = retry_store(lambda t=token: self.client.search_runs(
                [self.experiment_id], flt, max_results=1000, page_token=t), "search runs")
            for run in page:
                number = run.data.tags.get("optuna.trial_number")
                if number is not None and number.isdigit():
                    found.setdefault(int(number), run)
            token = page.token
            if not token:
                return found

    def _find_child(self, study_uid: str, number: int) -> Run | None:
        flt = (f"tags.`optuna.study_uid` = '{study_uid}' "
               f"AND tags.`optuna.trial_number` = '{number}'")
        runs = self.client.search_runs([self.experiment_id], flt, max_results=1)
        return runs[0] if runs else None

    def log_trial(self, rec: TrialRecord, existing: Run | None = None) -> str:
        """Create the trial's child run, log it in a few batched calls and close it.

        An ``existing`` run of the same trial is returned as is when it was closed, and
        completed otherwise, with its own start time as the timestamp of every point so that
        points logged before are not repeated."""
        start = int(rec.started_ms) or int(time.time() * 1000)
        run = None
        if existing is not None:
            if existing.info.status != "RUNNING":
                return existing.info.run_id
            run, start = existing, int(existing.info.start_time)
        create_tags, metrics, params, tags = trial_payload(rec, start, self.parent_run_id)
        if run is None:
            run = retry_store(
                lambda: self.client.create_run(self.experiment_id, start_time=start,
                                               tags=create_tags, run_name=rec.run_name),
                "create a trial run",
                before_retry=lambda: self._find_child(rec.study_uid, rec.number))
        run_id = run.info.run_id
        self._open_child = run_id
        log_batch(self.client, run_id, metrics, params, tags)
        text = history_csv(rec.result, rec.param_names)
        retry_store(lambda: log_text_artifact(run.info.artifact_uri, self.uri, text,
                                              "history.csv"),
                    "log the history")
        status = STATUS_TO_RUN_STATUS[rec.result.status]
        end = max(int(time.time() * 1000), start + 1)  # a real duration, never 0 ms
        retry_store(lambda: self.client.set_terminated(run_id, status, end_time=end), "end the run")
        self._open_child = None
        return run_id

    def kill_open_child(self, patient: bool = True) -> None:
        """Mark a child run interrupted mid-logging KILLED (Ctrl-C/SIGTERM)."""
        if self._open_child is not None:
            run_id, self._open_child = self._open_child, None
            retry_store(lambda: self.client.set_terminated(run_id, "KILLED",
                                                           end_time=int(time.time() * 1000)),
                        "end an interrupted run", delays=None if patient else ())

    def mark_killed(self, run_id: str, reason: str) -> None:
        """Mark a closed child run KILLED, with the reason as the tag ``study.killed``."""
        retry_store(lambda: self.client.set_tag(run_id, "study.killed", reason), "tag a run")
        retry_store(lambda: self.client.update_run(run_id, status="KILLED"), "end a run")

    def kill_trial_runs(self, study_uid: str, numbers: Sequence[int], patient: bool = True
                        ) -> int:
        """Mark KILLED the child runs of trials ``numbers`` of ``study_uid``, which were failed
        and queued again (their worker died, or stopped before telling them): a run left
        RUNNING, and also one logged in full whose trial was never told, so that every
        FINISHED or FAILED run belongs to a complete trial. Returns how many."""
        delays = None if patient else ()
        now, killed = int(time.time() * 1000), 0
        for number in numbers if study_uid else ():
            flt = (f"tags.`optuna.study_uid` = '{study_uid}' AND "
                   f"tags.`optuna.trial_number` = '{int(number)}'")
            found = retry_store(lambda f=flt: self.client.search_runs([self.experiment_id], f),
                                "search runs", delays=delays)
            for run in found:
                if run.info.status == "KILLED":
                    continue
                if run.info.status == "RUNNING":
                    retry_store(lambda r=run: self.client.set_terminated(
                        r.info.run_id, "KILLED", end_time=now), "end a dead run", delays=delays)
                else:
                    self.mark_killed(run.info.run_id, "its trial was never told; run again")
                killed += 1
        return killed

    def reap_dead_workers(self) -> int:
        """Mark RUNNING runs of dead processes on this host KILLED (kill -9 leaves them
        RUNNING for ever); returns how many."""
        flt = f"attributes.status = '{RunStatus.to_string(RunStatus.RUNNING)}'"
        runs = retry_store(lambda: self.client.search_runs([self.experiment_id], flt,
                                                           max_results=1000), "search runs")
        dead = [r for r in runs if worker_is_dead(r.data.tags.get(WORKER_TAG))]
        now = int(time.time() * 1000)
        for run in dead:
            retry_store(lambda r=run: self.client.set_terminated(r.info.run_id, "KILLED",
                                                                 end_time=now), "end a dead run")
        return len(dead)


def dataset_input(name: str, source: str, digest: str, columns: Sequence[str], n_rows: int,
                  targets: str) -> DatasetInput:
    """An MLflow dataset input: name, source path, digest, column schema and size."""
    schema = {"mlflow_colspec": [{"type": "double", "name": c, "required": True}
                                 for c in columns]}
    profile = {"num_rows": n_rows, "num_elements": n_rows * len(columns), "targets": targets}
    entity = Dataset(name=name, digest=digest, source_type="local",
                     source=json.dumps({"uri": source}), schema=json.dumps(schema),
                     profile=json.dumps(profile))
    return DatasetInput(entity, tags=[InputTag("mlflow.data.context", "training")])


def package_versions(names: Iterable[str] = ("study", "numpy", "optuna", "mlflow")
                     ) -> dict[str, str]:
    """Installed versions, read from package metadata (nothing is imported)."""
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


def sweep_run(uri: str, experiment: str) -> tuple[MlflowClient, str] | None:
    """A client of the store and the id of the latest parent run of ``experiment`` (the run
    tagged ``study.role = sweep`` that started last); None when the store, the experiment or a
    parent run does not exist (nothing is created)."""
    if sqlite_store_missing(uri):
        return None
    _quiet_migrations()
    client = MlflowClient(tracking_uri=uri)
    with _naming_store(uri):
        exp = retry_store(lambda: client.get_experiment_by_name(experiment), "read the experiment")
        if exp is None or exp.lifecycle_stage == "deleted":
            return None
        runs = retry_store(lambda: client.search_runs(
            [exp.experiment_id], "tags.`study.role` = 'sweep'",
            order_by=["attributes.start_time DESC"], max_results=1), "search runs")
    return (client, runs[0].info.run_id) if runs else None


def log_folder(uri: str, run: tuple[MlflowClient, str], folder: str | Path,
               artifact_path: str = "report") -> str:
    """Log every file under ``folder`` as artifacts (under ``artifact_path``) of ``run`` (from
    :func:`sweep_run`); returns its id."""
    client, run_id = run
    with _naming_store(uri):
        retry_store(lambda: client.log_artifacts(run_id, str(folder), artifact_path),
                    "log the report")
    return run_id


def log_report_artifacts(uri: str, experiment: str, folder: str | Path) -> str | None:
    """Log ``folder`` to the latest parent run of ``experiment`` (:func:`sweep_run`); its id,
    or None when there is none."""
    run = sweep_run(uri, experiment)
    return None if run is None else log_folder(uri, run, folder)


@contextmanager
def _naming_store(uri: str) -> Iterator[None]:
    """A store that stays unavailable past the retries, named in the error."""
    try:
        yield
    except Unavailable as exc:
        raise Unavailable(exc.what, exc.attempts, exc.reason, f"the MLflow store {uri}") \
            from exc
