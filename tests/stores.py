"""Helpers of the sweep and tracking tests: write a small study, run it (through the API or the
real ``study`` command), and read both stores back (Optuna through its storage, MLflow through
MlflowClient) to check that the study holds exactly the trials asked for, each logged once, and
nothing is left RUNNING."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from optuna.trial import FrozenTrial, TrialState

from study import api
from study.config.model import StudyConfig, load_config
from study.core import engine
from study.core.problem import Problem
from study.sweep import storage
from study.sweep.summary import SweepSummary
from study.tracking import runlog

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """\
name: {name}
data: {{path: line.csv}}
algorithm: {{tol_param: 1.0e-4}}
search:
  sampler: {sampler}
  seed: 1
  n_trials: {n_trials}
  batch_size: {batch_size}
  objectives: [{{metric: dist_to_ols}}]
  space:
    lr: {{low: 0.01, high: 2.0, log: true}}
    epochs: {epochs}
    init_m: {{low: -1.0, high: 1.0}}
"""


def write_study(folder: Path, name: str = "scale", n_trials: int = 40, batch_size: int = 10,
                epochs: int = 50, sampler: str = "random") -> Path:
    """``line.csv`` (y ≈ 1.3 x + 0.5, lr_max ≈ 0.49, so about a quarter of the lr range
    diverges) and a config beside it; returns the config's path."""
    rng = np.random.default_rng(2)
    x = rng.uniform(0.0, 2.0, 25)
    y = 1.3 * x + 0.5 + rng.normal(0.0, 0.1, 25)
    (folder / "line.csv").write_text("x,y\n" + "".join(
        f"{a!r},{b!r}\n" for a, b in zip(x.tolist(), y.tolist(), strict=True)))
    path = folder / "study.yaml"
    path.write_text(CONFIG.format(name=name, n_trials=n_trials, batch_size=batch_size,
                                  epochs=epochs, sampler=sampler))
    return path


def study_cmd(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "study", "run", str(config), "--no-progress", "--no-report",
            *args]


def start(cmd: Sequence[str], cwd: Path, **env: str) -> subprocess.Popen:
    """The real command in its own process, output captured."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.Popen(list(cmd), cwd=cwd, env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
    """Wait for the command; past ``timeout`` stop it (SIGTERM reaches its workers through
    it) rather than leave it running, and fail."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail(f"{proc.args} did not end within {timeout} s; stderr:\n{err}")
    return proc.returncode, out, err


def wait_for(check: Callable[[], object], timeout: float = 120, every: float = 0.2) -> object:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {check}")


def config(path: Path, *overrides: str) -> StudyConfig:
    return load_config(path, list(overrides))


def trials(cfg: StudyConfig) -> list[FrozenTrial]:
    return storage.load_study(cfg).get_trials()


def worker_pids(parent: subprocess.Popen) -> list[int]:
    """Process ids of the worker processes of a running ``study run --workers``."""
    out = subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def n_complete(cfg: StudyConfig) -> int:
    """COMPLETE trials of the study; 0 while it is not created yet."""
    try:
        return sum(t.state == TrialState.COMPLETE for t in trials(cfg))
    except Exception:  # the study is being created (a poll's timeout catches what persists)
        return 0


def running_of(cfg: StudyConfig, pid: int | None = None, host: str | None = None
               ) -> list[FrozenTrial]:
    """RUNNING trials, optionally only those of one worker process or host; none while the
    study is not created yet (a poll may start before the command made it)."""
    try:
        running = storage.load_study(cfg).get_trials(states=(TrialState.RUNNING,))
    except Exception:  # as n_complete
        return []
    out = []
    for t in running:
        worker = t.user_attrs.get("worker", "")
        if pid is not None and not worker.endswith(f":{pid}"):
            continue
        if host is not None and not worker.startswith(f"{host}:"):
            continue
        out.append(t)
    return out


@dataclass
class Runs:
    client: MlflowClient
    parents: list
    children: list
    elsewhere: list  # runs of this study filed under any other experiment


