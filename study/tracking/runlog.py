"""What a child run holds and how it is sent to MLflow: the payload of a trial's run (params,
metrics, the ``cost`` history, tags), ``log_batch`` split to the request limits, and the retry of
transient store errors.

Metrics are never NaN or ±inf (MLflow would store inf as ±1.8e308 and NaN breaks run pages):
non-finite values are skipped, and unreached tolerances are simply absent. Every call goes
through :func:`retry_store`, which retries ``TEMPORARILY_UNAVAILABLE`` and sqlite lock errors with
backoff while reusing the same payload and timestamps, so a retried ``log_batch`` does not add
duplicate points.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from study.core.engine import Result, Settings
from study.errors import StorageError
from study.tracking.keys import tol_key
from study.tracking.retry import retry
from study.tracking.workerid import worker_id

STATUS_TO_RUN_STATUS = {"converged": "FINISHED", "max_epochs": "FINISHED", "diverged": "FAILED"}
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100  # log_batch limits per request
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)  # seconds between attempts of one call
WORKER_TAG = "study.worker"

T = TypeVar("T")


def first_line(exc: BaseException) -> str:
    """An error's first line: sqlalchemy appends the statement and a help URL on later ones."""
    text = exc.message if isinstance(exc, MlflowException) else str(exc)
    return str(text).strip().split("\n")[0] or type(exc).__name__


class Unavailable(StorageError):
    """A transient MLflow store error (a lock, a busy server) that outlasted every attempt of
    one call; :func:`as_storage_error` names the store."""

    def __init__(self, what: str, attempts: int, reason: str,
                 store: str = "the MLflow store", after: str = "") -> None:
        self.what, self.attempts, self.reason = what, attempts, reason
        super().__init__(f"{store} stayed unavailable while trying to {what} ({attempts} "
                         f"attempt{'s' if attempts > 1 else ''}): {reason}{after}")


RESUME = " (the trials told so far are kept; run again to resume)"


def as_storage_error(uri: str, exc: BaseException) -> StorageError | None:
    """A one-line StorageError naming the store for an MLflow error that stopped a sweep, else
    None."""
    if isinstance(exc, Unavailable):
        return Unavailable(exc.what, exc.attempts, exc.reason, f"the MLflow store {uri}", RESUME)
    if isinstance(exc, MlflowException):
        return StorageError(f"the MLflow store {uri} failed: {first_line(exc)}{RESUME}")
    return None


def retryable(exc: BaseException) -> bool:
    if isinstance(exc, MlflowException):
        if exc.error_code == "TEMPORARILY_UNAVAILABLE":
            return True
    text = str(exc).lower()
    return "database is locked" in text or "database table is locked" in text


def collided(exc: BaseException) -> bool:
    """Two processes inserted the same row at once (e.g. two parents logging one data set):
    the loser's retry finds the winner's row."""
    text = str(exc)
    return any(s in text for s in ("IntegrityError", "UniqueViolation", "UNIQUE constraint"))


def retry_store(call: Callable[[], T], what: str,
                before_retry: Callable[[], T | None] | None = None,
                delays: Sequence[float] | None = None,
                transient: Callable[[BaseException], bool] = retryable) -> T:
    """Run ``call``; on a transient store error wait and try again with the same payload, after
    each of ``delays`` (default ``RETRY_DELAYS``, read when called); when every attempt failed,
    :class:`Unavailable` says what was tried.

    ``before_retry`` may return a value that makes the retry unnecessary (a run that the failed
    attempt did create after all); a transient error of its own is one more failed attempt."""
    delays = RETRY_DELAYS if delays is None else delays
    return retry(call, transient=transient, delays=delays, before_retry=before_retry,
                 give_up=lambda exc, attempts: Unavailable(what, attempts, first_line(exc)))


def _chunks(items: Sequence, size: int) -> list[Sequence]:
    return [items[i: i + size] for i in range(0, len(items), size)]


def log_batch(client: MlflowClient, run_id: str, metrics: Sequence[Metric] = (),
              params: Sequence[Param] = (), tags: Sequence[RunTag] = (),
              transient: Callable[[BaseException], bool] = retryable) -> int:
    """``log_batch`` split to the per-request limits; returns the number of calls made.
    ``transient``: the errors worth another attempt (default: locks, a busy server)."""
    m, p, t = _chunks(metrics, MAX_METRICS), _chunks(params, MAX_PARAMS), _chunks(tags, MAX_TAGS)
    calls = max(len(m), len(p), len(t))
    for i in range(calls):
        batch = (m[i] if i < len(m) else [], p[i] if i < len(p) else [],
                 t[i] if i < len(t) else [])
        retry_store(lambda b=batch: client.log_batch(run_id, metrics=b[0], params=b[1], tags=b[2],
                                                     synchronous=True), "log a batch",
                    transient=transient)
    return calls


