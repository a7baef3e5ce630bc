"""Run a long compiled call so that Ctrl-C stops it within milliseconds.

A compiled loop holds the thread that called it until it returns, and Python runs signal
handlers only between the bytecodes of the main thread: a trial of 10⁹ epochs called from the
main thread would ignore Ctrl-C and SIGTERM for minutes. So a long call runs in a helper thread
(the kernels release the GIL) while the main thread waits in short joins, between which signal
handlers run. The kernels look at a one-byte *halt flag* (:class:`study.core.kernels.Stopping`);

- a handler that raises (Python's own for SIGINT) sets the flag, waits for the call to return
  (milliseconds; a first compile cannot be cut short, so after :data:`GRACE_SECONDS` the helper
  thread, a daemon, is left to the interpreter's exit) and lets the exception propagate;
- a handler that only sets the flag (the sweep's first Ctrl-C) gets the finished trials back,
  the unfinished ones with status ``halted``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

WAIT_SECONDS = 0.1  # between the main thread's looks at a signal
GRACE_SECONDS = 5.0  # how long an interrupted call is waited for before the exception goes on


def halt_flag() -> np.ndarray:
    """A cleared flag: ``flag[0] = 1`` asks the running kernel to stop."""
    return np.zeros(1, dtype=np.uint8)


def run_stoppable(call: Callable[[], None], halt: np.ndarray, *, threaded: bool) -> None:
    """``call()``, in a helper thread when ``threaded`` (a long call), stopped through ``halt``
    by any exception raised in this thread while it waits."""
    if not threaded:
        call()
        return
    raised: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the waiting thread
            raised.append(exc)

    helper = threading.Thread(target=target, name="study-kernel", daemon=True)
    helper.start()
    try:
        while helper.is_alive():
            helper.join(WAIT_SECONDS)
    except BaseException:
        halt[0] = 1
        helper.join(GRACE_SECONDS)
        raise
    if raised:
        raise raised[0]
