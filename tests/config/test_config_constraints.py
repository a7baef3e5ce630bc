"""study.config.constraints: the sweep's declarations, and one table of values that the config,
the command line and the engine all refuse with the same rule text."""

from __future__ import annotations

import math

import pytest

from study.cli import main
from study.config.constraints import (
    SWEEP_CONSTRAINTS,
    SWEEP_DEFAULTS,
    declared,
    grid_problem,
)
from study.config.model import StudyConfig
from study.config.space import SpaceSpec
from study.core import engine
from study.core.constraints import EPOCHS_REASON, constraint
from study.errors import ConfigError

POINTS = "x,y\n1,1\n2,3\n3,3\n4,3\n5,5\n"
BASE = {"name": "t", "data": {"path": "data.csv"}, "search": {"space": {"lr": 1.0e-4}}}

# engine name, config key, command-line flag, value on the command line, in YAML, in Python
REFUSED = [
    ("lr", "search.space.lr", "--lr", "nan", ".nan", math.nan),
    ("lr", "search.space.lr", "--lr", "inf", ".inf", math.inf),
    ("lr", "search.space.lr", "--lr", "0.0", "0.0", 0.0),
    ("lr", "search.space.lr", "--lr", "-1.0", "-1.0", -1.0),
    ("epochs", "search.space.epochs", "--epochs", "0", "0", 0),
    ("epochs", "search.space.epochs", "--epochs", str(10**15), str(10**15), 10**15),
    ("init", "search.space.init_m", "--init-m", "nan", ".nan", math.nan),
    ("momentum", "algorithm.momentum", "--momentum", "1.5", "1.5", 1.5),
    ("batch_size", "algorithm.batch_size", "--batch-size", "0", "0", 0),
    ("tol_param", "algorithm.tol_param", "--tol-param", "-1.0", "-1.0", -1.0),
    ("seed", "algorithm.seed", "--seed", "-1", "-1", -1),
]


@pytest.mark.parametrize(("name", "key", "flag", "text", "yaml", "value"), REFUSED,
                         ids=[f"{r[2]}={r[3]}" for r in REFUSED])
def test_config_cli_and_engine_refuse_alike(tmp_path, capsys, well_conditioned, name, key, flag,
                                            text, yaml, value):
    problem = constraint(name).problem(value)
    assert problem is not None and problem.startswith("must be ")
    # the config
    (tmp_path / "data.csv").write_text(POINTS)
    with pytest.raises(ConfigError) as err:
        StudyConfig.from_mapping(BASE, "c.yaml", tmp_path, [f"{key}={yaml}"])
    assert str(err.value) == f"c.yaml: {key} {problem} (from --set {key}={yaml})"
    # the command line
    assert main(["fit", "--data", str(tmp_path / "data.csv"), flag, text]) == 2
    assert capsys.readouterr().err == f"study: error: {flag} {problem}\n"
    # the engine
    with pytest.raises(ValueError) as err:
        if name in ("lr", "epochs", "init"):
            trial = {"lr": 1e-3, "epochs": 10, "init": (0.0, 0.0)}
            trial[name] = (value, 0.0) if name == "init" else value
            engine.run_one(well_conditioned, engine.Trial(**trial))
        else:
            engine.Settings(**{name: value})
    assert str(err.value) == f"{name} {problem}"


def test_the_epoch_bound_gives_its_reason():
    assert f"({EPOCHS_REASON})" in constraint("epochs").problem(10**15)
    assert "(" not in constraint("epochs").problem(0)


def test_sweep_defaults_obey_their_rules_and_samplers_are_declared_once():
    for name, value in SWEEP_DEFAULTS.items():
        assert SWEEP_CONSTRAINTS[name].problem(value) is None, name
    assert declared("search.sampler").values == ("grid", "random", "qmc", "tpe", "nsga2")
    assert declared("momentum") is constraint("momentum")
    assert declared("search.n_trials").problem(0) == "must be >= 1; got 0"
    assert declared("workers").problem(0) == "must be >= 1; got 0"


def test_the_grid_rule_is_stated_once():
    assert grid_problem(SpaceSpec(kind="range", low=0.0, high=1.0, step=0.5)) is None
    assert grid_problem(SpaceSpec(kind="values", values=(1, 2))) is None
    text = grid_problem(SpaceSpec(kind="range", low=0.0, high=1.0))
    assert text.startswith("the grid sampler needs {values: [...]}, a constant or a range with "
                           "step; got a continuous range")
