"""``study run --workers N`` (:mod:`study.sweep.workers`) as a user runs it: real processes, real
stores (a journal file and an MLflow sqlite store in tmp_path; PostgreSQL and an MLflow server
from .ci/services), faults injected with real signals. Nothing is mocked."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState
from stores import (
    ROOT,
    check_exact,
    check_histories,
    check_ran_again,
    config,
    finish,
    n_complete,
    running_of,
    runs,
    services,
    start,
    study_cmd,
    trials,
    wait_for,
    worker_pids,
    write_study,
)

from study import api
from study.sweep import startup, workers
from study.sweep.workers import WorkerSpec


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """Relative store paths (the defaults) resolve in tmp_path, as for the commands."""
    monkeypatch.chdir(tmp_path)


@pytest.mark.slow
def test_eight_workers_complete_exactly_400_trials_each_logged_once(tmp_path):
    # quasi-random points: workers asking at once must still take distinct points of the sequence
    path = write_study(tmp_path, n_trials=400, batch_size=10, epochs=40, sampler="qmc")
    code, out, err = finish(start(study_cmd(path, "--workers", "8"), tmp_path))
    assert code == 0, err
    assert "400 of 400 trials complete (400 new by 8 workers" in out
    cfg = config(path)
    everything, r = check_exact(cfg, 400)
    assert len(r.children) == 400 and len(r.parents) == 1
    assert r.parents[0].info.status == "FINISHED"
    assert len({t.user_attrs["worker"] for t in everything}) >= 4  # the work was shared
    complete = [t for t in everything if t.state == TrialState.COMPLETE]
    assert len({tuple(sorted(t.params.items())) for t in complete}) == 400
    check_histories(cfg, r)
    default = r.client.get_experiment_by_name("Default")
    assert r.client.search_runs([default.experiment_id]) == []
    assert r.client.get_experiment_by_name(cfg.name).experiment_id == "1"


@pytest.mark.slow
def test_the_notebook_api_shares_a_sweep_among_workers(tmp_path):
    cfg = config(write_study(tmp_path, n_trials=30, batch_size=5, epochs=40))
    summary = api.run_sweep(cfg, workers=2, progress=False, report=False)
    assert summary.n_complete == 30 and summary.n_new == 30 and not summary.failed_workers
    _, r = check_exact(cfg, 30)
    assert len(r.children) == 30
    assert len(api.trials_frame(cfg)) == 30


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_nothing(tmp_path):
    path = write_study(tmp_path, n_trials=100, batch_size=10, epochs=40)
    cfg = config(path)
    parent = start(study_cmd(path, "--workers", "3"), tmp_path)
    # wait until a worker holds asked, untold trials, then kill it without warning
    victim = wait_for(lambda: next((pid for pid in worker_pids(parent)
                                    if running_of(cfg, pid=pid)), None))
    os.kill(victim, signal.SIGKILL)
    code, out, err = finish(parent)
    assert code == 1, err
    assert f"(pid {victim}) was killed by SIGKILL" in out
    code, out, err = finish(start(study_cmd(path), tmp_path))  # the rerun completes
    assert code == 0, err
    everything, r = check_exact(cfg, 100)
    held = died_with(everything, f":{victim}")
    assert held, "the worker was killed between two batches"
    check_rerun_once(everything, r, held)
    (parent,) = r.parents  # one parent per study, reopened by the rerun
    assert parent.info.status == "FINISHED"
    assert int(parent.data.tags["study.invocations"]) == 2


def died_with(everything: list, worker_suffix: str) -> list:
    """The trials a killed worker held: asked by it, never told, failed by a reaper."""
    return [t for t in everything if t.user_attrs.get("worker", "").endswith(worker_suffix)
            and t.state == TrialState.FAIL and not t.user_attrs.get("surplus")]


def check_rerun_once(everything: list, r, held: list) -> None:
    """Each held trial was run again exactly once, with the same parameters, to completion;
    only their runs are KILLED (at most the one being logged when the worker died)."""
    for t in held:
        again = [u for u in everything if u.user_attrs.get("retry_of") == t.number]
        assert len(again) == 1 and again[0].state == TrialState.COMPLETE
        assert {k: again[0].params[k] for k in t.params} == t.params
    killed = [c.data.tags["optuna.trial_number"] for c in r.children
              if c.info.status == "KILLED"]
    assert set(killed) <= {str(t.number) for t in held} and len(killed) <= 1


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "times"), [(signal.SIGTERM, 1), (signal.SIGINT, 2)],
                         ids=["sigterm", "sigint-twice"])
def test_a_signal_stops_every_worker_cleanly_and_a_rerun_completes(tmp_path, sig, times):
    path = write_study(tmp_path, n_trials=80, batch_size=8, epochs=40)
    cfg = config(path)
    parent = start(study_cmd(path, "--workers", "2"), tmp_path)
    wait_for(lambda: n_complete(cfg) >= 16)
    for _ in range(times):
        parent.send_signal(sig)
        time.sleep(0.05)
    code, out, err = finish(parent)
    assert code == 130, err
    assert "interrupted" in out and "to resume, run: study run" in err
    r = runs(cfg)
    assert [p.info.status for p in r.parents] == ["KILLED"]
    assert not [c for c in r.children if c.info.status == "RUNNING"]
    stopped = trials(cfg)
    assert not [t for t in stopped if t.state == TrialState.RUNNING]
    done = sum(t.state == TrialState.COMPLETE for t in stopped)
    assert 16 <= done < 80
    code, out, err = finish(start(study_cmd(path, "--workers", "2"), tmp_path))
    assert code == 0, err
    everything, _ = check_exact(cfg, 80)
    if times == 2:  # stopped at once: what was asked but not told is failed and run again
        check_ran_again(everything)


# ── PostgreSQL storage and an MLflow tracking server ────────────────────────────────────────


def server_overrides(pg: str, server: str, name: str) -> list[str]:
    return [f"tracking.storage={pg}", f"tracking.mlflow_uri={server}", f"name={name}"]


@pytest.mark.slow
@pytest.mark.postgres
def test_two_machines_of_four_workers_on_postgresql_and_an_mlflow_server(tmp_path):
    pg, server = services()
    name = f"scale-{os.urandom(4).hex()}"
    path = write_study(tmp_path, n_trials=400, batch_size=10, epochs=40, sampler="qmc")
    sets = [a for o in server_overrides(pg, server, name) for a in ("--set", o)]
    # two `study run --workers 4` started together, as on two machines: both race to create
    # the study and the (new) experiment
    machines = [start(study_cmd(path, "--workers", "4", *sets), tmp_path) for _ in range(2)]
    results = [finish(m) for m in machines]
    assert [c for c, _, _ in results] == [0, 0], [e for _, _, e in results]
    cfg = config(path, *server_overrides(pg, server, name))
    everything, r = check_exact(cfg, 400)
    # both machines open the study's one parent run; the last to finish closes it
    assert [p.info.status for p in r.parents] == ["FINISHED"]
    assert len({t.user_attrs["worker"] for t in everything}) >= 4
    complete = [t for t in everything if t.state == TrialState.COMPLETE]
    assert len({tuple(sorted(t.params.items())) for t in complete}) == 400
    exp = r.client.get_experiment_by_name(name)
    assert {c.info.experiment_id for c in r.children} == {exp.experiment_id}
    default = r.client.get_experiment_by_name("Default")
    assert r.client.search_runs([default.experiment_id], f"tags.`optuna.study` = '{name}'") == []
    check_histories(cfg, r)


HEARTBEAT_TRIALS = 400  # of the heartbeat test below


@pytest.mark.slow
@pytest.mark.postgres
def test_a_worker_on_another_machine_killed_is_found_by_its_heartbeat(tmp_path):
    pg, server = services()
    name = f"beat-{os.urandom(4).hex()}"
    # enough trials that the three workers cannot finish them all while the fourth starts
    # (importing MLflow and Optuna takes seconds on a loaded machine)
    path = write_study(tmp_path, n_trials=HEARTBEAT_TRIALS, batch_size=5, epochs=40)
    overrides = server_overrides(pg, server, name)
    cfg = config(path, *overrides)
    sets = [a for o in overrides for a in ("--set", o)]
    main = start(study_cmd(path, "--workers", "3", "--heartbeat", "1", *sets), tmp_path)
    client = MlflowClient(server)
    parent = wait_for(lambda: (e := client.get_experiment_by_name(name)) and client.search_runs(
        [e.experiment_id], "tags.`study.role` = 'sweep'"))[0]
    # a fourth worker, as if on another machine: its process id means nothing here, so only
    # its stopped heartbeat can tell the others that it died
    spec = WorkerSpec(cfg, parent.info.experiment_id, parent.info.run_id, 1, os.getpid(), 4)
    remote = subprocess.Popen([sys.executable, "-m", "study.sweep.workers"], stdin=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(ROOT),
                                   "STUDY_WORKER_HOST": "elsewhere"})
    remote.stdin.write(pickle.dumps(spec))
    remote.stdin.close()
    try:
        wait_for(lambda: running_of(cfg, host="elsewhere"), timeout=120)
    except AssertionError:  # say why: the remote's last words, whether the sweep had ended
        remote.kill()
        raise AssertionError(f"the remote worker never ran a trial; sweep still running: "
                             f"{main.poll() is None}; remote said: "
                             f"{remote.stderr.read().decode()[-500:]}") from None
    remote.kill()
    remote.wait()
    code, _, err = finish(main)
    assert code == 0, err
    everything, r = check_exact(cfg, HEARTBEAT_TRIALS)
    # failed by a live worker once its heartbeat was 4 s old, and run again once
    held = [t for t in died_with(everything, "") if t.user_attrs["worker"].startswith("elsewhere:")]
    assert held, "the remote worker was killed between two batches"
    check_rerun_once(everything, r, held)
    assert [p.info.status for p in r.parents] == ["FINISHED"]


# ── the parent's bookkeeping, without processes ─────────────────────────────────────────────


def test_no_more_workers_start_than_batches_remain(make_cfg):
    cfg = make_cfg(n_trials=10, batch_size=4)
    st = startup.setup(cfg, fresh=False)
    assert workers._n_workers(cfg, st, 8, before=0) == 3  # ⌈10 / 4⌉ batches
    assert st.notes == ["8 workers asked; 3 started for the 10 remaining trial(s) at "
                        "search.batch_size 4"]
    st.notes.clear()
    assert workers._n_workers(cfg, st, 2, before=9) == 1
    assert workers._n_workers(cfg, st, 2, before=10) == 0


def test_a_failed_worker_is_described_by_its_signal_or_exit_code_and_last_line():
    for code, how in ((-9, "was killed by SIGKILL"), (2, "exited with code 2")):
        proc = subprocess.Popen([sys.executable, "-c", "import os, sys, signal; "
                                 f"os.kill(os.getpid(), 9) if {code} < 0 else sys.exit({code})"])
        proc.wait()
        worker = workers._Worker(1, proc, lines=["study: error: first", "study: error: last", ""])
        assert worker.describe() == f"worker 1 (pid {proc.pid}) {how}: study: error: last"
