"""Signal handlers installed for a ``with`` block (:mod:`study.sweep.signals`)."""

from __future__ import annotations

import os
import signal
import threading

from study.sweep.signals import Deferred, SignalScope


class Counting(SignalScope):
    def __init__(self) -> None:
        self.seen: list[int] = []

    def _handle(self, signum, frame) -> None:
        self.seen.append(signum)


def test_sigint_and_sigterm_reach_the_scope_and_the_old_handlers_come_back():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with Counting() as scope:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
    assert scope.seen == [signal.SIGTERM, signal.SIGINT]
    assert {s: signal.getsignal(s) for s in before} == before


def test_outside_the_main_thread_nothing_is_installed():
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def enter():
        with Counting():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join()
    assert seen == [before] and signal.getsignal(signal.SIGTERM) is before


def test_deferred_notes_one_signal_and_a_second_one_insists():
    with Deferred() as scope:
        os.kill(os.getpid(), signal.SIGTERM)  # noted: the block goes on
        noted = list(scope.received)
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            insisted = True
        else:
            insisted = False
    assert noted == [signal.SIGTERM] and insisted
