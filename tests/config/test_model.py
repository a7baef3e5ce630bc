"""study.config.model and `study validate`: every validation rule's one-line message (file,
dotted key, rule, bad value), overrides, defaults, the resolved config and the study hash. The
YAML reading itself is tested in test_yamlio.py, the search space's rules one by one in
test_space.py."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from study.cli import main
from study.config.model import (
    DEFAULTS,
    StudyConfig,
    describe_defaults,
    fingerprint_changes,
    load_config,
)
from study.config.sections import AlgorithmConfig
from study.config.space import SpaceSpec
from study.config.yamlio import parse_yaml
from study.core.data import load_problem
from study.core.engine import Settings
from study.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
POINTS = "x,y\n1,1\n2,3\n3,3\n4,3\n5,5\n"
BASE = {"name": "t", "data": {"path": "data.csv"}, "search": {"space": {"lr": 1.0e-4}}}



def _with(changes: dict[str, Any] | None = None, base: dict | None = None) -> dict:
    """BASE with ``dotted.key: value`` changes (intermediate mappings created)."""
    out = copy.deepcopy(BASE if base is None else base)
    for dotted, value in (changes or {}).items():
        node = out
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def _write(folder: Path, content: str | dict, name: str = "c.yaml") -> Path:
    path = folder / name
    text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def _validate(capsys, path: Path, *overrides: str) -> tuple[int, str, str]:
    argv = ["validate", str(path)]
    for text in overrides:
        argv += ["--set", text]
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _assert_rejected(capsys, folder: Path, path: Path, expected: str, *overrides: str) -> str:
    """Exit 2, one line on stderr naming the file then ``expected``, nothing created."""
    before = sorted(p.name for p in folder.iterdir())
    code, out, err = _validate(capsys, path, *overrides)
    assert code == 2, out
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    message = err.removeprefix("study: error: ").rstrip("\n")
    assert message.startswith(f"{path}"), message
    assert expected in message, message
    assert sorted(p.name for p in folder.iterdir()) == before  # no store, journal or report
    return message


# ── reading the file ───────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(("text", "expected"), [
    ("search:\n  space:\n    lr: 1\n    lr: 2\n", r":4:5: duplicate key 'lr'$"),
    ("name: t\n\tdata: 1\n", r":2:1: found character '\\t' that cannot start any token "
                              r"\(indent with spaces, not tabs\)$"),
    ("", r": the config is empty$"),
    ("# only a comment\n", r": the config is empty$"),
    ("- 1\n- 2\n", r": a config must be a mapping of keys to values; got \[1, 2\]$"),
    ("name: t\n1: 2\n", r": keys must be text; got 1$"),
])
def test_malformed_config_is_one_line(capsys, folder, text, expected):
    path = _write(folder, text)
    message = _assert_rejected(capsys, folder, path, "")
    assert re.fullmatch(re.escape(str(path)) + expected, message) or \
        re.match(re.escape(str(path)) + expected, message), message


def test_scientific_floats_are_numbers_in_a_config(folder):
    path = _write(folder, "name: t\ndata: {path: data.csv}\nalgorithm: {armijo: 1e-3}\n"
                          "search:\n  space:\n    lr: {low: 1e-6, high: 1E-3, log: true}\n"
                          "    epochs: 010\n")
    cfg = load_config(path)
    assert cfg.algorithm.armijo == 0.001
    lr = cfg.search.space["lr"]
    assert (lr.kind, lr.low, lr.high, lr.log) == ("range", 1e-6, 1e-3, True)
    assert cfg.search.space["epochs"].value == 10


def test_a_quoted_number_is_text(capsys, folder):
    path = _write(folder, "name: t\ndata: {path: data.csv}\nalgorithm: {armijo: '1e-3'}\n"
                          "search: {space: {lr: 1}}\n")
    _assert_rejected(capsys, folder, path, f"{path}: algorithm.armijo must be a number; got "
                                           "'1e-3' (a quoted number is text)")


def test_missing_or_unreadable_config(capsys, folder):
    _assert_rejected(capsys, folder, folder / "nope.yaml", ": no such file")
    bad = folder / "bad.yaml"
    bad.write_bytes(b"name: \xff\n")
    _assert_rejected(capsys, folder, bad, ": not UTF-8 text")


# ── validation rules ───────────────────────────────────────────────────────────────────────

NAN, INF = float("nan"), float("inf")
LONG = "k" * 300
RULES = [
    # typos and unknown keys
    ({"search.n_trails": 5}, "unknown key 'search.n_trails' (did you mean 'n_trials'?)"),
    ({"serach": {}}, "unknown key 'serach' (did you mean 'search'?)"),
    ({"algorithm.stepsize": 1}, "unknown key 'algorithm.stepsize' (allowed: cost, update"),
    ({"search.objectives": [{"metric": "dist_to_ols", "dir": "minimize"}]},
     "unknown key 'search.objectives[0].dir' (did you mean 'direction'?)"),
    ({"search.space.epoch": 10}, "unknown key 'search.space.epoch' (did you mean 'epochs'?)"),
    ({"search.space.init_m": {"lo": 1, "high": 2}},
     "unknown key 'search.space.init_m.lo' (did you mean 'low'?)"),
    # strict types
    ({"algorithm.batch_size": "10"}, "algorithm.batch_size must be an integer; got '10'"),
    ({"algorithm.momentum": True}, "algorithm.momentum must be a number; got true"),
    ({"algorithm.standardize": "yes"}, "algorithm.standardize must be true or false; got 'yes' "
                                       "(only true/false are booleans)"),
    ({"algorithm.standardize": 1}, "algorithm.standardize must be true or false; got 1"),
    ({"search.space": [1, 2]}, "search.space must be a mapping of parameter names to entries"),
    ({"algorithm": [1]}, "algorithm must be a mapping of keys to values; got [1]"),
    # non-finite numbers
    ({"algorithm.momentum": INF}, "algorithm.momentum must be >= 0 and < 1; got inf"),
    ({"report.dist_tol": NAN}, "report.dist_tol must be > 0 and finite; got nan"),
    # ranges of values
    ({"search.space.lr": {"low": -1e-05, "high": 1e-3, "log": True}},
     "search.space.lr.low must be > 0 and finite; got -1e-05"),
    ({"search.space.lr": {"values": [1e-4, -1.0]}},
     "search.space.lr.values[1] must be > 0 and finite; got -1.0"),
    ({"search.space.init_m": {"values": [1, 2, 1]}},
     "search.space.init_m.values[2] repeats an earlier value; got 1.0"),
    ({"search.space.init_m": [1, 2]}, "search.space.init_m must be a constant, a range {low, "
                                      "high} or {values: [...]}; got a list"),
    ({"search.n_trials": 0}, "search.n_trials must be >= 1; got 0"),
    ({"search.batch_size": 0}, "search.batch_size must be >= 1; got 0"),
    ({"algorithm.momentum": 1}, "algorithm.momentum must be >= 0 and < 1; got 1"),
    ({"algorithm.shrink": 0}, "algorithm.shrink must be > 0 and < 1; got 0"),
    ({"algorithm.divergence_factor": 1},
     "algorithm.divergence_factor must be > 1 and finite; got 1"),
    ({"algorithm.history_points": 1}, "algorithm.history_points must be >= 2 and <= 1000; got 1"),
    ({"algorithm.tol_param": -0.1}, "algorithm.tol_param must be >= 0 and finite; got -0.1"),
    ({"algorithm.param_tols": []}, "algorithm.param_tols must have at least 1 item(s)"),
    ({"algorithm.param_tols": [0.1, 0.1]}, "algorithm.param_tols must not repeat a tolerance"),
    ({"algorithm.cost_tols": [0.1, -1]}, "algorithm.cost_tols[1] must be > 0 and finite; got -1"),
    # choices, listing the allowed ones
    ({"search.sampler": "cmaes"}, "search.sampler must be one of 'grid', 'random', 'qmc', "
                                  "'tpe' or 'nsga2'; got 'cmaes'"),
    ({"algorithm.cost": "mae"}, "algorithm.cost must be one of 'mse', 'half_mse' or 'sse'; "
                                "got 'mae'"),
    ({"algorithm.update": "async"}, "algorithm.update must be one of 'simultaneous' or "
                                    "'sequential'; got 'async'"),
    ({"algorithm.optimizer": "adam"}, "algorithm.optimizer must be one of 'gd', "),
    ({"algorithm.line_search": "wolfe"}, "algorithm.line_search must be one of 'backtracking' "
                                         "or 'exact'; got 'wolfe'"),
    ({"search.sampler": "rand"}, "search.sampler must be one of 'grid', 'random', 'qmc', "
                                 "'tpe' or 'nsga2'; got 'rand' (did you mean 'random'?)"),
    ({"algorithm.update": "simultanous"}, "algorithm.update must be one of 'simultaneous' or "
                                          "'sequential'; got 'simultanous' (did you mean "
                                          "'simultaneous'?)"),
    ({"search.space.optimizer": {"values": ["gd", "bogus"]}},
     "search.space.optimizer.values[1] must be one of 'gd', "),
    ({"search.space.init_w": 1, "search.space.init_w2": 1},
     "search.space.init_w sets every weight, so it cannot stand beside init_w2"),
    # objectives
    ({"search.objectives": [{"metric": "epochs_to_param_tol", "tol": 0.05}]},
     "search.objectives[0].tol must be one of algorithm.param_tols (0.1, 0.01, 0.001); "
     "got 0.05"),
    ({"search.objectives": [{"metric": "epochs_to_cost_tol"}]},
     "search.objectives[0].tol is required for metric epochs_to_cost_tol"),
    ({"search.objectives": [{"metric": "dist_to_ols", "tol": 0.01}]},
     "search.objectives[0].tol is only for epochs_to_* metrics"),
    ({"search.objectives": [{"metric": "dist_to_ols"}, {"metric": "dist_to_ols"}]},
     "search.objectives[1] repeats objective dist_to_ols"),
    ({"search.objectives": []}, "search.objectives must have at least 1 item(s)"),
    ({"search.objectives": [{"metric": "accuracy"}]}, "search.objectives[0].metric must be one "
                                                      "of 'final_cost', "),
    ({"search.objectives": [{"metric": "cost_gap", "direction": "down"}]},
     "search.objectives[0].direction must be one of 'minimize' or 'maximize'; got 'down'"),
    # the grid sampler
    ({"search.sampler": "grid", "search.space.init_m": {"low": 0, "high": 1}},
     "search.space.init_m the grid sampler needs {values: [...]}, a constant or a range with "
     "step; got a continuous range"),
    # required keys
    ({"search.space": {"epochs": 10}}, "search.space.lr is required"),
    ({"data": {}}, "data.path is required"),
    ({"search": {}}, "search.space is required"),
    # names and sizes that reach MLflow (RELIABILITY case 15)
    ({"search.space.cost[0]": "mse"}, "search.space key 'cost[0]' is not a valid parameter "
                                      "name: use letters, digits, '_', '.' and '-'"),
    ({f"search.space.{LONG}": 1}, "search.space has a key of 300 characters ('kkkkkkkkkkkkkkkk"
                                  "kkkk'…): a parameter name has at most 250"),
    ({"tracking.mlflow_uri": "sqlite:///" + "m" * 5991},
     "tracking.mlflow_uri must be at most 6000 characters; got a 6001-character string"),
    ({"search.space.cost": "x" * 6001}, "search.space.cost must be at most 6000 characters; "
                                        "got a 6001-character string"),
    ({f"algorithm.{LONG}": 1}, "unknown key 'algorithm.kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
                               "…(300 characters)'"),
    # study name, data and tracking
    ({"name": "my study"}, "name must be 1-100 letters, digits, '_', '-' or '.', starting with "
                           "a letter or digit; got 'my study'"),
    ({"name": "../escape"}, "name must be 1-100 letters"),
    ({"name": "a" * 101}, "name must be 1-100 letters"),
    ({"name": 5}, "name must be text; got 5"),
    ({"data.path": "nope.csv"}, "data.path must name an existing CSV file; got 'nope.csv' (no "
                                "such file: "),
    ({"data.path": 5}, "data.path must be a file path; got 5"),
    ({"data.x": [1.5]}, "data.x[0]"),
    ({"data.y": -1}, "data.y"),
    ({"tracking.mlflow_uri": "mlruns"}, "tracking.mlflow_uri must be a URI such as "
                                        "sqlite:///mlflow.db or http://host:5000; got 'mlruns'"),
    ({"tracking.storage": 5}, "tracking.storage must be text; got 5"),
    ({"report.dist_tol": 0}, "report.dist_tol must be > 0 and finite; got 0"),
]


@pytest.mark.parametrize(("changes", "expected"), RULES,
                         ids=[str(i) for i in range(len(RULES))])
def test_rule_broken_is_one_line_naming_file_key_and_value(capsys, folder, changes, expected):
    path = _write(folder, _with(changes))
    _assert_rejected(capsys, folder, path, f"{path}: {expected}")


def test_missing_data_file_points_to_the_articles_data(capsys, folder):
    path = _write(folder, _with({"data.path": "../data/data.csv"}))
    message = _assert_rejected(capsys, folder, path, "data.path must name an existing CSV file")
    assert "the article's data lives at ../shared/data/nedrich/data.csv relative to the project " \
           "root" in message


def test_missing_name_and_empty_sections(capsys, folder):
    raw = _with()
    del raw["name"]
    _assert_rejected(capsys, folder, _write(folder, raw), ": name is required")
    cfg = load_config(_write(folder, "name: t\ndata: {path: data.csv}\nalgorithm:\ntracking:\n"
                                     "report:\nsearch: {space: {lr: 0.1}}\n", "e.yaml"))
    assert cfg.algorithm == AlgorithmConfig()


def test_bad_data_is_reported_by_validate(capsys, folder):
    path = _write(folder, _with())
    code, out, err = _validate(capsys, path)
    assert (code, err) == (0, "") and out == f"ok: {path}: t, 100 trials, space: lr, epochs\n"
    (folder / "data.csv").write_text("x,y\n1,2\n2,oops\n3,4\n")
    code, out, err = _validate(capsys, path)
    assert (code, out) == (2, "")
    assert err == f"study: error: {folder / 'data.csv'}:3:2: cell 'oops' is not a number in " \
                  "column 'y'\n"
    assert sorted(p.name for p in folder.iterdir()) == ["c.yaml", "data.csv"]


def test_start_names_must_fit_the_number_of_features(capsys, folder):
    (folder / "wide.csv").write_text("a,b,y\n1,0,1\n2,1,2\n3,0,2\n4,2,5\n5,1,4\n")
    path = _write(folder, _with({"data.path": "wide.csv", "search.space.init_m": 1}))
    _assert_rejected(capsys, folder, path, "search.space.init_m is for one feature, but the data "
                                           "has 2: use init_w or init_w1 … init_w2")
    path = _write(folder, _with({"search.space.init_w": {"low": -1, "high": 1}}))
    _assert_rejected(capsys, folder, path, "search.space.init_w is for several features, but "
                                           "the data has one: use init_m and init_b")


def test_init_space_expands_starts(folder):
    cfg = StudyConfig.from_mapping(_with({"search.space.init_w": {"low": -1, "high": 1},
                                          "search.space.init_b": 5}))
    space = cfg.init_space(3)
    assert list(space) == ["init_w1", "init_w2", "init_w3", "init_b"]
    assert space["init_w3"] == cfg.search.space["init_w"] and space["init_b"].value == 5.0
    with pytest.raises(ConfigError, match="init_w is for several features, but the data has one"):
        cfg.init_space(1)
    with pytest.raises(ConfigError, match=r"^<dict>: search.space.init_w5 is beyond the data's 3 "
                                          "features$"):
        StudyConfig.from_mapping(_with({"search.space.init_w5": 1})).init_space(3)


# ── overrides ──────────────────────────────────────────────────────────────────────────────


def test_overrides_apply_before_validation(folder):
    path = _write(folder, _with())
    cfg = load_config(path, ["search.n_trials=7", "search.space.lr={low: 1e-6, high: 1e-3, "
                             "log: true}", "algorithm.standardize=true",
                             "search.objectives=[{metric: cost_gap}]",
                             "search.objectives.0.direction=maximize", "report.dir=out",
                             "data.x=[0]"])
    assert cfg.search.n_trials == 7
    assert cfg.search.space["lr"] == SpaceSpec(kind="range", low=1e-6, high=1e-3, log=True)
    assert cfg.algorithm.standardize is True and cfg.settings().standardize is True
    assert cfg.search.objectives[0].direction == "maximize"
    assert cfg.report.dir == folder / "out"
    assert cfg.data.x == (0,)
    assert load_config(path).search.n_trials == 100  # the file is unchanged


@pytest.mark.parametrize(("override", "expected"), [
    ("search.n_trials=0", "search.n_trials must be >= 1; got 0 (from --set search.n_trials=0)"),
    ("search.n_trails=5", "unknown key 'search.n_trails' (did you mean 'n_trials'?) (from --set "
                          "search.n_trails=5)"),
    ("search.space.lr.low=-1", "--set search.space.lr.low=-1: search.space.lr is not a mapping; "
                               "got 0.0001"),
    ("search.space.lr={low: -1e-5, high: 1}",
     "search.space.lr.low must be > 0 and finite; got -1e-05 (from --set "
     "search.space.lr={low: -1e-5, "),
    ("search.space.epochs=1e3", "search.space.epochs must be an integer; got 1000.0 (from --set"),
    ("foo", "--set foo: expected KEY=VALUE with a dotted key"),
    ("=3", "--set =3: expected KEY=VALUE"),
    ("a..b=3", "--set a..b=3: expected KEY=VALUE"),
    ("search.n_trials=[1", "--set search.n_trials=[1: value:1:3: expected ',' or ']'"),
    ("name.x=1", "--set name.x=1: name is not a mapping; got 't'"),
    ("search.objectives.3.metric=cost_gap", "search.objectives must be a list; got {'3': "
                                            "{'metric': 'cost_gap'}} (from --set search."),
])
def test_bad_overrides_name_the_override(capsys, folder, override, expected):
    path = _write(folder, _with())
    _assert_rejected(capsys, folder, path, expected, override)


def test_override_of_a_missing_list_item(capsys, folder):
    path = _write(folder, _with({"data.x": ["x"]}))
    _assert_rejected(capsys, folder, path, "--set data.x.4=1: data.x has 1 item(s), numbered "
                                           "from 0; got 4", "data.x.4=1")
    assert load_config(path, ["data.x.0=0"]).data.x == (0,)


# ── defaults, paths, resolved config ───────────────────────────────────────────────────────


def test_algorithm_defaults_are_the_engines():
    assert list(AlgorithmConfig.model_fields) == [f.name for f in dataclasses.fields(Settings)]
    assert AlgorithmConfig().model_dump() == dataclasses.asdict(Settings())
    for f in dataclasses.fields(Settings):
        assert DEFAULTS[f"algorithm.{f.name}"] == f.default


def test_settings_carry_the_algorithm_section(folder):
    cfg = StudyConfig.from_mapping(_with({"algorithm": {"cost": "sse", "tol_param": 0.01,
                                                        "param_tols": [0.5, 0.01],
                                                        "momentum": 0}}))
    settings = cfg.settings()
    assert isinstance(settings, Settings)
    assert settings == dataclasses.replace(Settings(), cost="sse", tol_param=0.01,
                                           param_tols=(0.5, 0.01), momentum=0.0)
    assert StudyConfig.from_mapping(_with()).settings() == Settings()


def test_output_defaults_follow_the_working_directory(folder):
    cfg = StudyConfig.from_mapping(_with())
    assert cfg.tracking.mlflow_uri == f"sqlite:///{folder / 'mlflow.db'}"
    assert cfg.tracking.storage == str(folder / "optuna.journal")
    assert cfg.report.dir == folder / "reports" / "t"
    assert cfg.report.dist_tol == 0.01
    rel = StudyConfig.from_mapping(_with({"tracking": {"mlflow_uri": "sqlite:///runs/m.db",
                                                       "storage": "j/s.journal"},
                                          "report.dir": "out"}))
    assert rel.tracking.mlflow_uri == f"sqlite:///{folder / 'runs' / 'm.db'}"
    assert rel.tracking.storage == str(folder / "j" / "s.journal")
    assert rel.report.dir == folder / "out"
    urls = StudyConfig.from_mapping(_with({"tracking": {
        "mlflow_uri": "http://mlflow:5000", "storage": "postgresql://u:p@db/optuna"}}))
    assert urls.tracking.mlflow_uri == "http://mlflow:5000"
    assert urls.tracking.storage == "postgresql://u:p@db/optuna"
    assert sorted(p.name for p in folder.iterdir()) == ["data.csv"]  # nothing created


def test_data_path_is_relative_to_the_config_folder(folder, tmp_path_factory):
    (folder / "configs").mkdir()
    path = _write(folder / "configs", _with({"data.path": "../data.csv"}))
    cfg = load_config(path)
    assert cfg.data.path == folder / "data.csv" and cfg.data.path.is_absolute()
    assert cfg.source == path.resolve()
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    mapped = StudyConfig.from_mapping(_with({"data.path": "../data.csv"}),
                                      base_dir=folder / "configs")
    assert mapped.data.path == folder / "data.csv" and mapped.source is None
    with pytest.raises(ConfigError, match=r"^<dict>: data.path must name an existing CSV"):
        StudyConfig.from_mapping(_with(), base_dir=elsewhere)


def test_data_columns(folder):
    cfg = StudyConfig.from_mapping(_with({"data.x": "x", "data.y": 1}))
    assert cfg.data.x == ("x",) and cfg.data.y == 1
    assert StudyConfig.from_mapping(_with({"data.x": [0, "x"]})).data.x == (0, "x")


def test_resolved_fills_every_default_and_round_trips(folder):
    cfg = load_config(_write(folder, _with({"search.space.init_m": {"low": -1, "high": 1}})))
    resolved = cfg.resolved()
    json.dumps(resolved)  # plain data
    for key in DEFAULTS:
        if not key.startswith("search.space."):
            node = resolved
            for part in key.split("."):
                node = node[part]
    assert resolved["search"]["space"] == {"lr": 1e-4, "init_m": {"low": -1.0, "high": 1.0,
                                                                  "log": False}, "epochs": 1000}
    assert resolved["search"]["objectives"] == [{"metric": "dist_to_ols",
                                                 "direction": "minimize"}]
    again = StudyConfig.from_mapping(parse_yaml(cfg.to_yaml(), "again"))
    assert again.resolved() == resolved and again.hash() == cfg.hash()
    odd = StudyConfig.from_mapping(_with({"name": "1e5"}))
    assert parse_yaml(odd.to_yaml(), "odd")["name"] == "1e5"  # quoted, not read as a float


def test_describe_defaults_lists_every_key():
    table = describe_defaults()
    for key in DEFAULTS:
        assert key in table
    assert DEFAULTS["search.sampler"] == "tpe" and DEFAULTS["search.space.epochs"] == 1000
    assert DEFAULTS["tracking.mlflow_uri"] == "sqlite:///<cwd>/mlflow.db"


def test_space_specs_and_objectives(folder):
    cfg = StudyConfig.from_mapping(_with({
        "search.space.epochs": {"values": [10, 100]},
        "search.space.init_m": {"low": -2, "high": 2, "step": 0.5},
        "search.space.optimizer": {"values": ["gd", "momentum"]},
        "search.space.momentum": {"low": 0, "high": 0.99},
        "search.objectives": [{"metric": "dist_to_ols"},
                              {"metric": "epochs_to_param_tol", "tol": 0.01},
                              {"metric": "epochs_to_cost_tol", "tol": 1e-4,
                               "direction": "minimize"}]}))
    space = cfg.search.space
    assert space["lr"].kind == "const" and space["lr"].value == 1e-4
    assert space["epochs"].values == (10, 100)
    assert space["init_m"].to_raw() == {"low": -2.0, "high": 2.0, "log": False, "step": 0.5}
    assert space["momentum"].low == 0.0 and space["momentum"].high == 0.99
    assert cfg.search.swept == ["epochs", "init_m", "optimizer", "momentum"]
    assert [o.name for o in cfg.search.objectives] == [
        "dist_to_ols", "epochs_to_param_tol_0.01", "epochs_to_cost_tol_0.0001"]
    with pytest.raises(Exception, match="frozen"):
        cfg.name = "other"


def test_grid_accepts_values_constants_and_stepped_ranges(folder):
    cfg = StudyConfig.from_mapping(_with({"search.sampler": "grid",
                                          "search.space.init_m": {"low": 0, "high": 1,
                                                                  "step": 0.5},
                                          "search.space.cost": {"values": ["mse", "sse"]}}))
    assert cfg.search.sampler == "grid"


# ── the study hash ─────────────────────────────────────────────────────────────────────────


def test_hash_ignores_budget_and_outputs(folder):
    base = StudyConfig.from_mapping(_with())
    same = StudyConfig.from_mapping(_with({"search.n_trials": 5, "search.batch_size": 3,
                                           "tracking.storage": "x.journal",
                                           "report.dist_tol": 0.5}))
    assert base.hash() == same.hash() and len(base.hash()) == 64
    assert base.study_fingerprint() == same.study_fingerprint()


@pytest.mark.parametrize(("changes", "changed"), [
    ({"search.space.lr": 2e-4}, ["search.space.lr"]),
    ({"search.sampler": "random"}, ["search.sampler"]),
    ({"search.seed": 1}, ["search.seed"]),
    ({"search.objectives": [{"metric": "cost_gap"}]}, ["search.objectives"]),
    ({"algorithm.cost": "sse"}, ["algorithm.cost"]),
    ({"data.x": ["x"]}, ["data.x"]),
])
def test_hash_changes_with_what_defines_the_trials(folder, changes, changed):
    base = StudyConfig.from_mapping(_with())
    other = StudyConfig.from_mapping(_with(changes))
    assert base.hash() != other.hash()
    assert fingerprint_changes(base.study_fingerprint(), other.study_fingerprint()) == changed


def test_hash_follows_the_data_file_contents(folder):
    before = StudyConfig.from_mapping(_with())
    (folder / "data.csv").write_text(POINTS.replace("5,5", "5,6"))
    after = StudyConfig.from_mapping(_with())
    assert fingerprint_changes(before.study_fingerprint(), after.study_fingerprint()) == \
        ["data.sha256"]


# ── the shipped configs ────────────────────────────────────────────────────────────────────


def _needs_shared(path: Path) -> None:
    if "shared/data" in path.read_text() and not (ROOT.parent / "shared" / "data").is_dir():
        pytest.skip("the article's data is not beside the project")


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_validate(capsys, tmp_path, monkeypatch, path):
    _needs_shared(path)
    monkeypatch.chdir(tmp_path)
    cfg = load_config(path)
    code, out, err = _validate(capsys, path)
    assert (code, err) == (0, "")
    assert out == (f"ok: {path}: {cfg.name}, {cfg.search.n_trials} trials, space: "
                   f"{', '.join(cfg.search.space)}\n")
    assert cfg.name == path.stem
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_comment_every_key(path):
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"\s*-?\s*[A-Za-z_][\w.]*:", line) and "#" not in line:
            above = lines[i - 1].strip() if i else ""
            assert above.startswith("#"), f"{path.name}:{i + 1}: {line.strip()} has no comment"


def test_nedrich_configs_read_the_shared_file(nedrich_csv):
    for name in ("nedrich", "tutorial_a", "tutorial_d", "million"):
        assert load_config(ROOT / "configs" / f"{name}.yaml").data.path == nedrich_csv.resolve()


def test_million_config_holds_the_question(nedrich_csv):
    cfg = load_config(ROOT / "configs" / "million.yaml")
    space = cfg.search.space
    assert space["lr"].values == (1e-4,) and space["epochs"].values == (5_000_000,)
    starts = {(m, b) for m in space["init_m"].values for b in space["init_b"].values}
    assert {(0, 0), (-1, 0), (2, 8)} <= starts
    assert cfg.search.sampler == "grid" and cfg.search.n_trials == len(starts)


def test_quickstart_spans_the_stability_edge():
    cfg = load_config(ROOT / "configs" / "quickstart.yaml")
    problem = load_problem(cfg.data.path)
    x, n = problem.X[:, 0], problem.n
    lam_max = np.linalg.eigvalsh((2 / n) * np.array([[x @ x, x.sum()], [x.sum(), n]]))[-1]
    lr_max = 2 / lam_max
    lr = cfg.search.space["lr"]
    assert lr.log and lr.low <= 1.01e-2 * lr_max and 2.5 * lr_max <= lr.high <= 4 * lr_max
    assert 100 <= cfg.search.n_trials <= 150 and cfg.algorithm.tol_param == 0.01
    assert cfg.search.sampler in ("qmc", "tpe")


def test_tutorial_configs_match_the_setups():
    c = load_config(ROOT / "configs" / "tutorial_c.yaml")
    assert c.search.space["cost"].values == ("half_mse", "sse")
    assert (c.search.space["init_m"].value, c.search.space["init_b"].value) == (0.48, 0.75)
    assert c.search.space["epochs"].values == (10, 100, 1000, 1_000_000)
    b = load_config(ROOT / "configs" / "tutorial_b.yaml")
    assert b.algorithm.update == "sequential" and b.search.space["lr"].value == 0.001
    e = load_config(ROOT / "configs" / "tutorial_e.yaml")
    assert e.algorithm.cost == "half_mse" and e.search.space["init_w"].kind == "range"
    v = load_config(ROOT / "configs" / "variants.yaml")
    assert v.search.sampler == "grid"
    assert {"cost", "update", "standardize"} <= set(v.search.swept)
