"""What Optuna samples (:mod:`study.sweep.sampling`): reproducible samplers, the grid's end, the
scrambled Sobol sequence in trial order, and the space's values reaching the engine."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from scipy.stats import qmc
from stores import (
    complete_of,
    raw_config,
    sweep,
    write_line_data,
)

from study.config.model import StudyConfig
from study.core import engine
from study.core.data import load_problem
from study.errors import ConfigError
from study.sweep import reaper, sampling, storage
from study.sweep.loop import point_seeds
from study.sweep.summary import trials_frame


@pytest.mark.parametrize("sampler", ["random", "qmc", "grid", "tpe"])
def test_same_config_and_seed_give_the_same_trials(make_cfg, tmp_path, monkeypatch, sampler):
    space = raw_config()["search"]["space"]
    if sampler == "grid":
        space = {"lr": {"values": [0.05, 0.1, 0.2]}, "epochs": 50,
                 "init_m": {"values": [-1.0, 0.0, 1.0]}}
    params = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        write_line_data(tmp_path / folder)
        cfg = StudyConfig.from_mapping(raw_config(sampler=sampler, n_trials=6, space=space),
                                       base_dir=tmp_path / folder)
        sweep(cfg)
        params.append([t.params for t in sorted(complete_of(cfg), key=lambda t: t.number)])
    assert params[0] == params[1] and len(params[0]) == 6


def test_grid_stops_at_its_end_without_duplicates(make_cfg):
    space = {"lr": {"values": [0.05, 0.1, 0.2]}, "epochs": 50, "init_m": {"values": [0.0, 1.0]}}
    cfg = make_cfg(sampler="grid", n_trials=10, batch_size=4, space=space)
    summary = sweep(cfg)
    assert summary.n_complete == 6 and any("only 6 points" in n for n in summary.notes)
    again = sweep(cfg)
    assert again.n_new == 0
    combos = [(t.params["lr"], t.params["init_m"]) for t in complete_of(cfg)]
    assert len(combos) == 6 == len(set(combos))


def test_swept_settings_reach_the_engine(make_cfg):
    space = {"lr": 0.1, "epochs": 200, "standardize": {"values": [False, True]},
             "cost": {"values": ["mse", "sse"]}}
    cfg = make_cfg(sampler="grid", n_trials=4, space=space)
    sweep(cfg)
    frame = trials_frame(cfg)
    assert sorted(zip(frame["standardize"], frame["cost"], strict=True)) == [
        (False, "mse"), (False, "sse"), (True, "mse"), (True, "sse")]
    problem = load_problem(cfg.data.path)
    for row in frame.itertuples():
        settings = engine.Settings(tol_param=1e-4, standardize=row.standardize, cost=row.cost)
        res = engine.run_one(problem, engine.Trial(0.1, 200, (0.0, 0.0), settings, row.seed))
        assert res.status == row.status and res.cost == row.final_cost


def test_qmc_trials_are_the_scrambled_sobol_sequence_in_order(make_cfg):
    """Trial n takes point n of scipy's scrambled Sobol sequence (the sampler's seed), mapped
    onto the ranges: log-uniform for lr, uniform for init_m, in the space's order."""
    cfg = make_cfg(sampler="qmc", n_trials=8, batch_size=3)
    sweep(cfg)
    got = sorted(complete_of(cfg), key=lambda t: t.number)
    u = qmc.Sobol(2, scramble=True, seed=3).random(8)  # columns: lr, init_m
    lr = np.exp(np.log(0.01) + (np.log(2.0) - np.log(0.01)) * u[:, 0])
    init_m = -1.0 + 2.0 * u[:, 1]
    np.testing.assert_allclose([t.params["init_m"] for t in got], init_m, rtol=1e-12)
    np.testing.assert_allclose([t.params["lr"] for t in got], lr, rtol=1e-12)


@pytest.mark.parametrize("distribution", [
    FloatDistribution(0.01, 2.0, log=True), FloatDistribution(-1.0, 1.0, step=0.25),
    IntDistribution(10, 1000, log=True), IntDistribution(0, 12, step=3),
    CategoricalDistribution(["mse", "sse"]), CategoricalDistribution([False, True])])
