"""The Optuna behaviours :mod:`study.sweep._optuna_private` relies on, pinned on real storages (a
journal file and sqlite in tmp_path): an Optuna release that changes one fails here."""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
from optuna.trial import TrialState
from scipy.stats import qmc

from study.sweep import _optuna_private as private
from study.sweep.journal import open_journal

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(params=["journal", "sqlite"])
def url(request, tmp_path) -> str:
    if request.param == "journal":
        return str(tmp_path / "o.journal")
    return f"sqlite:///{tmp_path / 'o.db'}"


def storage(url: str, **kwargs):
    if "://" in url:
        return optuna.storages.RDBStorage(url, **kwargs)
    return optuna.storages.JournalStorage(JournalFileBackend(url))


def two_processes(url: str) -> tuple[optuna.Study, optuna.Study]:
    """One study seen through two storage objects, as by two processes."""
    first = optuna.create_study(storage=storage(url), study_name="s")
    return first, optuna.load_study(study_name="s", storage=storage(url))


def test_popping_takes_a_trial_queued_by_another_process_once(url):
    mine, other = two_processes(url)
    mine.get_trials()  # a cache of the trials, taken before the other process queues one
    other.enqueue_trial({"x": 0.25})
    popped = private.pop_waiting_trial_id(mine)
    assert popped is not None
    assert private.pop_waiting_trial_id(other) is None  # RUNNING now: nobody takes it again
    (trial,) = other.get_trials()
    assert trial.state == TrialState.RUNNING and trial.system_attrs["fixed_params"] == {"x": 0.25}
    assert private.pop_waiting_trial_id(mine) is None


def test_a_created_trial_carries_its_attributes_from_the_first_write(url):
    mine, other = two_processes(url)
    new_id = private.create_running_trial(mine, {"worker": "host:1"})
    (seen,) = other.get_trials()
    assert seen.state == TrialState.RUNNING and seen.user_attrs == {"worker": "host:1"}
    assert seen.number == 0 and private.trial_id(seen) == new_id
    assert private.create_running_trial(mine, {}) != new_id


def test_a_trial_for_an_id_is_that_trial_and_its_sampler_is_told(url):
    class Recording(optuna.samplers.RandomSampler):
        def __init__(self) -> None:
            super().__init__(seed=0)
            self.before: list[int] = []

        def before_trial(self, study, trial) -> None:
            self.before.append(trial.number)

    sampler = Recording()
    study = optuna.create_study(storage=storage(url), sampler=sampler)
    private.create_running_trial(study, {})
    new_id = private.create_running_trial(study, {"worker": "w"})
    trial = private.trial_for_id(study, new_id)
    assert trial.number == 1 and private.trial_id(trial) == new_id
    assert trial.user_attrs == {"worker": "w"} and sampler.before == [1]
    x = trial.suggest_float("x", 0.0, 1.0)
    study.tell(trial, x)
    assert study.get_trials()[1].params == {"x": x}


def test_the_heartbeat_interval_is_known_only_where_heartbeats_are_recorded(tmp_path):
    journal = optuna.create_study(storage=open_journal(tmp_path / "o.journal"))
    assert private.heartbeat_interval(journal) is None
    assert private.stale_trial_callback(journal) is None
    plain = optuna.create_study(storage=storage(f"sqlite:///{tmp_path / 'a.db'}"))
    assert private.heartbeat_interval(plain) is None
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        beating = optuna.create_study(storage=storage(f"sqlite:///{tmp_path / 'b.db'}",
                                                      heartbeat_interval=7))
    assert private.heartbeat_interval(beating) == 7


def test_a_recorded_heartbeat_keeps_a_trial_and_a_silent_one_is_failed_with_the_callback(
        tmp_path):
    failed = []

    def callback(study, trial):
        failed.append(trial.number)

    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        store = storage(f"sqlite:///{tmp_path / 'o.db'}", heartbeat_interval=1, grace_period=1,
                        heartbeat_stale_trial_callback=callback)
    study = optuna.create_study(storage=store)
    assert private.stale_trial_callback(study) is callback
    live = private.create_running_trial(study, {})
    silent = private.create_running_trial(study, {})
    private.record_heartbeat(study, silent)
    # the live trial beats; the silent one stopped. Heartbeats are stored to the second, and a
    # loaded machine delays writes: look for the stale trial from 2.5 s on, for up to 20 s
    started = time.monotonic()
    while not failed and time.monotonic() < started + 20:
        private.record_heartbeat(study, live)
        time.sleep(0.2)
        if time.monotonic() > started + 2.5:
            private.record_heartbeat(study, live)
            with pytest.warns(optuna.exceptions.ExperimentalWarning):
                optuna.storages.fail_stale_trials(study)
    assert failed == [1]
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING, TrialState.FAIL]


def test_reseeding_the_random_sampler_fixes_its_draws():
    sampler = optuna.samplers.RandomSampler(seed=1)
    study = optuna.create_study(sampler=sampler)
    space = {"x": FloatDistribution(0.0, 1.0)}

    def draw(entropy) -> float:
        private.reseed_random_sampler(sampler, np.asarray(entropy, dtype=np.uint32))
        return study.ask(space).params["x"]

    first, again, other = draw([1, 2, 3, 4]), draw([1, 2, 3, 4]), draw([5, 6, 7, 8])
    assert first == again != other
    # the draw is numpy's legacy generator seeded with the words: uniform on [0, 1)
    assert first == np.random.RandomState(np.array([1, 2, 3, 4], dtype=np.uint32)).uniform(0, 1)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_the_qmc_point_is_the_one_at_the_index_given(url):
    sampler = private.IndexedQMCSampler(seed=11, scramble=True)
    study = optuna.create_study(storage=storage(url), sampler=sampler)
    space = {"a": FloatDistribution(0.0, 1.0), "b": FloatDistribution(-2.0, 2.0)}
    study.ask()
    frozen = study.get_trials()[0]
    points = qmc.Sobol(2, scramble=True, seed=11).random(8)  # columns in sorted name order
    for index in (5, 0, 3):
        sampler.sample_index = index
        got = sampler.sample_relative(study, frozen, space)
        np.testing.assert_allclose([got["a"], got["b"]],
                                   [points[index, 0], -2.0 + 4.0 * points[index, 1]], rtol=1e-12)


def test_the_journal_backend_takes_a_lock_object_around_each_append(tmp_path):
    calls = []

    class Recording(private.JournalFileLock):
        def acquire(self) -> bool:
            calls.append("acquire")
            return True

        def release(self) -> None:
            calls.append("release")

    backend = JournalFileBackend(str(tmp_path / "o.journal"), lock_obj=Recording())
    study = optuna.create_study(storage=optuna.storages.JournalStorage(backend))
    calls.clear()
    study.set_user_attr("k", 1)
    assert calls == ["acquire", "release"]


def test_the_symlink_lock_of_plain_optuna_writers_has_the_known_path(tmp_path):
    journal = str(tmp_path / "o.journal")
    lock = JournalFileSymlinkLock(journal)
    path = private.symlink_lock_path(journal)
    assert lock.acquire()
    assert os.path.islink(path) and os.readlink(path) == journal
    lock.release()
    assert not os.path.lexists(path)


def test_the_rdb_storage_logs_under_the_logger_that_is_quietened():
    assert optuna.storages.RDBStorage.__module__ == private.RDB_STORAGE_LOGGER
    private.quiet_rdb_retry_log()
    assert logging.getLogger(private.RDB_STORAGE_LOGGER).getEffectiveLevel() == logging.ERROR
