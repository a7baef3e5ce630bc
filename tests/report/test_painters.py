"""The report's figures drawn by forked painters (study.report.painters): the same files as
drawing here, errors raised here, a dead painter's job done here, nothing left running."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from study.report import build as report
from study.report.painters import Forked, InProcess, Job, painters


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _session_empty(sid: int) -> bool:
    """No process of the session ``sid`` (a command started with start_new_session) runs."""
    return subprocess.run(["pgrep", "-s", str(sid)], capture_output=True).stdout == b""


def test_forked_painters_write_the_same_files_as_one_process(valley_table, valley, tmp_path):
    table, sp = valley_table
    trials = table[[c for c in table.columns if c not in (
        "start_distance", "region", "lr_max", "agrees") and not c.startswith("predicted")]]
    report.build_report(sp, valley, trials, tmp_path / "here", InProcess())
    with painters() as crew:
        assert isinstance(crew, Forked) and len(crew.painters) == 2
        report.build_report(sp, valley, trials, tmp_path / "forked", crew)
    here = sorted((tmp_path / "here" / "figures").iterdir())
    forked = sorted((tmp_path / "forked" / "figures").iterdir())
    assert [p.name for p in here] == [p.name for p in forked] and len(here) == 6
    for a, b in zip(here, forked, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    for name in ("report.md", "summary.json", "trials.csv"):
        assert (tmp_path / "here" / name).read_bytes() == (tmp_path / "forked" / name).read_bytes()


def test_jobs_run_in_the_painters_on_both(tmp_path):
    with painters() as crew:
        pids = {p.pid for p in crew.painters}
        done = crew.run([Job(str(i), os.getpid, ()) for i in range(8)])
    assert set(done) == {str(i) for i in range(8)}
    assert set(done.values()) <= pids and os.getpid() not in done.values()


def test_an_error_in_a_painter_is_raised_here_as_it_was(tmp_path):
    missing = tmp_path / "no-such-file.png"
    with painters() as crew, pytest.raises(FileNotFoundError) as err:
        crew.run([Job("gone", os.remove, (str(missing),))])
    assert err.value.errno == errno.ENOENT and err.value.filename == str(missing)
    assert "raised in a painter process" in err.value.__notes__[0]  # its traceback for --debug


def test_a_painter_that_died_has_its_jobs_done_by_the_others_or_here():
    with painters() as crew:
        first, second = crew.painters
        os.kill(first.pid, signal.SIGKILL)
        os.waitpid(first.pid, 0)
        done = crew.run([Job(str(i), os.getpid, ()) for i in range(4)])
        assert set(done.values()) <= {second.pid, os.getpid()} and len(done) == 4
        os.kill(second.pid, signal.SIGKILL)
        os.waitpid(second.pid, 0)
        done = crew.run([Job(str(i), os.getpid, ()) for i in range(3)])
        assert set(done.values()) == {os.getpid()} and len(done) == 3


def test_painters_end_with_the_block_and_when_it_fails():
    with painters() as crew:
        pids = [p.pid for p in crew.painters]
    assert not any(_alive(pid) for pid in pids)
    with pytest.raises(KeyboardInterrupt), painters() as crew:
        pids = [p.pid for p in crew.painters]
        crew.run([Job("a", os.getpid, ())])
        raise KeyboardInterrupt
    assert not any(_alive(pid) for pid in pids)


def test_no_fork_while_another_thread_runs():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        with painters() as crew:
            assert type(crew) is InProcess
            assert crew.run([Job("a", os.getpid, ())]) == {"a": os.getpid()}
    finally:
        stop.set()
        thread.join()


def test_ctrl_c_at_any_moment_of_study_report_leaves_no_painter(tmp_path, monkeypatch):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) at moments from the
    start to the end of a real ``study report``: it ends "interrupted" (130, or killed by
    SIGINT) or finishes with 0 (or, landing while Python shuts down after the report was
    written and said, is killed by the signal then), never with a traceback, and no painter
    outlives it."""
    from stores import config, sweep, write_study

    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, n_trials=8, batch_size=4, epochs=200)
    sweep(config(path))
    outcomes = []
    for delay in (0.1, 0.3, 0.5, 0.8, 1.1, 1.5, 2.0, 3.0):
        proc = subprocess.Popen([sys.executable, "-m", "study", "report", str(path)],
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        time.sleep(delay)
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass  # already done
        out, err = proc.communicate(timeout=60)
        done = proc.returncode in (0, -signal.SIGINT) and out.startswith("report: ")
        outcomes.append("finished" if done else proc.returncode)
        assert "Traceback" not in err, (delay, err)
        # 130 from the command, or killed by the signal itself when it comes back while
        # Python shuts down after saying so (a shell shows both as 130)
        assert done or proc.returncode in (130, -signal.SIGINT), (delay, proc.returncode, err)
        if not done:
            assert err.strip().endswith("study: interrupted"), err
        assert _session_empty(proc.pid), delay  # nothing of its session still runs
    interrupted = len(outcomes) - outcomes.count("finished")
    print(f"Ctrl-C during study report: {interrupted} interrupted, "
          f"{outcomes.count('finished')} finished first")
    assert interrupted


def test_painters_end_when_study_report_is_killed(tmp_path, monkeypatch):
    """kill -9 (and SIGTERM, whose default action ends the command at once) of a real
    ``study report`` at moments through its work: its painters see their pipe close and end
    within seconds, whatever they were doing."""
    from stores import config, sweep, wait_for, write_study

    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, n_trials=8, batch_size=4, epochs=200)
    sweep(config(path))
    ended = 0
    for delay, sig in ((0.3, signal.SIGKILL), (0.9, signal.SIGKILL), (1.5, signal.SIGTERM),
                       (2.0, signal.SIGKILL)):
        proc = subprocess.Popen([sys.executable, "-m", "study", "report", str(path)],
                                cwd=tmp_path, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(delay)
        proc.send_signal(sig)  # the command only: its painters are left to notice
        proc.wait(timeout=60)

        assert wait_for(lambda sid=proc.pid: _session_empty(sid), timeout=15), (delay, sig)
        ended += proc.returncode == -sig
    print(f"study report killed {ended} times mid-way; no painter outlived it")


def test_a_painter_that_does_not_stop_when_told_is_killed():
    """Ending the painters waits a few seconds for each, then kills one still busy, so a
    painter stuck in a job never holds the command."""
    from study.report.painters import _end

    with painters() as crew:
        busy = crew.painters[0]
        busy.conn.send((time.sleep, (60,)))  # a job that outlasts the patience
        start = time.monotonic()
        _end(busy, None, patience=0.5)
        assert time.monotonic() - start < 10 and not _alive(busy.pid)
        crew.painters.remove(busy)
        busy.alive = False