def test_suggest_records_the_very_distribution_given(tmp_path, distribution):
    study = optuna.create_study(storage=storage.open_storage(str(tmp_path / "o.journal")),
                                sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    value = sampling.suggest(trial, "p", distribution)
    study.tell(trial, 0.0)
    (frozen,) = study.get_trials()
    assert frozen.distributions == {"p": distribution} and frozen.params == {"p": value}


def test_trial_seeds_follow_from_the_seeds_and_the_point_only(make_cfg):
    cfg = make_cfg()
    base = cfg.settings()
    seeds = [sampling.trial_seed(cfg, base, n) for n in range(50)]
    assert len(set(seeds)) == 50
    assert seeds[7] == int(np.random.SeedSequence([3, int(base.seed), 7]).generate_state(1)[0])
    assert sampling.trial_seed(make_cfg(seed=4), base, 7) != seeds[7]


def test_a_grid_range_needs_a_step_and_gives_every_value_on_it(make_cfg):
    space = {"lr": {"low": 0.1, "high": 0.5, "step": 0.1}, "epochs": {"low": 10, "high": 40,
                                                                      "step": 15}}
    grid = sampling.build_space(make_cfg(sampler="grid", space=space), 1).grid
    assert grid["lr"] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert grid["epochs"] == [10, 25, 40] and all(isinstance(e, int) for e in grid["epochs"])
    with pytest.raises(ConfigError, match=r"search\.space\.lr.* the grid sampler needs"):
        sampling.build_space(make_cfg(sampler="grid"), 1)


def test_an_engine_trial_takes_the_space_values_and_overrides_the_swept_settings(make_cfg):
    base = make_cfg().settings()
    trial = sampling.engine_trial({"lr": 0.1, "epochs": 20, "init_m": 0.5, "init_b": -1.0,
                                   "cost": "sse"}, base, 1, seed=9)
    assert (trial.lr, trial.epochs, trial.init, trial.seed) == (0.1, 20, (0.5, -1.0), 9)
    assert trial.settings.cost == "sse" and trial.settings.tol_param == base.tol_param
    assert sampling.init_names(3) == ["init_w1", "init_w2", "init_w3", "init_b"]


# ── points: what a trial was meant to evaluate, whatever it recorded ────────────────────────


def _study(make_cfg, sampler: str, space=None):
    cfg = make_cfg(sampler=sampler, n_trials=12, **({"space": space} if space else {}))
    space_ = sampling.build_space(cfg, 1)
    study, _ = storage.open_study(cfg, sampling.make_sampler(cfg, space_))
    return cfg, space_, study


GRID = {"lr": {"values": [0.05, 0.1, 0.2, 0.4]}, "epochs": 50,
        "init_m": {"values": [-1.0, 0.0, 1.0]}}


@pytest.mark.parametrize("sampler", ["qmc", "random", "grid"])
def test_the_point_of_a_trial_is_what_its_sampler_gives_it(make_cfg, sampler):
    """For every trial of a sweep, trial_point (computed from the trial's number and cell
    alone) is the parameters the sampler gave it, and its index is its number."""
    cfg = make_cfg(sampler=sampler, n_trials=12, batch_size=5,
                   **({"space": GRID} if sampler == "grid" else {}))
    sweep(cfg)
    study = storage.load_study(cfg, sampler=sampling.make_sampler(
        cfg, sampling.build_space(cfg, 1)))
    for t in study.get_trials():
        point = sampling.trial_point(study, t)
        assert point.params == t.params and point.index == t.number


@pytest.mark.parametrize("sampler", ["qmc", "random", "grid"])
def test_a_trial_created_without_parameters_still_has_its_point(make_cfg, sampler):
    """A trial whose worker died right after the storage created it (no parameter, no cell)
    has the point an uninterrupted trial of its number gets."""
    _, space, study = _study(make_cfg, sampler, GRID if sampler == "grid" else None)
    told = study.ask()
    for name, dist in space.distributions.items():
        sampling.suggest(told, name, dist)
    study.tell(told, 1.0)
    bare = study.ask()  # created: nothing sampled yet
    expected = study.ask()
    for name, dist in space.distributions.items():
        sampling.suggest(expected, name, dist)
    frozen = study.get_trials()
    assert frozen[bare.number].params == {}
    point = sampling.trial_point(study, frozen[bare.number])
    assert point.index == 1 and len(point.params) == len(space.distributions)
    again = sampling.trial_point(study, frozen[expected.number])
    assert again.index == 2 and again.params == frozen[expected.number].params
    assert point.params != again.params


def test_a_retry_shifts_no_later_point_and_keeps_its_own(make_cfg):
    """qmc: a trial failed at creation is queued with its point; the trials after the retry go
    on with the next points of the sequence, so the sweep covers points 0…n−1 exactly."""
    _, space, study = _study(make_cfg, "qmc")
    bare = study.ask()  # dies at creation
    assert reaper.fail_trial(study, study.get_trials()[bare.number])
    assert reaper.requeue(study, study.get_trials()[bare.number])
    for _ in range(4):
        trial = study.ask()
        for name, dist in space.distributions.items():
            sampling.suggest(trial, name, dist)
        study.tell(trial, 1.0)
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert [t.user_attrs.get("point") for t in done] == [0, None, None, None]
    u = qmc.Sobol(2, scramble=True, seed=3).random(4)
    np.testing.assert_allclose(sorted(-1.0 + 2.0 * u[:, 1]),
                               sorted(t.params["init_m"] for t in done), rtol=1e-12)


def test_minibatch_seeds_follow_the_point_not_the_trial_number(make_cfg):
    """A retry's seed is the seed of the trial it replaces (its point), so a minibatch trial
    gives the same objective value wherever it lands."""
    cfg, _, study = _study(make_cfg, "qmc")
    bare = study.ask()
    reaper.fail_trial(study, study.get_trials()[bare.number])
    reaper.requeue(study, study.get_trials()[bare.number])
    retry, fresh = study.ask(), study.ask()

    class St:  # the two fields point_seeds reads of the loop's Setup
        base = cfg.settings()

    St.study = study
    seeds = point_seeds(cfg, St, [retry, fresh])
    assert seeds == [sampling.trial_seed(cfg, St.base, 0), sampling.trial_seed(cfg, St.base, 1)]