def runs(cfg: StudyConfig) -> Runs:
    """The MLflow runs of the study's experiment, and any run of it filed elsewhere."""
    client = MlflowClient(cfg.tracking.mlflow_uri)
    exp = client.get_experiment_by_name(cfg.name)
    mine = client.search_runs([exp.experiment_id], max_results=10000)
    others = [e.experiment_id for e in client.search_experiments()
              if e.experiment_id != exp.experiment_id]
    elsewhere = []
    if others:
        elsewhere = client.search_runs(others, f"tags.`optuna.study` = '{cfg.name}'",
                                       max_results=1000)
    parents = [r for r in mine if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in mine if "mlflow.parentRunId" in r.data.tags]
    return Runs(client, parents, children, elsewhere)


def check_exact(cfg: StudyConfig, target: int) -> tuple[list[FrozenTrial], Runs]:
    """The study ends with exactly ``target`` complete trials with unique numbers; each has
    exactly one closed child run (FINISHED or FAILED) and every such run belongs to a complete
    trial; nothing is RUNNING or WAITING in either store; every failed trial that was run
    (not a surplus ask) was re-run once with the same parameters and its run, if any, is
    KILLED; every run is in the study's experiment."""
    everything = trials(cfg)
    by_state = Counter(t.state for t in everything)
    assert by_state[TrialState.COMPLETE] == target, by_state
    assert by_state[TrialState.RUNNING] == 0 and by_state[TrialState.WAITING] == 0, by_state
    complete = [t for t in everything if t.state == TrialState.COMPLETE]
    r = runs(cfg)
    assert r.elsewhere == []
    assert not [x for x in r.parents + r.children if x.info.status == "RUNNING"]
    closed = [c for c in r.children if c.info.status in ("FINISHED", "FAILED")]
    numbers = [c.data.tags["optuna.trial_number"] for c in closed]
    assert len(numbers) == len(set(numbers)) == target
    assert set(numbers) == {str(t.number) for t in complete}
    assert {t.user_attrs["mlflow_run_id"] for t in complete} == {c.info.run_id for c in closed}
    parents = {p.info.run_id for p in r.parents}
    assert {c.data.tags["mlflow.parentRunId"] for c in r.children} <= parents
    failed = [t for t in everything if t.state == TrialState.FAIL
              and not t.user_attrs.get("surplus")]
    retries = Counter(t.user_attrs["retry_of"] for t in everything if "retry_of" in t.user_attrs)
    by_number = {t.number: t for t in everything}
    for t in failed:
        assert retries[t.number] == 1, (t.number, retries)
    for t in everything:
        if "retry_of" in t.user_attrs:  # a worker killed while asking set only some params
            original = by_number[t.user_attrs["retry_of"]].params
            assert {k: t.params[k] for k in original} == original
    killed = {c.data.tags["optuna.trial_number"] for c in r.children
              if c.info.status == "KILLED"}
    assert killed <= {str(t.number) for t in failed}
    return everything, r


def check_ran_again(everything: Sequence[FrozenTrial]) -> None:
    """Every failed trial that was not a surplus ask ran again to completion, perhaps through
    further failed retries, with the parameters it had drawn (all, some or none of them)."""
    retry = {t.user_attrs["retry_of"]: t for t in everything if "retry_of" in t.user_attrs}
    for t in everything:
        if t.state != TrialState.FAIL or t.user_attrs.get("surplus"):
            continue
        u = t
        while u.state != TrialState.COMPLETE:
            assert u.number in retry, (t.number, u.number, "never ran again")
            u = retry[u.number]
        assert t.params.items() <= u.params.items(), (t.params, u.params)


def check_histories(cfg: StudyConfig, r: Runs) -> None:
    """Every closed child run holds its whole cost history: the first point is the initial
    cost at epoch 0, the last the final cost at the last epoch run."""
    for child in r.children:
        if child.info.status not in ("FINISHED", "FAILED"):
            continue
        metrics = child.data.metrics
        history = sorted(r.client.get_metric_history(child.info.run_id, "cost"),
                         key=lambda m: m.step)
        steps = [m.step for m in history]
        assert len(steps) == len(set(steps)), child.info.run_id  # no duplicate points
        assert history[0].step == 0
        assert history[0].value == pytest.approx(metrics["initial_cost"], rel=1e-12)
        assert history[-1].step == metrics["epochs_run"]
        assert history[-1].value == pytest.approx(metrics["final_cost"], rel=1e-12)


