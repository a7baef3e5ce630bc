"""The fault matrix of trial creation: a sweep is stopped by kill -9 or by two SIGINTs right after
one of the storage writes of its asks (the write that creates a trial, pops a queued one, records
its grid cell or one of its parameters), then resumed; through the real stores (the Optuna
journal, the MLflow sqlite store) it must end as one uninterrupted sweep does:

- exactly ``n_trials`` COMPLETE trials, nothing RUNNING or WAITING;
- the same set of points as the uninterrupted sweep, none twice, none missing (qmc, random,
  grid, and a minibatch sweep, whose objective values must be the same too);
- no RUNNING MLflow run and no trial number with two child runs.

Each faulty sweep runs in a forked child of the test process (a real process, killed by a real
signal it sends itself at the chosen write, so every timing is hit exactly); the resume runs in
the test process. The counts are printed and asserted.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import pytest
from mlflow import MlflowClient
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from stores import raw_config, write_line_data

from study import api
from study.config.model import StudyConfig
from study.sweep import loop, storage

GRID = {"lr": {"values": [0.05, 0.1, 0.2, 0.4]}, "epochs": 60,
        "init_m": {"values": [-1.0, 0.0, 1.0]}}
CONFIGS = {  # sampler, space, algorithm
    "qmc": ("qmc", None, {}),
    "random": ("random", None, {}),
    "grid": ("grid", GRID, {}),
    "minibatch": ("qmc", None, {"optimizer": "minibatch", "batch_size": 5}),
}
# the asks' writes after which the fault comes: a random or qmc trial is 3 writes (created, lr,
# init_m), a grid trial 5 (created, search space, cell, lr, init_m); a batch asks 4 trials
KILL_AT = {"qmc": (1, 2, 3, 6, 14), "random": (1, 2, 4, 9, 15), "grid": (1, 2, 3, 4, 12),
           "minibatch": (1, 3, 5, 8, 13)}
SIGINT_AT = {"qmc": (1, 4, 5, 11, 16), "random": (2, 3, 7, 12, 13), "grid": (1, 5, 9, 15, 22),
             "minibatch": (2, 4, 6, 10, 14)}


def make(folder: Path, name: str) -> StudyConfig:
    folder.mkdir(parents=True)
    write_line_data(folder)
    sampler, space, algorithm = CONFIGS[name]
    raw = raw_config(sampler=sampler, n_trials=12, batch_size=4)
    if space is not None:
        raw["search"]["space"] = space
    raw["algorithm"].update(algorithm)
    raw["tracking"] = {"storage": str(folder / "optuna.journal"),
                       "mlflow_uri": f"sqlite:///{folder / 'mlflow.db'}"}
    return StudyConfig.from_mapping(raw, base_dir=folder)


def _faulty_child(cfg: StudyConfig, nth: int, sig: int) -> None:
    """In the forked child: run the sweep and signal this process right after the ``nth``
    storage write made while asking; never returns."""
    try:
        real_append, real_ask = JournalFileBackend.append_logs, loop.Batch.ask
        state = {"asking": False, "writes": 0}

        def ask(self, k):
            state["asking"] = True
            try:
                return real_ask(self, k)
            finally:
                state["asking"] = False

        def append(self, logs):
            real_append(self, logs)
            if state["asking"]:
                state["writes"] += 1
                if state["writes"] == nth:
                    for _ in range(1 if sig == signal.SIGKILL else 2):  # SIGINT: "stop now"
                        os.kill(os.getpid(), sig)

        JournalFileBackend.append_logs = append
        loop.Batch.ask = ask
        loop.run_sweep(cfg, progress=False)
    finally:
        os._exit(0)


def run_with_fault(cfg: StudyConfig, nth: int, sig: int) -> int:
    """The sweep of ``cfg`` in a forked process stopped by ``sig`` at write ``nth`` of its
    asks; returns its wait status (the child is reaped, so its process id is dead)."""
    pid = os.fork()
    if pid == 0:
        _faulty_child(cfg, nth, sig)
    _, status = os.waitpid(pid, 0)
    return status


def outcome(cfg: StudyConfig) -> tuple[Counter, dict[tuple, list], Counter, list[str]]:
    """(trial states, objective values per point, child runs per trial number, RUNNING runs)."""
    trials = storage.load_study(cfg).get_trials()
    states = Counter(t.state for t in trials)
    points: dict[tuple, list] = {}
    for t in trials:
        if t.state == TrialState.COMPLETE:
            points.setdefault(tuple(sorted(t.params.items())), []).append(t.values)
    client = MlflowClient(cfg.tracking.mlflow_uri)
    exp = client.get_experiment_by_name(cfg.name)
    runs = client.search_runs([exp.experiment_id], max_results=10000)
    children = Counter(r.data.tags["optuna.trial_number"] for r in runs
                       if "mlflow.parentRunId" in r.data.tags)
    running = [r.info.run_id for r in runs if r.info.status == "RUNNING"]
    return states, points, children, running


def scenario(tmp_path: Path, name: str, nth: int, sig: int,
             reference: dict[tuple, list]) -> dict[str, int]:
    """One timing: fault, resume, then the counts of lost and duplicated points and of every
    broken invariant."""
    cfg = make(tmp_path / f"{name}-{signal.Signals(sig).name}-{nth}", name)
    status = run_with_fault(cfg, nth, sig)
    if sig == signal.SIGKILL:
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
    before = len(storage.load_study(cfg).get_trials(states=(TrialState.COMPLETE,)))
    broken = []
    try:
        new = api.run_sweep(cfg, progress=False, report=False).n_new
    except Exception as exc:  # a resume that fails is a fault not survived, counted as such
        new = 0
        broken.append(f"resume failed: {type(exc).__name__}: {exc}")
    states, points, children, running = outcome(cfg)
    lost = sum(1 for p in reference if p not in points)
    duplicated = sum(len(v) - 1 for v in points.values())
    if states[TrialState.COMPLETE] != 12 or states[TrialState.RUNNING] or \
            states[TrialState.WAITING]:
        broken.append(f"states {dict(states)}")
    if running:
        broken.append(f"RUNNING runs {running}")
    if any(n > 1 for n in children.values()):
        broken.append(f"two child runs {[k for k, n in children.items() if n > 1]}")
    if any(points.get(p, [v[0]])[0] != v[0] for p, v in reference.items()):
        broken.append("objective values differ")
    if not broken and new != states[TrialState.COMPLETE] - before:
        broken.append(f"n_new {new}, {before} complete before the resume")
    return {"lost": lost, "duplicated": duplicated, "broken": len(broken),
            "detail": broken}


@pytest.mark.slow
def test_faults_at_trial_creation_lose_and_duplicate_no_point(tmp_path, capsys):
    timings = survived = lost = duplicated = 0
    failures = []
    for name in CONFIGS:
        whole = make(tmp_path / f"{name}-whole", name)
        api.run_sweep(whole, progress=False, report=False)
        _, reference, _, _ = outcome(whole)
        assert len(reference) == 12
        for sig, at in ((signal.SIGKILL, KILL_AT[name]), (signal.SIGINT, SIGINT_AT[name])):
            for nth in at:
                got = scenario(tmp_path, name, nth, sig, reference)
                timings += 1
                lost += got["lost"]
                duplicated += got["duplicated"]
                if got["lost"] or got["duplicated"] or got["broken"]:
                    failures.append((name, signal.Signals(sig).name, nth, got))
                else:
                    survived += 1
    line = (f"trial-creation faults: {timings} timings, {survived} survived, {lost} lost, "
            f"{duplicated} duplicated")
    with capsys.disabled():
        print(f"\n{line}")
        for failure in failures:
            print(f"  not survived: {failure}")
    assert failures == []
    assert line == f"trial-creation faults: {timings} timings, {timings} survived, 0 lost, " \
                   f"0 duplicated" and timings >= 40
