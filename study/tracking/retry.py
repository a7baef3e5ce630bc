"""One retry helper for both stores: a call that meets a transient error (a locked sqlite file, a
busy server, two processes creating the same schema) is made again after each of a list of
delays, with the same arguments, so that a retried write carries the same payload and timestamps.
Used by :mod:`study.tracking.runlog` (every MLflow call) and :mod:`study.sweep.storage` (creating
an RDB storage's schema)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

T = TypeVar("T")


def retry(call: Callable[[], T], *, transient: Callable[[BaseException], bool],
          delays: Sequence[float],
          before_retry: Callable[[], T | None] | None = None,
          give_up: Callable[[Exception, int], Exception] | None = None) -> T:
    """``call()``, made up to ``len(delays) + 1`` times: after a failed attempt whose error is
    ``transient``, wait ``delays[i]`` and try again; any other error is raised at once.

    ``before_retry`` runs before each retry and may return a value that makes it unnecessary
    (what the failed attempt did after all, e.g. a run it created); its own transient error
    does not end the retries, the call is simply made. When every attempt failed, the last
    error is raised, or ``give_up(error, attempts)`` is raised from it."""
    attempts = len(delays) + 1
    tried = 0

    def attempt() -> T:
        nonlocal tried
        tried += 1
        if tried > 1 and before_retry is not None:
            try:
                found = before_retry()
            except Exception as exc:
                if not transient(exc):
                    raise
                found = None
            if found is not None:
                return found
        return call()

    def wait(state: RetryCallState) -> float:  # tenacity asks before it checks the stop
        return delays[state.attempt_number - 1] if state.attempt_number <= len(delays) else 0.0

    retrying = Retrying(stop=stop_after_attempt(attempts), wait=wait,
                        retry=retry_if_exception(transient), reraise=True)
    try:
        return retrying(attempt)
    except Exception as exc:
        if give_up is None or not transient(exc):
            raise
        raise give_up(exc, attempts) from exc
