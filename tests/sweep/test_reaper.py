"""Dead workers' trials (:mod:`study.sweep.reaper`): failed once, queued again once, found by
process id on this host or by heartbeat on RDB storages; real storages in tmp_path."""

from __future__ import annotations

import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState
from stores import (
    complete_of,
    sweep,
)

from study.config.constraints import GRACE_FACTOR
from study.sweep import reaper, sampling, storage
from study.sweep._optuna_private import record_heartbeat, trial_id
from study.tracking.workerid import worker_host, worker_id


def test_trials_left_running_by_a_dead_process_are_failed_and_run_again(make_cfg):
    cfg = make_cfg(n_trials=3, batch_size=3)
    sampler = sampling.make_sampler(cfg, sampling.build_space(cfg, 1))
    study, _ = storage.open_study(cfg, sampler)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = study.ask(sampling.build_space(cfg, 1).distributions)
    stale.set_user_attr("worker", f"{worker_id().rpartition(':')[0]}:{dead}")
    summary = sweep(cfg)
    assert any("dead worker" in n for n in summary.notes)
    study = storage.load_study(cfg)
    assert study.trials[stale.number].state == TrialState.FAIL
    done = complete_of(cfg)
    assert len(done) == 3
    assert [t.params for t in done if t.user_attrs.get("retry_of") == stale.number] \
        == [stale.params]


def dead_worker() -> str:
    pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return f"{worker_host()}:{pid}"


def test_two_processes_reaping_one_dead_trial_queue_it_once(folder):
    journal = str(folder / "o.journal")
    first = optuna.create_study(storage=storage.open_storage(journal), study_name="s")
    stale = first.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    stale.set_user_attr("worker", dead_worker())
    second = optuna.load_study(study_name="s", storage=storage.open_storage(journal))
    seen = second.get_trials(states=(TrialState.RUNNING,))  # both see it RUNNING
    assert [t.number for t in reaper.reap_stale(first)] == [stale.number]
    assert reaper.fail_trial(second, seen[0]) is False  # the storage refuses a second FAIL
    assert reaper.reap_stale(second) == []
    waiting = second.get_trials(states=(TrialState.WAITING,))
    assert [(t.system_attrs["fixed_params"], t.user_attrs["retry_of"]) for t in waiting] == [
        (stale.params, 0)]


def test_a_trial_naming_no_worker_for_long_is_reaped(folder, monkeypatch):
    study = optuna.create_study(storage=storage.open_storage(str(folder / "o.journal")))
    fresh = study.ask()  # asked a moment ago by a live process that names itself next
    assert reaper.reap_stale(study) == []
    monkeypatch.setattr(reaper, "ORPHAN_SECONDS", 0.0)
    assert [t.number for t in reaper.reap_stale(study)] == [fresh.number]


@pytest.mark.slow
def test_heartbeats_keep_live_trials_and_fail_silent_ones_on_sqlite(folder):
    url = f"sqlite:///{folder / 'o.db'}"
    study = optuna.create_study(storage=storage.open_storage(url, heartbeat=1), study_name="s")
    with reaper.Heartbeat(study) as beat:
        live = study.ask()
        beat.add(trial_id(live))
        live.set_user_attr("worker", "elsewhere:1")
        silent = study.ask()
        record_heartbeat(study, trial_id(silent))  # then its worker dies
        silent.set_user_attr("worker", "elsewhere:2")
        time.sleep(GRACE_FACTOR * 1 + 1.5)
        reaped = reaper.reap_stale(study)
    assert [t.number for t in reaped] == [silent.number]
    states = {t.number: t.state for t in study.get_trials()}
    assert states[live.number] == TrialState.RUNNING and states[silent.number] == TrialState.FAIL
    (again,) = study.get_trials(states=(TrialState.WAITING,))
    assert again.user_attrs["retry_of"] == silent.number


def test_fail_trial_fails_a_running_trial_once_and_never_a_finished_one(folder):
    journal = str(folder / "o.journal")
    study = optuna.create_study(storage=storage.open_storage(journal), study_name="s")
    other = optuna.load_study(study_name="s", storage=storage.open_storage(journal))
    running, told = study.ask(), study.ask()
    study.tell(told, 1.0)
    assert reaper.fail_trial(other, running) is True
    assert reaper.fail_trial(study, running) is False  # failed already, by the other process
    assert reaper.fail_trial(study, told) is False
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.COMPLETE]


def test_a_trial_is_queued_again_at_most_max_retries_times_in_a_row(folder):
    study = optuna.create_study(storage=storage.open_storage(str(folder / "o.journal")))
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    for retries in range(reaper.MAX_RETRIES):
        assert reaper.fail_trial(study, trial)
        assert reaper.requeue(study, study.get_trials()[trial.number])
        trial = study.ask()
        assert trial.user_attrs == {"retry_of": trial.number - 1, "retries": retries + 1,
                                    "point": 0}  # the point of the first trial, all along
    assert reaper.fail_trial(study, trial)
    assert not reaper.requeue(study, study.get_trials()[trial.number])
    assert study.get_trials(states=(TrialState.WAITING,)) == []


def test_without_an_rdb_heartbeat_the_heartbeat_thread_does_nothing(folder):
    study = optuna.create_study(storage=storage.open_storage(str(folder / "o.journal")))
    assert not reaper.heartbeat_enabled(study)
    with reaper.Heartbeat(study) as beat:
        beat.add(trial_id(study.ask()))
        assert beat.interval is None and beat._thread is None
