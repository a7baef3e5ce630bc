"""Endless trials stopped from outside (RELIABILITY: a trial of 10¹⁴ epochs ignored Ctrl-C and
SIGTERM; only kill -9 ended it). Through the real ``study`` command in its own process:

- ``study fit`` with a budget of 10⁹ minibatch epochs (about an hour on 25 points) stops within
  about a second of SIGINT (one line, exit code 130) or SIGTERM;
- ``study run`` (one process or two workers) with 10⁹-epoch trials among short ones stops
  within about a second of the first SIGINT; the trials that finished are kept and counted, the
  halted ones are failed and queued again with their points, and nothing is RUNNING in either
  store.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState
from stores import finish, running_of, runs, start, trials, wait_for, write_line_data

from study.config.model import load_config

LONG = 10**9
# the kernels look at the halt flag every 2¹⁶ epochs (well under a millisecond); the rest is
# a loaded 2-core machine: the process's exit, and for a sweep closing its stores and workers
# (measured: fit 0.2 s, run 1.0 s, two workers 2.2 s on a busy machine)
WITHIN = 1.0 + 4.0
WITHIN_SWEEP = 10.0


def _fit(folder: Path, epochs: int) -> list[str]:
    return ["python", "-m", "study", "fit", "--data", str(folder / "line.csv"), "--lr", "1e-6",
            "--epochs", str(epochs), "--optimizer", "minibatch", "--batch-size", "1"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_fit_with_a_billion_epochs_stops_within_a_second(tmp_path, request, sig):
    write_line_data(tmp_path)
    # the same command with a short budget: how long imports, reading and compiling take here
    began = time.monotonic()
    code, _, err = finish(start(_fit(tmp_path, 10), tmp_path))
    assert code == 0, err
    warm = time.monotonic() - began

    proc = start(_fit(tmp_path, LONG), tmp_path)
    request.addfinalizer(proc.kill)
    time.sleep(warm + 1.0)  # well inside the 10⁹-epoch loop
    assert proc.poll() is None, proc.communicate()
    sent = time.monotonic()
    proc.send_signal(sig)
    code, out, err = finish(proc, timeout=60)
    took = time.monotonic() - sent
    if sig == signal.SIGINT:
        assert (code, out, err.strip()) == (130, "", "study: interrupted")
    else:  # fit writes nothing to keep: SIGTERM's default action ends it where it stands
        assert (code, out, err) == (-signal.SIGTERM, "", "")
    assert took < WITHIN, took


# seed 1 orders the grid's cells short, short, long, … (the order is pinned in test_sampling)
SPACE = {"lr": 1e-6, "epochs": {"values": [50, LONG]}, "init_m": {"values": [0.0, 1.0, 2.0]}}


def _sweep_config(folder: Path) -> Path:
    write_line_data(folder)
    raw = {"name": "endless", "data": {"path": "line.csv"},
           "algorithm": {"optimizer": "minibatch", "batch_size": 1},
           "search": {"sampler": "grid", "seed": 1, "n_trials": 6, "batch_size": 1,
                      "space": SPACE}}
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _long_ones_running(cfg, n: int) -> bool:
    """``n`` 10⁹-epoch trials have been RUNNING for a second (their kernels are in the long
    loop)."""
    now = time.time()
    return n == sum(t.params.get("epochs") == LONG and now - t.datetime_start.timestamp() > 1.0
                    for t in running_of(cfg))


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
def test_run_stops_billion_epoch_trials_within_a_second_and_keeps_the_finished(
        tmp_path, monkeypatch, request, workers):
    monkeypatch.chdir(tmp_path)  # the stores' default place, as for the command
    path = _sweep_config(tmp_path)
    cfg = load_config(path, [])
    cmd = ["python", "-m", "study", "run", str(path), "--no-progress", "--no-report",
           "--workers", str(workers)]
    proc = start(cmd, tmp_path)
    request.addfinalizer(proc.kill)  # a failed wait must not leave a 10⁹-epoch trial running
    # each worker runs short cells until it meets a long one: one process finishes cells 0
    # and 1, two workers finish 0, 1 and 3 (2 and 4 are long)
    wait_for(lambda: _long_ones_running(cfg, workers) or proc.poll() is not None, timeout=180)
    assert proc.poll() is None, proc.communicate()
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc, timeout=60)
    took = time.monotonic() - sent
    assert code == 130 and took < WITHIN_SWEEP, (code, took, err)
    assert "Traceback" not in err and "finished trials are kept" in err

    done = [t for t in trials(cfg) if t.state == TrialState.COMPLETE]
    halted = [t for t in trials(cfg) if t.state == TrialState.FAIL]
    assert [t.params["epochs"] for t in done] == [50] * (workers + 1)
    assert [t.params["epochs"] for t in halted] == [LONG] * workers
    assert f"interrupted with {len(done)} of 6 trials complete" in err
    assert f"({len(done)} new " in out  # the summary counts what this command completed
    assert not [t for t in trials(cfg) if t.state == TrialState.RUNNING]
    r = runs(cfg)
    assert not [x for x in r.parents + r.children if x.info.status == "RUNNING"]
    assert len(r.children) == len(done)
    # the halted points are queued to run again on resume (tests/sweep/test_loop.py resumes)
    waiting = [t for t in trials(cfg) if t.state == TrialState.WAITING]
    assert sorted(t.user_attrs["retry_of"] for t in waiting) == sorted(h.number for h in halted)
