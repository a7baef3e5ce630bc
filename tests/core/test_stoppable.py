"""Every trial can be stopped from outside (issue: a trial of 10⁹ epochs ignored Ctrl-C): the
kernels poll a halt flag, a long batch runs in a helper thread, and an exception in the waiting
thread (Ctrl-C) stops it within milliseconds. A halted trial's state is exactly the state of a
run whose budget is the epochs it had done."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from test_engine import RULE_IDS, RULE_TABLE

from study.core import engine as E
from study.core.stoppable import halt_flag, run_stoppable

LONG = 10**9  # minutes to an hour per trial for every rule: only a halt ends it in a test
HALT_AFTER = 0.3
# generous for a loaded 2-core machine: the kernels look at the flag within a millisecond
WITHIN = 5.0


def _halted_run(problem, settings: E.Settings, lr: float) -> tuple[list[E.Result], float]:
    """Two 10⁹-epoch trials; the flag is set HALT_AFTER s after the start; (results, seconds)."""
    halt = halt_flag()
    trials = [E.Trial(lr, LONG, (0.5, -0.5), settings), E.Trial(lr, LONG, (1.0, 2.0), settings)]
    E.run(problem, [E.Trial(lr, 10, (0.0, 0.0), settings)])  # compiled before the clock starts
    timer = threading.Timer(HALT_AFTER, lambda: halt.__setitem__(0, 1))
    started = time.perf_counter()
    timer.start()
    try:
        results = E.run(problem, trials, halt)
    finally:
        timer.cancel()
    return results, time.perf_counter() - started


@pytest.mark.parametrize(("name", "settings", "lr", "ref"), RULE_TABLE, ids=RULE_IDS)
def test_every_rule_stops_when_halted_and_keeps_its_exact_state(nedrich, name, settings, lr,
                                                                  ref):
    s = E.Settings(**settings)
    lr = 1e-9 if name[0] != "line_search" else lr  # far from converging in 10⁹ epochs
    (first, second), seconds = _halted_run(nedrich, s, lr)
    assert seconds < HALT_AFTER + WITHIN, f"{name}: the halt took {seconds - HALT_AFTER:.2f} s"
    assert first.status == second.status == E.HALTED
    assert 0 < first.epochs_run < LONG
    assert second.epochs_run == 0  # never started: its start state
    np.testing.assert_array_equal(second.theta, [1.0, 2.0])
    # the state at the halt is the state after that many epochs: rerun with that budget
    again = E.run_one(nedrich, E.Trial(lr, first.epochs_run, (0.5, -0.5), s))
    assert again.status == "max_epochs" and again.epochs_run == first.epochs_run
    np.testing.assert_array_equal(first.theta, again.theta)
    assert first.cost == again.cost


def test_threaded_and_inline_batches_agree_to_the_last_bit(nedrich, monkeypatch):
    trials = [E.Trial(lr, 3000, (m, 1.0), E.Settings(**row[1]))
              for lr, m in ((1e-5, 0.0), (2e-4, 3.0)) for row in RULE_TABLE]
    monkeypatch.setattr(E, "THREADED_WORK", 10**18)
    inline = E.run(nedrich, trials)
    monkeypatch.setattr(E, "THREADED_WORK", 0)
    threaded = E.run(nedrich, trials)
    for a, b in zip(inline, threaded, strict=True):
        assert (a.status, a.epochs_run, a.cost) == (b.status, b.epochs_run, b.cost)
        np.testing.assert_array_equal(a.theta, b.theta)
        np.testing.assert_array_equal(a.history_cost, b.history_cost)


def test_an_error_in_the_helper_thread_reaches_the_caller():
    def fails() -> None:
        raise ValueError("from the kernel")

    with pytest.raises(ValueError, match="from the kernel"):
        run_stoppable(fails, halt_flag(), threaded=True)


def test_ctrl_c_stops_a_billion_epoch_budget_within_a_second(nedrich_csv):
    # a real SIGINT to a real process whose main thread waits on a 10⁹-epoch minibatch trial
    # (about an hour of compute): Python's handler raises KeyboardInterrupt in the waiting
    # thread, which halts the kernel
    script = textwrap.dedent(f"""
        import time, numpy as np
        from study.core import engine as E
        from study.core.problem import Problem
        data = np.loadtxt({str(nedrich_csv)!r}, delimiter=",")
        p = Problem(data[:, :1], data[:, 1])
        s = E.Settings(optimizer="minibatch", batch_size=10)
        E.run_one(p, E.Trial(1e-9, 10, (0.0, 0.0), s))
        print("running", flush=True)
        try:
            E.run_one(p, E.Trial(1e-9, {LONG}, (0.0, 0.0), s))
        except KeyboardInterrupt:
            print("interrupted", time.monotonic(), flush=True)
        """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "running"
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(2)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    word, at = out.split()
    assert word == "interrupted" and proc.returncode == 0, err
    assert float(at) - sent < 1.0 + WITHIN