def finite(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool) \
        and math.isfinite(float(value))


def param_text(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


# ── child runs ──────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class TrialRecord:
    """What a child run shows: one trial's inputs and its engine result."""

    study: str
    study_uid: str
    number: int
    params: Mapping[str, Any]  # as in the config: lr, epochs, init_m, …, swept settings
    settings: Settings
    seed: int
    result: Result
    param_names: tuple[str, ...]  # ("m", "b") or ("w1", …, "b")
    started_ms: int = 0  # when its batch was asked (ms since the epoch); 0: when logged


    @property
    def run_name(self) -> str:
        return f"{self.study}-{self.number}"


def result_values(result: Result, param_names: Sequence[str]) -> dict[str, Any]:
    """The flat, named result of a trial (None where unreached); shared by MLflow and Optuna."""
    out: dict[str, Any] = {f"final_{n}": float(v) for n, v in zip(param_names, result.theta,
                                                                  strict=True)}
    out.update(final_cost=result.cost, initial_cost=result.initial_cost,
               dist_to_ols=result.dist_to_ols, cost_gap=result.cost_gap,
               rel_cost_gap=result.rel_cost_gap, grad_norm=result.grad_norm,
               epochs_run=result.epochs_run, diverged_at=result.diverged_at)
    for tol, epoch in result.first_param_epoch.items():
        out[tol_key("epochs_to_param_tol", tol)] = epoch
    for tol, epoch in result.first_cost_epoch.items():
        out[tol_key("epochs_to_cost_tol", tol)] = epoch
    return out


def history_csv(result: Result, param_names: Sequence[str]) -> str:
    """The engine's checkpoints as CSV: ``epoch,cost[,<param>…]``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    path = result.history_theta
    writer.writerow(["epoch", "cost", *(param_names if path is not None else ())])
    for i, (epoch, cost) in enumerate(zip(result.history_epoch, result.history_cost,
                                          strict=True)):
        row = [int(epoch), repr(float(cost))]
        if path is not None:
            row += [repr(float(v)) for v in path[i]]
        writer.writerow(row)
    return buf.getvalue()


# Settings every trial's run depends on, whatever its optimizer (a stopping rule that is None
# is left out); then those that only one optimizer reads. The settings that only shape what is
# recorded (history_points, history_dense, param_tols, cost_tols, record_path) and the
# algorithm seed are on the parent run, as ``algorithm.*``.
RUN_SETTINGS = ("optimizer", "cost", "standardize", "divergence_factor", "tol_param",
                "tol_grad", "tol_cost_change")
OPTIMIZER_SETTINGS = {"gd": ("update",), "momentum": ("update", "momentum"),
                      "minibatch": ("update", "batch_size"),
                      "line_search": ("line_search", "armijo", "shrink")}


def trial_params(rec: TrialRecord) -> dict[str, Any]:
    """A child run's params: the trial's own values (lr, epochs, start, swept settings) first,
    then the settings that apply to its optimizer; ``seed`` (the minibatch shuffle) only for
    minibatch, ``armijo``/``shrink`` only for the backtracking line search."""
    settings = rec.settings
    names = [*RUN_SETTINGS, *OPTIMIZER_SETTINGS.get(settings.optimizer, ())]
    if settings.optimizer == "line_search" and settings.line_search != "backtracking":
        names = [n for n in names if n not in ("armijo", "shrink")]
    out: dict[str, Any] = dict(rec.params)
    for name in names:
        value = getattr(settings, name)
        if value is not None:
            out.setdefault(name, value)
    if settings.optimizer == "minibatch":
        out["seed"] = rec.seed
    return out


def trial_payload(rec: TrialRecord, timestamp: int, parent_run_id: str | None
                  ) -> tuple[dict[str, str], list[Metric], list[Param], list[RunTag]]:
    """(creation tags, metrics, params, extra tags) of a child run; pure, so a retry or the
    benchmark's floor sends exactly the same thing. Params: :func:`trial_params`; metrics: the
    trial's results only (its inputs are params) and the ``cost`` history."""
    res = rec.result
    create_tags = {"optuna.study": rec.study, "optuna.study_uid": rec.study_uid,
                   "optuna.trial_number": str(rec.number), WORKER_TAG: worker_id()}
    if parent_run_id:
        create_tags["mlflow.parentRunId"] = parent_run_id
    params = [Param(k, param_text(v)) for k, v in trial_params(rec).items()]
    metrics = [Metric(k, float(v), timestamp, 0)
               for k, v in result_values(res, rec.param_names).items() if finite(v)]
    metrics += [Metric("cost", float(c), timestamp, int(e))
                for e, c in zip(res.history_epoch, res.history_cost, strict=True)
                if math.isfinite(c)]
    tags = [RunTag("status", res.status)]
    return create_tags, metrics, params, tags
