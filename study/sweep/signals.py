"""Signal handlers installed for the length of a ``with`` block."""

from __future__ import annotations

import signal
import threading
from typing import Any


class SignalScope:
    """While entered, SIGINT and SIGTERM go to ``self._handle``; the old handlers come back on
    exit. Only the main thread can install handlers, so elsewhere this does nothing."""

    _old: dict[int, Any]

    def _handle(self, signum: int, frame: Any) -> None:
        raise NotImplementedError

    def __enter__(self):
        self._old = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Deferred(SignalScope):
    """For a short clean-up that a further Ctrl-C must not cut in half (trials left RUNNING):
    the first SIGINT or SIGTERM is noted and waits for the block's end; a second one raises
    KeyboardInterrupt (the user insists)."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def _handle(self, signum: int, frame: Any) -> None:
        self.received.append(signum)
        if len(self.received) > 1:
            raise KeyboardInterrupt
