"""The report's figures drawn on both cores by helper processes forked at the start.

A fresh ``study report`` on the quickstart spends about 0.8 s reading the config and the trials
(pydantic, pandas, Optuna), 0.4 s importing matplotlib and 1.1 s drawing six figures; matplotlib
draws in Python, one figure at a time on one core. Two painters forked before the config is
read import matplotlib while this process reads the trials; then each draws whole figures as
they are handed out, one job at a time to whichever is free. This process never imports
matplotlib.

A painter is forked from this process (``os.fork``, Linux only) while no other thread runs, and
ends with ``os._exit`` so nothing of this process (buffers, ``atexit``, context managers) runs
twice. Ctrl-C is this process's to handle: painters ignore SIGINT and are ended when the
``with`` block exits by an error. A painter that dies has its job done here instead. Where a
fork is not possible (another OS, threads running as at the end of ``study run`` with MLflow
loaded) :func:`painters` gives :class:`InProcess`, which does the same jobs one after another:
the same files either way.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, Pipe, wait
from typing import Any


@dataclass(frozen=True)
class Job:
    """``call(*args)`` under ``key``."""

    key: str
    call: Callable[..., Any]
    args: tuple


class InProcess:
    """Jobs done here, one after another."""

    def run(self, jobs: Sequence[Job]) -> dict[str, Any]:
        """{key: call(*args)} of every job."""
        return {job.key: job.call(*job.args) for job in jobs}


@dataclass
class _Painter:
    pid: int
    conn: Connection
    alive: bool = True


class Forked(InProcess):
    """Jobs done by forked painters (see the module's text)."""

    def __init__(self, painters: list[_Painter]) -> None:
        self.painters = painters

    def run(self, jobs: Sequence[Job]) -> dict[str, Any]:
        queue = list(jobs)
        busy: dict[int, Job] = {}
        results: dict[str, Any] = {}

        def hand_out(p: _Painter) -> None:
            if not queue:
                return
            job = queue.pop(0)
            try:
                p.conn.send((job.call, job.args))
            except OSError:  # the painter died: another one, or this process, does the job
                queue.insert(0, job)
                self._lose(p)
                return
            busy[p.pid] = job

        for p in list(self.painters):
            hand_out(p)
        while busy:
            ready = wait([p.conn for p in self.painters if p.pid in busy])
            for p in [p for p in self.painters if p.conn in ready]:
                job = busy.pop(p.pid)
                try:
                    ok, value = p.conn.recv()
                except (EOFError, OSError):  # the painter died: its job is done here
                    self._lose(p)
                    results[job.key] = job.call(*job.args)
                    continue
                if not ok:
                    raise value
                results[job.key] = value
                hand_out(p)
        results.update(super().run(queue))  # left when every painter died
        return results

    def _lose(self, p: _Painter) -> None:
        p.alive = False
        self.painters.remove(p)


def fork_is_safe() -> bool:
    """A fork that copies no other thread's half-done work (locks held, buffers)."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


@contextmanager
def painters(count: int = 2) -> Iterator[InProcess]:
    """``count`` forked painters, or :class:`InProcess` when a fork is not safe here. The
    painters end with the block."""
    if count < 1 or not fork_is_safe():
        yield InProcess()
        return
    started: list[_Painter] = []
    try:
        for _ in range(count):
            started.append(_fork([p.conn for p in started]))
    except OSError:  # no fork now (out of memory or processes): the figures are drawn here
        for p in started:
            _end(p, signal.SIGKILL)
        yield InProcess()
        return
    try:
        yield Forked(list(started))
    except BaseException:
        for p in started:  # an error or Ctrl-C here: the painters' work is not wanted
            _end(p, signal.SIGKILL)
        raise
    for p in started:
        _end(p, None)


def _fork(others: list[Connection]) -> _Painter:
    mine, theirs = Pipe()
    sys.stdout.flush()  # a buffer copied into the painter must not be written twice
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the painter
        code = 1
        try:
            for conn in (mine, *others):  # only this process talks to the painters
                conn.close()
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command's Ctrl-C is the parent's
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _serve(theirs)
            code = 0
        finally:
            os._exit(code)
    theirs.close()
    return _Painter(pid, mine)


def _end(p: _Painter, sig: signal.Signals | None, patience: float = 5.0) -> None:
    """End one painter: told to stop (it is idle between jobs), or killed; then reaped. One
    told to stop that is still there after ``patience`` seconds is killed."""
    try:
        if sig is None and p.alive:
            p.conn.send(None)
        else:
            os.kill(p.pid, sig or signal.SIGKILL)
    except (OSError, ValueError):
        pass  # gone already
    p.conn.close()
    deadline = time.monotonic() + patience
    try:
        while os.waitpid(p.pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(p.pid, signal.SIGKILL)
                os.waitpid(p.pid, 0)
                return
            time.sleep(0.01)
    except ChildProcessError:
        pass  # reaped already


def _serve(conn: Connection) -> None:
    """The painter's loop: import the drawing, then do jobs until told to stop or the other
    end of the pipe closes."""
    from study.report import build, drawing  # noqa: F401  (while the trials are read)

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        call, args = message
        try:
            answer = (True, call(*args))
        except Exception as exc:  # sent back, raised there
            exc.add_note("raised in a painter process:\n" + traceback.format_exc())  # --debug
            answer = (False, exc)
        try:
            conn.send(answer)
        except Exception:  # an error that does not pickle: its text
            conn.send((False, RuntimeError(f"{type(answer[1]).__name__}: {answer[1]}")))

