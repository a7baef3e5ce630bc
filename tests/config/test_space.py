"""study.config.space: search-space entries → SpaceSpec, every space rule (key path and message),
and the start θ₀'s entries for a number of features. The full one-line messages, with the file
and the ``search.space.`` prefix, are checked end to end in config/test_model.py."""

from __future__ import annotations

import pytest

from study.config.messages import Rule
from study.config.space import SpaceSpec, init_space, parse_space
from study.errors import ConfigError

NAN, INF = float("nan"), float("inf")
CONST = "must be a constant, a range {low, high} or {values: [...]}; got a list (write {values: "


def test_entries_become_specs():
    space = parse_space({"lr": 1e-4, "epochs": {"values": [10, 100]},
                         "init_m": {"low": -2, "high": 2, "step": 0.5},
                         "optimizer": {"values": ["gd", "momentum"]},
                         "momentum": {"low": 0, "high": 0.99}, "seed": {"low": 0, "high": 9}})
    assert space["lr"] == SpaceSpec(kind="const", value=1e-4)
    assert space["epochs"].values == (10, 100)
    assert space["init_m"] == SpaceSpec(kind="range", low=-2.0, high=2.0, step=0.5)
    assert type(space["init_m"].low) is float  # a start is a float even when written as 2
    assert space["optimizer"].values == ("gd", "momentum")
    assert space["momentum"].low == 0.0 and type(space["seed"].high) is int


def test_epochs_default_and_order():
    assert list(parse_space({"init_b": 1, "lr": 0.1})) == ["init_b", "lr", "epochs"]
    assert parse_space({"lr": 0.1})["epochs"] == SpaceSpec(kind="const", value=1000)
    assert parse_space({"lr": 0.1, "epochs": 5})["epochs"].value == 5


@pytest.mark.parametrize(("entry", "raw"), [
    (SpaceSpec(kind="const", value=0.5), 0.5),
    (SpaceSpec(kind="values", values=(1, 2)), {"values": [1, 2]}),
    (SpaceSpec(kind="range", low=1e-6, high=1e-3, log=True),
     {"low": 1e-6, "high": 1e-3, "log": True}),
    (SpaceSpec(kind="range", low=0, high=10, step=2), {"low": 0, "high": 10, "log": False,
                                                       "step": 2}),
])
def test_to_raw_is_what_a_config_writes(entry, raw):
    assert entry.to_raw() == raw
    key = "seed" if entry.kind == "range" and entry.step else "lr"
    assert parse_space({"lr": 0.1, key: raw})[key] == entry


