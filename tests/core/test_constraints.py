"""study.core.constraints: each declared constraint's accepted and refused values and its message
"<name> must be <rule>; got <value>"; the defaults obey their own rules; the engine's choice
tables and Settings read the declarations."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from study.core import constraints as C
from study.core import engine

NAN, INF = math.nan, math.inf

# name, accepted values, (refused value, message) pairs
TABLE = [
    ("lr", [1e-12, 1e-4, 3, 1e300],
     [(0.0, "lr must be > 0 and finite; got 0.0"), (-1e-5, "lr must be > 0 and finite; got -1e-05"),
      (NAN, "lr must be > 0 and finite; got nan"), (INF, "lr must be > 0 and finite; got inf"),
      ("0.1", "lr must be a number; got '0.1'"), (True, "lr must be a number; got true")]),
    ("epochs", [1, 1000, C.MAX_EPOCHS, np.int64(5)],
     [(0, "epochs must be >= 1 and <= 1000000000; got 0"),
      (C.MAX_EPOCHS + 1, f"epochs must be >= 1 and <= 1000000000 ({C.EPOCHS_REASON}); got "
                         "1000000001"),
      (10.0, "epochs must be an integer; got 10.0"),
      (None, "epochs must be an integer; got null")]),
    ("init", [0.0, -1e300, 5],
     [(NAN, "init must be a finite number; got nan"), (-INF, "init must be a finite number; "
                                                             "got -inf")]),
    ("cost", ["mse", "half_mse", "sse"],
     [("mae", "cost must be one of 'mse', 'half_mse' or 'sse'; got 'mae' (did you mean "
              "'mse'?)"), (1, "cost must be one of 'mse', 'half_mse' or 'sse'; got 1")]),
    ("update", ["simultaneous", "sequential"],
     [("async", "update must be one of 'simultaneous' or 'sequential'; got 'async'")]),
    ("optimizer", ["gd", "momentum", "minibatch", "line_search"],
     [("adam", "optimizer must be one of 'gd', 'momentum', 'minibatch' or 'line_search'; got "
               "'adam'")]),
    ("line_search", ["backtracking", "exact"],
     [("wolfe", "line_search must be one of 'backtracking' or 'exact'; got 'wolfe'")]),
    ("momentum", [0, 0.0, 0.5, 0.999],
     [(1.0, "momentum must be >= 0 and < 1; got 1.0"), (1.5, "momentum must be >= 0 and < 1; "
                                                             "got 1.5"),
      (-0.1, "momentum must be >= 0 and < 1; got -0.1"), (NAN, "momentum must be >= 0 and < 1; "
                                                               "got nan")]),
    ("batch_size", [1, 10**6], [(0, "batch_size must be >= 1; got 0"),
                                (1.5, "batch_size must be an integer; got 1.5")]),
    ("armijo", [1e-4, 0.5], [(0.0, "armijo must be > 0 and < 1; got 0.0"),
                             (1, "armijo must be > 0 and < 1; got 1")]),
    ("shrink", [0.5], [(1.0, "shrink must be > 0 and < 1; got 1.0"),
                       (0, "shrink must be > 0 and < 1; got 0")]),
    ("standardize", [True, False], [(1, "standardize must be true or false; got 1")]),
    ("tol_param", [None, 0.0, 1e-9], [(-1.0, "tol_param must be >= 0 and finite; got -1.0"),
                                      (INF, "tol_param must be >= 0 and finite; got inf")]),
    ("tol_grad", [None, 1e-6], [(NAN, "tol_grad must be >= 0 and finite; got nan")]),
    ("tol_cost_change", [None, 1e-6], [(-1e-6, "tol_cost_change must be >= 0 and finite; got "
                                                "-1e-06")]),
    ("divergence_factor", [1.0001, 1e6], [(1.0, "divergence_factor must be > 1 and finite; got "
                                                 "1.0"),
                                          (INF, "divergence_factor must be > 1 and finite; got "
                                                "inf")]),
    ("history_points", [2, 1000], [(1, "history_points must be >= 2 and <= 1000; got 1"),
                                   (1001, "history_points must be >= 2 and <= 1000; got 1001")]),
    ("history_dense", [0, 1000], [(-1, "history_dense must be >= 0 and <= 1000; got -1")]),
    ("param_tols", [(0.1,), [0.1, 0.01]],
     [((), "param_tols must be a non-empty list of distinct values, each > 0 and finite; got ()"),
      ((0.1, -1.0), "param_tols[1] must be > 0 and finite; got -1.0"),
      ((0.1, 0.1), "param_tols must not repeat a tolerance; got [0.1, 0.1]")]),
    ("cost_tols", [(1e-3,)], [((NAN,), "cost_tols[0] must be > 0 and finite; got nan")]),
    ("record_path", [False], [(None, "record_path must be true or false; got null")]),
    ("seed", [0, 2**40], [(-1, "seed must be >= 0; got -1")]),
]


def test_the_table_covers_every_declaration():
    assert {name for name, _, _ in TABLE} == set(C.PARAMETER_CONSTRAINTS)


@pytest.mark.parametrize(("name", "good", "bad"), TABLE, ids=[t[0] for t in TABLE])
def test_each_constraint_accepts_and_refuses(name, good, bad):
    for value in good:
        assert C.check(name, value) is value
        assert C.constraint(name).problem(value) is None
    for value, message in bad:
        with pytest.raises(ValueError) as err:
            C.check(name, value)
        assert str(err.value) == message


def test_a_label_names_the_value_and_check_params_checks_each():
    with pytest.raises(ValueError, match=r"^--lr must be > 0 and finite; got nan$"):
        C.check("lr", NAN, "--lr")
    assert C.check_params({"lr": 1e-3, "epochs": 10}) == {"lr": 1e-3, "epochs": 10}
    with pytest.raises(ValueError, match=r"^epochs must be >= 1"):
        C.check_params({"lr": 1e-3, "epochs": 0})
    with pytest.raises(ValueError, match=r"^init must be a finite number; got inf$"):
        C.check_each("init", [0.0, 1.0, INF])
    with pytest.raises(ValueError, match=r"^init must be a finite number; got inf$"):
        C.check_array("init", np.array([[0.0, 1.0], [INF, NAN]]))
    with pytest.raises(ValueError, match=r"^lr must be > 0 and finite; got 0.0$"):
        C.check_array("lr", np.array([1e-3, 0.0, -1.0]))
    C.check_array("epochs", np.array([1, 10**9]))
    assert C.constraint("max_epochs") is C.constraint("epochs")
    assert C.constraint("epochs").problem(10**400).endswith("; got a 401-digit number")
    assert C.constraint("lr").problem(10**400) is None


def test_rules_read_as_a_reader_writes_them():
    assert C.Interval(float, 0, None, closed="neither").rule == "> 0 and finite"
    assert C.Interval(float, 0, 1, closed="left").rule == ">= 0 and < 1"
    assert C.Interval(float, None, None).rule == "a finite number"
    assert C.Interval(int, 1, None).rule == ">= 1"
    assert C.Interval(int, None, 5, closed="neither").rule == "< 5"
    assert C.Options({"a": "", "b": "", "c": ""}).rule == "one of 'a', 'b' or 'c'"
    assert C.Options({"a": ""}).rule == "one of 'a'"


def test_every_default_obeys_its_own_rule():
    for name, value in C.DEFAULTS.items():
        assert C.constraint(name).problem(value) is None, name


def test_settings_defaults_and_checks_are_the_declared_ones():
    defaults = engine.Settings()
    for f in dataclasses.fields(engine.Settings):
        assert getattr(defaults, f.name) == C.DEFAULTS[f.name]
    assert {f.name for f in dataclasses.fields(engine.Settings)} == \
        set(C.PARAMETER_CONSTRAINTS) - {"lr", "epochs", "init"}
    for name, _, bad in TABLE:
        if name in ("lr", "epochs", "init"):
            continue
        for value, message in bad:
            with pytest.raises(ValueError) as err:
                engine.Settings(**{name: value})
            assert str(err.value) == message


def test_every_declared_choice_has_a_compiled_rule():
    from study.core import kernels

    declared = {name: set(C.PARAMETER_CONSTRAINTS[name].values)
                for name in ("optimizer", "update", "line_search")}
    wanted = {("line_search", s) for s in declared["line_search"]} | {
        (o, u) for o in declared["optimizer"] - {"line_search"} for u in declared["update"]}
    assert set(kernels.RULES) == wanted
    for key in wanted:
        optimizer, second = key
        settings = engine.Settings(optimizer=optimizer, **(
            {"line_search": second} if optimizer == "line_search" else {"update": second}))
        assert engine.rule_name(settings) == key


@pytest.mark.parametrize(("lr", "epochs", "init", "message"), [
    (NAN, 10, (0.0, 0.0), "lr must be > 0 and finite; got nan"),
    (INF, 10, (0.0, 0.0), "lr must be > 0 and finite; got inf"),
    (0.0, 10, (0.0, 0.0), "lr must be > 0 and finite; got 0.0"),
    (1e-3, -1, (0.0, 0.0), "epochs must be >= 1 and <= 1000000000; got -1"),
    (1e-3, 10**15, (0.0, 0.0), f"epochs must be >= 1 and <= 1000000000 ({C.EPOCHS_REASON}); "
                               "got 1000000000000000"),
    (1e-3, 10, (NAN, 0.0), "init must be a finite number; got nan"),
])
def test_trials_are_checked_by_the_declared_rules(well_conditioned, lr, epochs, init, message):
    with pytest.raises(ValueError) as err:
        engine.run_one(well_conditioned, engine.Trial(lr, epochs, init))
    assert str(err.value) == message


def test_every_value_of_a_batch_is_checked(well_conditioned):
    with pytest.raises(ValueError, match=r"^lr must be > 0 and finite; got -1.0$"):
        engine.run_batch(well_conditioned, engine.Settings(), lr=np.array([1e-3, -1.0]),
                         epochs=np.array([5, 5]), init=np.zeros((2, 2)))
