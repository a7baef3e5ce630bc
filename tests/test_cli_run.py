"""``study run`` and ``study ui`` as a user calls them, against real stores in tmp_path."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from mlflow import MlflowClient
from stores import interrupt_on_batch

from study.cli import main
from study.sweep import storage

CONFIG = """\
name: cli
data: {path: line.csv}
algorithm: {tol_param: 1.0e-4}
search:
  sampler: random
  seed: 1
  n_trials: 6
  batch_size: 3
  objectives: [{metric: dist_to_ols}]
  space:
    lr: {low: 0.01, high: 2.0, log: true}
    epochs: 200
    init_m: {low: -1.0, high: 1.0}
"""


@pytest.fixture
def config(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(2)
    x = rng.uniform(0.0, 2.0, 25)
    y = 1.3 * x + 0.5 + rng.normal(0.0, 0.1, 25)
    (tmp_path / "line.csv").write_text(
        "x,y\n" + "".join(f"{a!r},{b!r}\n" for a, b in zip(x.tolist(), y.tolist(), strict=True)))
    path = tmp_path / "cli.yaml"
    path.write_text(CONFIG)
    return path


def children(tmp_path: Path) -> list:
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("cli")
    return [r for r in client.search_runs([exp.experiment_id])
            if "mlflow.parentRunId" in r.data.tags]


def test_run_prints_the_summary_and_resumes(config, tmp_path, capsys):
    assert main(["run", str(config), "--no-progress", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "6 of 6 trials complete" in out
    assert "lr bracket" in out and "theory lr_max" in out
    ui = f"mlflow ui --backend-store-uri sqlite:///{tmp_path / 'mlflow.db'}"
    assert ui in out and str(tmp_path / "optuna.journal") in out
    assert len(children(tmp_path)) == 6

    assert main(["run", str(config), "--no-progress", "--no-report",
                 "--set", "search.n_trials=8"]) == 0
    assert "8 of 8 trials complete (2 new" in capsys.readouterr().out
    numbers = [r.data.tags["optuna.trial_number"] for r in children(tmp_path)]
    assert len(numbers) == 8 == len(set(numbers))


def test_a_changed_config_is_refused_then_fresh_replaces(config, tmp_path, capsys):
    assert main(["run", str(config), "--no-progress", "--no-report"]) == 0
    capsys.readouterr()
    code = main(["run", str(config), "--no-progress", "--no-report",
                 "--set", "search.space.epochs=100"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "search.space.epochs: 200 → 100" in err and "--fresh" in err
    assert main(["run", str(config), "--no-progress", "--no-report", "--fresh",
                 "--set", "search.space.epochs=100"]) == 0
    assert "replaced study 'cli'" in capsys.readouterr().out


def test_a_bad_config_creates_no_store(config, tmp_path, capsys):
    config.write_text(CONFIG.replace("n_trials: 6", "n_trials: 0"))
    assert main(["run", str(config), "--no-progress"]) == 2
    assert "search.n_trials" in capsys.readouterr().err
    assert not (tmp_path / "mlflow.db").exists()
    assert not (tmp_path / "optuna.journal").exists()


def test_interrupt_exits_130_and_says_how_to_resume(config, tmp_path, capsys, monkeypatch):
    interrupt_on_batch(monkeypatch, 2, [signal.SIGINT])  # halts the second batch's trials
    assert main(["run", str(config), "--no-progress", "--no-report"]) == 130
    captured = capsys.readouterr()
    assert "3 of 6 trials complete" in captured.out
    assert f"to resume, run: study run {config}" in captured.err
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(config), "--no-progress", "--no-report"]) == 0


def test_ui_prints_the_command_for_a_config_or_the_working_directory(config, tmp_path,
                                                                      capsys):
    assert main(["ui", str(config)]) == 0
    db = tmp_path / "mlflow.db"
    assert capsys.readouterr().out.strip() == (
        f"mlflow ui --backend-store-uri sqlite:///{db} "
        f"--default-artifact-root {(tmp_path / 'mlruns').as_uri()}")
    raw = yaml.safe_load(CONFIG)
    raw["tracking"] = {"mlflow_uri": "http://tracking:5000"}
    config.write_text(yaml.safe_dump(raw))
    assert main(["ui", str(config)]) == 0
    assert capsys.readouterr().out.strip() == "python -m webbrowser http://tracking:5000"
    assert main(["ui"]) == 0
    assert f"sqlite:///{db}" in capsys.readouterr().out


@pytest.mark.slow
def test_eight_commands_started_together_on_new_stores_complete_exactly_n_trials(config,
                                                                                 tmp_path):
    """RELIABILITY case 1: eight `study run` (as on eight machines sharing a disk) start at once
    on stores that do not exist yet."""
    import sqlite3
    import subprocess
    import sys

    from mlflow.store.db.utils import _get_latest_schema_revision

    config.write_text(CONFIG.replace("n_trials: 6", "n_trials: 24"))
    cmd = [sys.executable, "-m", "study", "run", str(config), "--no-progress", "--no-report"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    workers = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(8)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0] * 8, outputs
    study = optuna.load_study(study_name="cli",
                              storage=storage.open_storage(str(tmp_path / "optuna.journal")))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 24
    numbers = sorted(r.data.tags["optuna.trial_number"] for r in children(tmp_path))
    assert len(numbers) == 24 == len(set(numbers))
    assert {str(t.number) for t in done} == set(numbers)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    default = client.get_experiment_by_name("Default")
    assert client.search_runs([default.experiment_id]) == []  # nothing logged beside "cli"
    assert len([r for r in client.search_runs([client.get_experiment_by_name("cli")
                                               .experiment_id])
                if "mlflow.parentRunId" not in r.data.tags]) == 1  # one per study
    with sqlite3.connect(tmp_path / "mlflow.db") as db:  # the schema is whole, at its head
        (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision == _get_latest_schema_revision()


# ── hostile input through `study run` (RELIABILITY cases 16-21) ─────────────────────────────
# Inputs already checked end to end by `study validate` in config/test_model.py are not repeated;
# these reach `study run` and must stop it before any store, run or report exists.

YAML_TRAPS = [
    ("search: {space: [1, 2\n", ":2:1: expected ',' or ']', but got '<stream end>'"),
    ("name: !!python/object/apply:os.system ['true']\n",
     ":1:7: could not determine a constructor for the tag"),
    (CONFIG.replace("algorithm: {tol_param: 1.0e-4}", "algorithm: {standardize: yes}"),
     ": algorithm.standardize must be true or false; got 'yes' (only true/false are booleans)"),
    (CONFIG.replace("epochs: 200", 'epochs: "ten"'),
     ": search.space.epochs must be an integer; got 'ten'"),
    (CONFIG.replace("epochs: 200", "epochs: 10.5"),
     ": search.space.epochs must be an integer; got 10.5"),
    (CONFIG.replace("epochs: 200", "epochs: true"),
     ": search.space.epochs must be an integer; got true"),
    (CONFIG.replace("epochs: 200", "epochs: 0"),
     ": search.space.epochs must be >= 1 and <= 1000000000; got 0"),
    (CONFIG.replace("init_m: {low: -1.0, high: 1.0}", "init_m: {low: 3, high: 1}"),
     ": search.space.init_m.low must be <= high (1); got 3"),
    (CONFIG.replace("lr: {low: 0.01, high: 2.0, log: true}", "lr: .nan"),
     ": search.space.lr must be > 0 and finite; got nan"),
    (CONFIG.replace("lr: {low: 0.01, high: 2.0, log: true}", "lr: {low: 0.01, high: .inf}"),
     ": search.space.lr.high must be > 0 and finite; got inf"),
]

CSV_TRAPS = [
    ("", ": empty file (no rows)"),
    ("x,y\n", ": header only, no data rows; needs at least 3 rows"),
    ("x,y\n1,2\n", ": needs at least 3 rows (more than the 2 parameters) for a unique fit; got 1"),
    ("x,y\n1,2\n,3\n3,4\n", ":3:1: empty cell in column 'x'"),
    ("x,y\n1,2\n2,nan\n3,4\n", ":3:2: nan is not a finite number"),
    ("x,y\n1,2\n2,inf\n3,4\n", ":3:2: inf is not a finite number"),
    ("x,y\n1,2\n2,abc\n3,4\n", ":3:2: cell 'abc' is not a number in column 'y'"),
    ("x,y\n1,2\n2,3,4\n3,4\n", ":3:3: line 3 has 3 cells; expected 2"),
    ("x;y\n1;2\n2;3\n3;5\n", ":1:1: the file seems to use ';' as delimiter"),
    ("x,y\n5,1\n5,2\n5,3\n", ": x has (almost) zero variance: the slope is not identifiable"),
    ("x,y\n1e6,1\n1000000.0000000001,2\n1e6,3\n", ": x has (almost) zero variance"),
]


def _run_refused(capsys, tmp_path: Path, config: Path, where: Path, expected: str) -> None:
    """`study run` exits 2 with one line naming the file and place; nothing is created."""
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["run", str(config), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"study: error: {where}{expected}"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not {"mlflow.db", "optuna.journal", "mlruns", "reports"} & set(before)


@pytest.mark.parametrize(("text", "expected"), YAML_TRAPS,
                         ids=[str(i) for i in range(len(YAML_TRAPS))])
def test_a_hostile_config_stops_study_run_before_anything_exists(config, tmp_path, capsys,
                                                                  text, expected):
    config.write_text(text)
    _run_refused(capsys, tmp_path, config, config, expected)


@pytest.mark.parametrize(("text", "expected"), CSV_TRAPS,
                         ids=[str(i) for i in range(len(CSV_TRAPS))])
def test_a_hostile_data_file_stops_study_run_before_anything_exists(config, tmp_path, capsys,
                                                                     text, expected):
    (tmp_path / "line.csv").write_text(text)
    _run_refused(capsys, tmp_path, config, tmp_path / "line.csv", expected)


# ── extreme flag values: one line naming the flag, its declared rule and the value; exit 2 ─────

EPOCH_BOUND = ("must be >= 1 and <= 1000000000 (a larger budget runs for minutes to hours per "
               "trial; the tutorials' slowest setting needs about 10^6); got 1000000000000000")

FLAG_TRAPS = [
    (["fit", "--lr", "nan"], "--lr must be > 0 and finite; got nan"),
    (["fit", "--lr", "inf"], "--lr must be > 0 and finite; got inf"),
    (["fit", "--lr", "0"], "--lr must be > 0 and finite; got 0.0"),
    (["fit", "--batch-size", "0"], "--batch-size must be >= 1; got 0"),
    (["fit", "--tol-param", "-1"], "--tol-param must be >= 0 and finite; got -1.0"),
    (["fit", "--momentum", "1.5"], "--momentum must be >= 0 and < 1; got 1.5"),
    (["fit", "--epochs", "0"], "--epochs must be >= 1 and <= 1000000000; got 0"),
    (["fit", "--epochs", str(10**15)], f"--epochs {EPOCH_BOUND}"),
    (["fit", "--init-m", "nan"], "--init-m must be a finite number; got nan"),
    (["fit", "--init-b=-inf"], "--init-b must be a finite number; got -inf"),
    (["fit", "--seed", "-1"], "--seed must be >= 0; got -1"),
    (["iterations", "--lr", "nan"], "--lr must be > 0 and finite; got nan"),
    (["iterations", "--lr", "inf"], "--lr must be > 0 and finite; got inf"),
    (["iterations", "--lr", "0"], "--lr must be > 0 and finite; got 0.0"),
    (["iterations", "--max-epochs", "0"], "--max-epochs must be >= 1 and <= 1000000000; got 0"),
    (["iterations", "--max-epochs", "1e15"], f"--max-epochs {EPOCH_BOUND}"),
    (["iterations", "--max-epochs", "inf"], "--max-epochs must be a whole number; got 'inf'"),
    (["iterations", "--param-tol", "-1"], "--param-tol must be > 0 and finite; got -1.0"),
    (["iterations", "--cost-tol", "nan"], "--cost-tol must be > 0 and finite; got nan"),
    (["iterations", "--param-tol", "0.1", "0.1"],
     "--param-tol must not repeat a tolerance; got [0.1, 0.1]"),
    (["iterations", "--start=nan,0"], "--start must be a finite number; got nan"),
]


@pytest.mark.parametrize(("args", "expected"), FLAG_TRAPS,
                         ids=[" ".join(a) for a, _ in FLAG_TRAPS])
def test_an_extreme_flag_is_one_line_and_exit_2(tmp_path, capsys, args, expected):
    data = tmp_path / "line.csv"
    data.write_text("x,y\n1,1\n2,3\n3,3\n4,3\n5,5\n")
    assert main([*args, "--data", str(data)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"study: error: {expected}\n" and captured.out == ""


def test_run_options_are_checked_by_their_declared_rules(config, tmp_path, capsys):
    assert main(["run", str(config), "--workers", "0"]) == 2
    assert capsys.readouterr().err == "study: error: --workers must be >= 1; got 0\n"
    assert main(["run", str(config), "--heartbeat", "0"]) == 2
    assert capsys.readouterr().err == "study: error: --heartbeat must be >= 1; got 0\n"
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "optuna.journal").exists()


def test_an_extreme_flag_through_the_real_command(tmp_path):
    import subprocess
    import sys

    data = tmp_path / "line.csv"
    data.write_text("x,y\n1,1\n2,3\n3,3\n4,3\n5,5\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-m", "study", "fit", "--data", str(data), "--lr",
                           "nan"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "study: error: --lr must be > 0 and finite; got nan\n"


def test_fit_help_describes_each_choice():
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = " ".join(out.getvalue().split())
    for flag, choices in (("--cost", ("mse", "half_mse", "sse")),
                          ("--update", ("simultaneous", "sequential")),
                          ("--optimizer", ("gd", "momentum", "minibatch", "line_search")),
                          ("--line-search", ("backtracking", "exact"))):
        assert flag in text
        for choice in choices:
            assert f"- {choice}: " in text, choice


def test_run_says_what_it_does_before_and_after_the_bar_on_stderr_only(config, tmp_path,
                                                                          capsys):
    assert main(["run", str(config)]) == 0
    captured = capsys.readouterr()
    err = captured.err.replace("\r", "\n")
    assert err.startswith("study: opening the stores of 'cli' and the data line.csv\n")
    # a new MLflow store takes seconds to build: said once, before the bar
    assert "study: creating the MLflow store mlflow.db (its tables, once: a few seconds)\n" in err
    assert err.index("creating the MLflow store") < err.index("trials:")
    assert f"study: writing the report to {tmp_path / 'reports' / 'cli'}" in err
    assert err.index("trials:") < err.index("study: writing the report")  # the bar between
    assert "study: opening" not in captured.out and "report: " in captured.out
    assert main(["run", str(config), "--set", "search.n_trials=7"]) == 0
    assert "creating the MLflow store" not in capsys.readouterr().err  # it exists now
    assert main(["run", str(config), "--no-progress", "--set", "search.n_trials=8"]) == 0
    assert "study: " not in capsys.readouterr().err  # --no-progress: no progress lines either
