"""study.report.spec: spec_from_config on the shipped quickstart config and on small configs,
and the objectives' columns and titles."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from study import api
from study.config.model import StudyConfig
from study.core.engine import Settings
from study.report.spec import Objective, ReportSpec, metric_label, spec_from_config

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "configs" / "quickstart.yaml"


def test_quickstart_spec_follows_the_yaml():
    raw = yaml.safe_load(QUICKSTART.read_text(encoding="utf-8"))
    spec = spec_from_config(api.load_config(QUICKSTART))
    assert isinstance(spec, ReportSpec)
    assert spec.name == raw["name"] == "quickstart"
    assert spec.data == str((ROOT / "data" / "blog_like.csv").resolve())
    assert spec.dist_tol == raw["report"]["dist_tol"]
    algorithm = raw["algorithm"]
    assert spec.settings == dataclasses.replace(Settings(), **algorithm)
    assert spec.swept == tuple(raw["search"]["space"])  # every entry is a range or values list
    assert spec.log_scaled == frozenset(k for k, v in raw["search"]["space"].items()
                                        if isinstance(v, dict) and v.get("log"))
    assert spec.constants == {}
    (objective,) = spec.objectives
    (wanted,) = raw["search"]["objectives"]
    assert objective.column == f"{wanted['metric']}_{wanted['tol']:g}"
    assert objective.column == "epochs_to_param_tol_0.01"
    assert objective.direction == wanted["direction"]
    assert objective.title == "epochs to ‖θ − θ*‖ ≤ 0.01"


def test_overrides_reach_the_spec():
    spec = spec_from_config(api.load_config(QUICKSTART, ["report.dist_tol=0.5",
                                                         "search.space.init_b=3.0",
                                                         "name=qs2"]))
    assert spec.name == "qs2" and spec.dist_tol == 0.5
    assert "init_b" not in spec.swept and spec.constants == {"init_b": 3.0}


def test_constants_values_and_several_objectives(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("x,y\n1,1\n2,3\n3,3\n4,3\n5,5\n")
    cfg = StudyConfig.from_mapping({
        "name": "s", "data": {"path": "d.csv"},
        "algorithm": {"cost": "sse", "cost_tols": [0.5, 0.001]},
        "search": {
            "objectives": [{"metric": "dist_to_ols"},
                           {"metric": "epochs_to_cost_tol", "tol": 0.001,
                            "direction": "maximize"},
                           {"metric": "rel_cost_gap"}],
            "space": {"lr": {"low": 1e-3, "high": 1e-1, "log": True},
                      "epochs": {"values": [10, 100]},
                      "init_m": {"values": [2.0]},
                      "init_b": 1.5,
                      "momentum": {"low": 0.0, "high": 0.9}}}})
    spec = spec_from_config(cfg)
    assert spec.settings.cost == "sse" and spec.settings.cost_tols == (0.5, 0.001)
    assert spec.swept == ("lr", "epochs", "momentum")  # a one-item values list does not vary
    assert spec.log_scaled == frozenset({"lr"})
    assert spec.constants == {"init_b": 1.5}
    assert [(o.column, o.direction) for o in spec.objectives] == [
        ("dist_to_ols", "minimize"), ("epochs_to_cost_tol_0.001", "maximize"),
        ("rel_cost_gap", "minimize")]
    assert [o.title for o in spec.objectives] == [
        "distance to OLS ‖θ − θ*‖", "epochs to (J − J*)/J* ≤ 0.001",
        "relative cost gap (J − J*)/J*"]
    assert spec.data == str(tmp_path / "d.csv")


def test_report_spec_defaults():
    spec = ReportSpec(name="n")
    assert spec.settings == Settings() and spec.dist_tol == 0.01
    assert spec.objectives == () and spec.swept == () and spec.constants == {}
    assert spec.log_scaled == frozenset() and spec.data == ""
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "m"


@pytest.mark.parametrize(("column", "label"), [
    ("final_cost", "final cost J"),
    ("cost_gap", "cost gap J − J*"),
    ("epochs_run", "epochs run"),
    ("epochs_to_param_tol_0.001", "epochs to ‖θ − θ*‖ ≤ 0.001"),
    ("epochs_to_cost_tol_1e-05", "epochs to (J − J*)/J* ≤ 1e-05"),
    ("something_else", "something_else"),
])
def test_metric_labels(column, label):
    assert metric_label(column) == label


def test_objective_title_prefers_a_distinct_label():
    assert Objective("dist_to_ols").direction == "minimize"
    assert Objective("dist_to_ols", label="how far").title == "how far"
    assert Objective("dist_to_ols", label="dist_to_ols").title == "distance to OLS ‖θ − θ*‖"
