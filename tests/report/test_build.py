"""The report end to end: the files build_report writes, report.html self-contained, matplotlib
loaded only to draw, and `study report` on a real sweep."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from study.errors import StudyError
from study.report import build as report


def test_build_report_writes_self_contained_html(valley_table, valley, tmp_path):
    table, sp = valley_table
    frame = table[[c for c in table.columns if c not in (
        "start_distance", "region", "lr_max", "agrees") and not c.startswith("predicted")]]
    out = report.build_report(sp, valley, frame, tmp_path / "rep")
    folder = tmp_path / "rep"
    assert out == folder / "report.html"
    for name in ("trials.csv", "trials.parquet", "report.md", "summary.json"):
        assert (folder / name).is_file()
    pngs = sorted((folder / "figures").glob("*.png"))
    assert {p.stem for p in pngs} == {"data", "regions", "distance", "cost", "contour", "axes"}
    page = out.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == len(pngs)
    assert re.findall(r'src="(?!data:)', page) == [] and "<link" not in page
    saved = pd.read_parquet(folder / "trials.parquet")
    assert len(saved) == len(frame) and list(saved["region"]) == list(table["region"])
    assert len(pd.read_csv(folder / "trials.csv")) == len(frame)
    md = (folder / "report.md").read_text(encoding="utf-8")
    assert md.count("](figures/") == len(pngs)
    for heading in ("Conclusion", "What theory says", "Regions", "Measured against predicted",
                    "Best trials"):
        assert f"## {heading}" in md
    assert "λ_min" in md and "condition number" in md and "2/(λ_min+λ_max)" in md


def test_no_trials_is_an_error(valley, report_spec, tmp_path):
    with pytest.raises(StudyError, match="no complete trials"):
        report.build_report(report_spec(), valley, pd.DataFrame(), tmp_path)


def test_unwritable_destination_is_one_line(valley_table, valley, tmp_path):
    table, sp = valley_table
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StudyError, match=f"cannot write the report to {blocker / 'rep'}"):
        report.build_report(sp, valley, table, blocker / "rep")


def test_report_at_extreme_data_scales(valley, engine_frame, report_spec, tmp_path):
    """Data × 1e±100 swept over the quickstart's absolute lrs (every trial diverges at 1e100,
    none moves at 1e-100): the report still writes every file."""
    from study.core import engine
    from study.core.problem import Problem

    for scale in (1e100, 1e-100):
        problem = Problem(valley.X * scale, valley.y * scale)
        frame, _, _ = engine_frame(problem, engine.Settings(), [1e-5, 1e-4, 1e-3], (100, 1000),
                                   [(0.0, 0.0), (1.0, 1.0)])
        out = report.build_report(report_spec(), problem, frame, tmp_path / f"{scale:g}")
        assert out.is_file() and len(list((out.parent / "figures").glob("*.png"))) >= 4


def test_only_drawing_loads_matplotlib():
    code = ("import sys, study.report.build, study.report.figures, study.report.document; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib loaded'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ── the command on a real sweep ─────────────────────────────────────────────────────────────

CONFIG = """\
name: tiny
data: {{path: {data}}}
algorithm: {{tol_param: 0.01}}
search:
  sampler: random
  seed: 1
  n_trials: 12
  batch_size: 12
  space:
    lr: {{low: 1.0e-5, high: 1.0e-3, log: true}}
    epochs: {{values: [100, 3000]}}
    init_m: 0.0
    init_b: 0.0
"""


@pytest.fixture()
def tiny_config(tmp_path, monkeypatch) -> Path:
    data = Path(__file__).resolve().parents[2] / "data" / "blog_like.csv"
    if not data.is_file():
        pytest.skip(f"{data} is missing")
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tiny.yaml"
    path.write_text(CONFIG.format(data=data), encoding="utf-8")
    return path


def test_study_report_on_a_real_sweep(tiny_config, tmp_path, capsys):
    from mlflow import MlflowClient

    from study.cli import main

    assert main(["run", str(tiny_config), "--no-progress", "--no-report"]) == 0
    capsys.readouterr()
    assert main(["report", str(tiny_config), "--set", "report.dist_tol=0.05"]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "reports" / "tiny"
    assert f"report: {folder / 'report.html'}" in out and "logged as artifacts" in out
    assert len(pd.read_parquet(folder / "trials.parquet")) == 12
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tiny")
    parent = client.search_runs([exp.experiment_id], "tags.`study.role` = 'sweep'")[0]
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.html", "report/trials.parquet", "report/figures"} <= logged


def test_study_report_without_complete_trials(tiny_config, capsys):
    from study.cli import main
    from study.config.model import load_config
    from study.sweep import sampling, storage

    assert main(["report", str(tiny_config)]) == 2  # no study at all
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "study: error:" in err
    cfg = load_config(tiny_config)
    storage.open_study(cfg, sampling.make_sampler(cfg, sampling.build_space(cfg, 1)))
    capsys.readouterr()  # Optuna's "new study created" line from this setup, not the command
    assert main(["report", str(tiny_config)]) == 2  # a study with no complete trial
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no complete trials" in err