def services() -> tuple[str, str]:
    """(PostgreSQL URL of a new database, MLflow server URL) from .ci/services; skips without
    them, fails under STUDY_REQUIRE_SERVICES."""
    pg, server = os.environ.get("STUDY_TEST_POSTGRES"), os.environ.get("STUDY_TEST_MLFLOW_SERVER")
    if not pg or not server:
        msg = ("PostgreSQL and an MLflow server are needed: run "
               "`eval \"$(.ci/services start)\"` (STUDY_TEST_POSTGRES, STUDY_TEST_MLFLOW_SERVER)")
        if os.environ.get("STUDY_REQUIRE_SERVICES"):
            pytest.fail(msg + " (STUDY_REQUIRE_SERVICES is set)")
        pytest.skip(msg)
    import psycopg  # the optional postgres extra: only where the services run

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(f"{pg.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{pg.rstrip('/')}/{name}", server


# ── in-process sweeps on a small line ───────────────────────────────────────────────────────


N_POINTS = 30


def write_line_data(folder: Path) -> Path:
    """y ≈ 1.3 x + 0.5 on x ∈ [0, 2]: lr_max ≈ 0.42 under mse."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 2.0, N_POINTS)
    y = 1.3 * x + 0.5 + rng.normal(0.0, 0.1, N_POINTS)
    path = folder / "line.csv"
    path.write_text("x,y\n" + "".join(f"{a!r},{b!r}\n" for a, b in zip(x.tolist(), y.tolist(),
                                                                         strict=True)))
    return path


def raw_config(**search) -> dict:
    """A 10-trial random sweep of lr, init_m on ``line.csv`` (``search`` keys override)."""
    space = {"lr": {"low": 0.01, "high": 2.0, "log": True}, "epochs": 300,
             "init_m": {"low": -1.0, "high": 1.0}, "init_b": 0.0}
    base = {"sampler": "random", "seed": 3, "n_trials": 10, "batch_size": 4,
            "objectives": [{"metric": "dist_to_ols"}], "space": space}
    base.update(search)
    return {"name": "line", "data": {"path": "line.csv"}, "algorithm": {"tol_param": 1e-4},
            "search": base}


def client_runs(cfg: StudyConfig) -> tuple[MlflowClient, list, list]:
    """(client, parent runs, child runs) of the config's experiment."""
    client = MlflowClient(cfg.tracking.mlflow_uri)
    exp = client.get_experiment_by_name(cfg.name)
    everything = client.search_runs([exp.experiment_id], max_results=5000)
    parents = [r for r in everything if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in everything if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


def sweep(cfg: StudyConfig, **kwargs) -> SweepSummary:
    """The whole sweep of ``cfg`` through the API, quietly and without the report."""
    return api.run_sweep(cfg, progress=False, report=False, **kwargs)


def interrupt_on_batch(monkeypatch, batch: int, signals: list[int]) -> None:
    """Send ``signals`` to this process when the engine starts batch number ``batch``."""
    real = engine.run
    calls = []

    def signalling_run(problem, trials, halt=None):
        calls.append(len(trials))
        if len(calls) == batch:
            for sig in signals:
                os.kill(os.getpid(), sig)
        return real(problem, trials, halt)

    monkeypatch.setattr(engine, "run", signalling_run)


def complete_of(cfg: StudyConfig) -> list[FrozenTrial]:
    """The COMPLETE trials of the study of ``cfg``."""
    return storage.load_study(cfg).get_trials(states=(TrialState.COMPLETE,))


def record(problem: Problem, lr: float, number: int = 0, epochs: int = 150
           ) -> runlog.TrialRecord:
    """Trial ``number`` of study ``s`` (uid ``uid1``): gradient descent from (0.5, 0) at ``lr``,
    run by the engine, as the tracking layer receives it."""
    settings = engine.Settings(tol_param=1e-4)
    res = engine.run_one(problem, engine.Trial(lr, epochs, (0.5, 0.0), settings))
    params = {"lr": lr, "epochs": epochs, "init_m": 0.5, "init_b": 0.0}
    return runlog.TrialRecord("s", "uid1", number, params, settings, 7, res, problem.param_names)
