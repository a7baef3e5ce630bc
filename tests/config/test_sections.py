"""study.config.sections through StudyConfig.from_mapping: each section's defaults and refusals
not already covered by test_model.py (data path forms, column forms, tracking URIs, report
folder and tolerance, objective defaults, strict scalars, frozen sections)."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import pydantic
import pytest

from study.config.model import StudyConfig
from study.errors import ConfigError

POINTS = "x,y\n1,1\n2,3\n3,3\n4,3\n5,5\n"
BASE = {"name": "t", "data": {"path": "data.csv"}, "search": {"space": {"lr": 1.0e-4}}}



def _config(changes: dict[str, Any] | None = None, **kwargs: Any) -> StudyConfig:
    raw = copy.deepcopy(BASE)
    for dotted, value in (changes or {}).items():
        node = raw
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return StudyConfig.from_mapping(raw, **kwargs)


def _refused(changes: dict[str, Any], expected: str, **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as info:
        _config(changes, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(kwargs.get("source", "<dict>") + ": "), message
    assert expected in message, message
    return message


# ── data ───────────────────────────────────────────────────────────────────────────────────


def test_data_defaults_and_digest(folder):
    cfg = _config()
    assert cfg.data.x is None and cfg.data.y is None
    assert cfg.data.path == folder / "data.csv"
    assert cfg.data.sha256 == hashlib.sha256(POINTS.encode()).hexdigest()


def test_data_path_resolves_against_base_dir_not_cwd(folder, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    (other / "sub").mkdir()
    (other / "sub" / "d.csv").write_text(POINTS)
    cfg = _config({"data.path": "sub/d.csv"}, base_dir=other)
    assert cfg.data.path == other / "sub" / "d.csv"
    # outputs still follow the working directory, not base_dir
    assert cfg.report.dir == folder / "reports" / "t"
    assert cfg.tracking.storage == str(folder / "optuna.journal")


def test_absolute_data_path_ignores_base_dir(folder, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    cfg = _config({"data.path": str(folder / "data.csv")}, base_dir=elsewhere)
    assert cfg.data.path == folder / "data.csv"


def test_dotted_segments_are_resolved(folder):
    (folder / "a").mkdir()
    cfg = _config({"data.path": "a/../data.csv"})
    assert cfg.data.path == folder / "data.csv"


@pytest.mark.parametrize(("path", "expected"), [
    (".", "data.path must name a CSV file; got '.' ("),
    ("", "data.path must be a file path; got ''"),
    (None, "data.path must be a file path"),
    (["data.csv"], "data.path must be a file path"),
])
def test_data_path_refusals(folder, path, expected):
    message = _refused({"data.path": path}, expected)
    if path == ".":
        assert message.endswith("is a folder)")


def test_a_device_is_not_a_data_file(folder):
    if not Path("/dev/null").exists():
        pytest.skip("no /dev/null")
    _refused({"data.path": "/dev/null"}, "data.path must name a CSV file; got '/dev/null' "
             "(/dev/null is not a regular file)")


@pytest.mark.parametrize(("x", "expected"), [
    ("x", ("x",)), (0, (0,)), (["x"], ("x",)), ([0, 1], (0, 1)), (("x", 0), ("x", 0)),
])
def test_data_x_one_or_many(folder, x, expected):
    assert _config({"data.x": x}).data.x == expected


@pytest.mark.parametrize(("y", "expected"), [("y", "y"), (1, 1), (0, 0)])
def test_data_y_name_or_position(folder, y, expected):
    assert _config({"data.y": y}).data.y == expected


@pytest.mark.parametrize(("changes", "expected"), [
    ({"data.x": True}, "data.x"),
    ({"data.x": ["x", -1]}, "data.x[1]"),
    ({"data.x": [""]}, "data.x[0]"),
    ({"data.y": True}, "data.y"),
    ({"data.y": ""}, "data.y"),
    ({"data.y": 1.0}, "data.y"),
    ({"data.sep": ","}, "unknown key 'data.sep'"),
])
def test_data_column_refusals(folder, changes, expected):
    _refused(changes, expected)


def test_source_label_starts_the_message(folder):
    _refused({"data.y": -1}, "data.y", source="mine.yaml")


# ── algorithm: strict scalars ──────────────────────────────────────────────────────────────


@pytest.mark.parametrize(("changes", "expected"), [
    ({"algorithm.batch_size": 10.5}, "algorithm.batch_size must be an integer; got 10.5"),
    ({"algorithm.batch_size": "10"}, "algorithm.batch_size must be an integer; got '10'"),
    ({"algorithm.batch_size": True}, "algorithm.batch_size must be an integer; got true"),
    ({"algorithm.standardize": 1}, "algorithm.standardize must be true or false; got 1"),
    ({"algorithm.momentum": float("nan")}, "algorithm.momentum must be"),
    ({"algorithm.armijo": float("inf")}, "algorithm.armijo must be"),
    ({"algorithm.param_tols": [0.1, 0.1]}, "algorithm.param_tols must not repeat a tolerance"),
    ({"algorithm.cost_tols": []}, "algorithm.cost_tols must have at least 1 item"),
    ({"algorithm.lr": 0.1}, "unknown key 'algorithm.lr'"),
])
def test_algorithm_refusals(folder, changes, expected):
    _refused(changes, expected)


def test_a_float_setting_accepts_an_int(folder):
    cfg = _config({"algorithm.momentum": 0, "algorithm.divergence_factor": 100})
    assert cfg.algorithm.momentum == 0.0 and isinstance(cfg.algorithm.momentum, float)
    assert cfg.algorithm.divergence_factor == 100.0


# ── objectives ─────────────────────────────────────────────────────────────────────────────


def test_objective_defaults_and_names(folder):
    (only,) = _config().search.objectives
    assert (only.metric, only.direction, only.tol, only.name) == (
        "dist_to_ols", "minimize", None, "dist_to_ols")
    cfg = _config({"search.objectives": [
        {"metric": "epochs_to_param_tol", "tol": 0.01},
        {"metric": "final_cost", "direction": "maximize"}]})
    first, second = cfg.search.objectives
    assert first.direction == "minimize" and first.name == "epochs_to_param_tol_0.01"
    assert second.direction == "maximize" and second.name == "final_cost"


# ── tracking ───────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("uri", ["sqlite:///:memory:", "sqlite:////abs/m.db",
                                 "file:///tmp/mlruns", "http://h:5000"])
def test_absolute_and_non_file_uris_are_kept(folder, uri):
    assert _config({"tracking.mlflow_uri": uri}).tracking.mlflow_uri == uri


def test_absolute_storage_path_is_kept(folder):
    assert _config({"tracking.storage": "/abs/j.journal"}).tracking.storage == "/abs/j.journal"


def test_relative_sqlite_storage_url_is_made_absolute(folder):
    cfg = _config({"tracking.storage": "sqlite:///o/optuna.db"})
    assert cfg.tracking.storage == f"sqlite:///{folder / 'o' / 'optuna.db'}"


@pytest.mark.parametrize(("changes", "expected"), [
    ({"tracking.mlflow_uri": ""}, "tracking.mlflow_uri must be a URI such as"),
    ({"tracking.mlflow_uri": "./mlruns"}, "tracking.mlflow_uri must be a URI such as"),
    ({"tracking.mlflow_uri": 5}, "tracking.mlflow_uri"),
    ({"tracking.host": "x"}, "unknown key 'tracking.host' (allowed: mlflow_uri, storage)"),
])
def test_tracking_refusals(folder, changes, expected):
    _refused(changes, expected)


def test_empty_storage_is_refused(folder):
    _refused({"tracking.storage": ""}, "tracking.storage")


# ── report ─────────────────────────────────────────────────────────────────────────────────


def test_report_defaults_follow_the_name(folder):
    assert _config({"name": "run-2.b"}).report.dir == folder / "reports" / "run-2.b"
    assert _config().report.dist_tol == 0.01


def test_report_dir_absolute_kept_and_relative_to_cwd(folder, tmp_path_factory):
    assert _config({"report.dir": "/abs/rep"}).report.dir == Path("/abs/rep")
    other = tmp_path_factory.mktemp("cfgdir")
    (other / "data.csv").write_text(POINTS)
    cfg = _config({"report.dir": "out"}, base_dir=other)
    assert cfg.report.dir == folder / "out"  # outputs land where the command runs


def test_report_dist_tol_accepts_an_int(folder):
    tol = _config({"report.dist_tol": 1}).report.dist_tol
    assert tol == 1.0 and isinstance(tol, float)


@pytest.mark.parametrize(("changes", "expected"), [
    ({"report.dist_tol": True}, "report.dist_tol must be a number; got true"),
    ({"report.dist_tol": -0.1}, "report.dist_tol must be > 0"),
    ({"report.dist_tol": float("inf")}, "report.dist_tol must be > 0 and finite"),
    ({"report.format": "pdf"}, "unknown key 'report.format' (allowed: dir, dist_tol)"),
])
def test_report_refusals(folder, changes, expected):
    _refused(changes, expected)


def test_empty_report_dir_is_refused_or_absolute(folder):
    try:
        cfg = _config({"report.dir": ""})
    except ConfigError:
        return
    assert cfg.report.dir.is_absolute()


# ── sections are frozen ────────────────────────────────────────────────────────────────────


def test_sections_are_frozen(folder):
    cfg = _config()
    for section, key, value in [(cfg.data, "y", 0), (cfg.algorithm, "momentum", 0.5),
                                (cfg.tracking, "storage", "x"), (cfg.report, "dist_tol", 1.0),
                                (cfg.search.objectives[0], "direction", "maximize")]:
        with pytest.raises(pydantic.ValidationError):
            setattr(section, key, value)