SPACE_RULES = [
    # unknown keys, with the closest name or the whole list
    ({"epoch": 10}, ("epoch",), "(did you mean 'epochs'?)"),
    ({"init_m": {"lo": 1, "high": 2}}, ("init_m", "lo"), "(did you mean 'low'?)"),
    ({"lrate": 1}, ("lrate",), "(allowed: lr, epochs, init_m, init_b, init_w, cost, update, "
                               "optimizer, momentum, batch_size, line_search, armijo, shrink, "
                               "standardize, tol_cost_change, tol_grad, tol_param, "
                               "divergence_factor, history_points, history_dense, record_path, "
                               "seed, init_w1)"),
    # a value breaks its key's own rule
    ({"epochs": "ten"}, ("epochs",), "must be an integer; got 'ten'"),
    ({"epochs": 10.5}, ("epochs",), "must be an integer; got 10.5"),
    ({"epochs": True}, ("epochs",), "must be an integer; got true"),
    ({"epochs": 0}, ("epochs",), "must be >= 1 and <= 1000000000; got 0"),
    ({"lr": 0}, ("lr",), "must be > 0 and finite; got 0"),
    ({"init_m": NAN}, ("init_m",), "must be a finite number; got nan"),
    ({"lr": {"low": 1e-6, "high": INF}}, ("lr", "high"), "must be > 0 and finite; got inf"),
    ({"epochs": {"values": [100, -5]}}, ("epochs", "values", 1),
     "must be >= 1 and <= 1000000000; got -5"),
    ({"epochs": {"low": 10, "high": 100.5}}, ("epochs", "high"), "must be an integer; got 100.5"),
    ({"momentum": {"low": 0.5, "high": 1.0}}, ("momentum", "high"),
     "must be >= 0 and < 1; got 1.0"),
    ({"standardize": {"values": [False, "yes"]}}, ("standardize", "values", 1),
     "must be true or false; got 'yes' (only true/false are booleans)"),
    # ranges
    ({"init_m": {"low": 3, "high": 1}}, ("init_m", "low"), "must be <= high (1); got 3"),
    ({"init_m": {"low": -1, "high": 1, "log": True}}, ("init_m", "low"),
     "must be > 0 on a log range; got -1"),
    ({"init_m": {"low": None, "high": 1}}, ("init_m", "low"),
     "must be a number on a range; got null"),
    ({"init_m": {"low": 0, "high": 1, "log": "yes"}}, ("init_m", "log"),
     "must be true or false; got 'yes'"),
    ({"lr": {"low": 1e-6, "high": 1e-3, "log": True, "step": 1e-6}}, ("lr", "step"),
     "is only allowed on a linear range (log: false)"),
    ({"epochs": {"low": 10, "high": 100, "step": 2.5}}, ("epochs", "step"),
     "must be a positive integer; got 2.5"),
    ({"seed": {"low": 0, "high": 9, "step": True}}, ("seed", "step"),
     "must be a positive integer; got true"),
    ({"lr": {"low": 1e-3, "high": 1e-2, "step": 0}}, ("lr", "step"),
     "must be a positive number; got 0"),
    ({"init_m": {"low": 0}}, ("init_m", "high"), "is required in a range {low, high[, log, step]}"),
    ({"cost": {"low": 1, "high": 2}}, ("cost",),
     "cannot be a range: give a constant or {values: [...]}; got {'low': 1, 'high': 2}"),
    # values lists
    ({"init_m": {"values": []}}, ("init_m", "values"), "must not be empty"),
    ({"init_m": {"values": [1, 2, 1]}}, ("init_m", "values", 2),
     "repeats an earlier value; got 1.0"),
    ({"init_m": {"values": 3}}, ("init_m", "values"), "must be a list; got 3"),
    ({"init_m": {"values": [1], "log": True}}, ("init_m", "log"),
     "cannot stand beside values (an entry is a constant, a range or values)"),
    ({"init_m": [1, 2]}, ("init_m",), CONST + "[1, 2]} to sweep it)"),
    # keys that cannot be swept or cannot stand together
    ({"param_tols": {"values": [[0.1]]}}, ("param_tols",),
     "cannot be swept (it sets which tolerances are recorded); set it under algorithm"),
    ({"init_w": 1, "init_m": 1}, ("init_m",),
     "is for one feature and init_w/init_w<i> for several: use one kind"),
    ({"init_w3": 1, "init_m": 1}, ("init_m",),
     "is for one feature and init_w/init_w<i> for several: use one kind"),
    ({"init_w": 1, "init_w2": 1}, ("init_w",),
     "sets every weight, so it cannot stand beside init_w2: use one or the other"),
]


@pytest.mark.parametrize(("entries", "sub", "msg"), SPACE_RULES,
                         ids=[str(i) for i in range(len(SPACE_RULES))])
def test_space_rule_names_the_key_path(entries, sub, msg):
    with pytest.raises(Rule) as caught:
        parse_space({"lr": 1e-4, **entries})
    assert (caught.value.sub, caught.value.msg) == (sub, msg)
    assert caught.value.unknown == msg.startswith("(")


def test_lr_is_required_and_the_space_is_a_mapping():
    with pytest.raises(Rule, match=r"^is required \(the learning rate"):
        parse_space({"epochs": 10})
    with pytest.raises(Rule, match="must be a mapping of parameter names to entries; got"):
        parse_space([1, 2])


def test_init_space_expands_starts():
    space = parse_space({"lr": 0.1, "init_w": {"low": -1, "high": 1}, "init_b": 5})
    starts = init_space(space, 3, "c.yaml")
    assert list(starts) == ["init_w1", "init_w2", "init_w3", "init_b"]
    assert starts["init_w1"].kind == "range" and starts["init_w3"] == starts["init_w1"]
    assert starts["init_b"].value == 5.0
    single = init_space(parse_space({"lr": 0.1, "init_w2": 2}), 2, "c.yaml")
    assert [s.value for s in single.values()] == [0.0, 2.0, 0.0]
    one = init_space(parse_space({"lr": 0.1}), 1, "c.yaml")
    assert {k: v.value for k, v in one.items()} == {"init_m": 0.0, "init_b": 0.0}


@pytest.mark.parametrize(("entries", "d", "message"), [
    ({"init_w": 1}, 1, "c.yaml: search.space.init_w is for several features, but the data has "
                       "one: use init_m and init_b"),
    ({"init_m": 1}, 2, "c.yaml: search.space.init_m is for one feature, but the data has 2: use "
                       "init_w or init_w1 … init_w2"),
    ({"init_w5": 1}, 3, "c.yaml: search.space.init_w5 is beyond the data's 3 features"),
])
def test_starts_must_fit_the_number_of_features(entries, d, message):
    with pytest.raises(ConfigError) as caught:
        init_space(parse_space({"lr": 0.1, **entries}), d, "c.yaml")
    assert str(caught.value) == message
