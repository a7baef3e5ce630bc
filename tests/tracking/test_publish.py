"""The report logged to the sweep's parent run (study.tracking.publish), copied into a local
store's artifact folder or logged from a helper process: through the real ``study report``
command in a fresh process, which never imports MLflow itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient
from stores import config, sweep, write_study

from study.sweep.summary import trials_frame

SCRIPT = """
import sys
from study.cli import main
code = main(["report", sys.argv[1]])
print("mlflow imported:", "mlflow" in sys.modules)
sys.exit(code)
"""


def _report(path, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, str(path)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_study_report_logs_to_the_parent_run_without_importing_mlflow(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, n_trials=6, batch_size=3)
    cfg = config(path)
    sweep(cfg)
    done = _report(path, tmp_path)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "mlflow imported: False" in done.stdout
    client = MlflowClient(cfg.tracking.mlflow_uri)
    exp = client.get_experiment_by_name(cfg.name)
    (parent,) = client.search_runs([exp.experiment_id], "tags.`study.role` = 'sweep'")
    assert f"of MLflow run {parent.info.run_id}" in done.stdout
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    written = {f"report/{p.name}" for p in (tmp_path / cfg.report.dir).iterdir()}
    assert logged == written and "report/report.html" in logged
    assert len(trials_frame(cfg)) == 6


def test_a_broken_mlflow_store_is_one_line_after_the_report_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, n_trials=4, batch_size=2)
    cfg = config(path)
    sweep(cfg)
    (tmp_path / "mlflow.db").write_bytes(b"not a database" * 100)
    done = _report(path, tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(
        f"study: error: the MLflow store {cfg.tracking.mlflow_uri} failed: "), done.stderr
    assert (tmp_path / cfg.report.dir / "report.html").is_file()


def test_a_report_that_fails_ends_the_helper_with_nothing_logged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, n_trials=4, batch_size=2)
    cfg = config(path)
    sweep(cfg)
    (tmp_path / "line.csv").write_text("x,y\n1,2\n")  # the data changed: the report refuses
    done = _report(path, tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    client = MlflowClient(cfg.tracking.mlflow_uri)
    exp = client.get_experiment_by_name(cfg.name)
    (parent,) = client.search_runs([exp.experiment_id], "tags.`study.role` = 'sweep'")
    assert client.list_artifacts(parent.info.run_id, "report") == []
    leftover = subprocess.run(["pgrep", "-f", f"study.tracking.publish {cfg.tracking.mlflow_uri}"],
                              capture_output=True)
    assert leftover.stdout == b""


def test_without_an_mlflow_store_the_report_is_written_and_no_helper_starts(tmp_path,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, n_trials=4, batch_size=2)
    cfg = config(path)
    sweep(cfg)
    (tmp_path / "mlflow.db").unlink()
    done = _report(path, tmp_path)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "not logged to MLflow: no sweep parent run" in done.stdout
    assert not (tmp_path / "mlflow.db").exists()  # nothing created


def test_a_report_that_cannot_be_copied_into_the_run_is_one_line(tmp_path, monkeypatch):
    """The local copy into the parent run's artifact folder fails (a file stands where its
    report/ folder goes): one line naming the run and the folder, the report still written."""
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, n_trials=4, batch_size=2)
    cfg = config(path)
    sweep(cfg)
    client = MlflowClient(cfg.tracking.mlflow_uri)
    exp = client.get_experiment_by_name(cfg.name)
    (parent,) = client.search_runs([exp.experiment_id], "tags.`study.role` = 'sweep'")
    artifacts = Path(parent.info.artifact_uri.removeprefix("file://"))
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "report").write_text("in the way")
    done = _report(path, tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(
        f"study: error: cannot log the report to MLflow run {parent.info.run_id} "
        f"({artifacts / 'report'}): "), done.stderr
    assert "the report is written, not logged" in done.stderr
    assert (tmp_path / cfg.report.dir / "report.html").is_file()
