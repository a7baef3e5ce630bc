"""The ask/run/tell loop across interruptions: a sweep stopped by signals and resumed runs the
same trial parameters as one that was never stopped, for the samplers that allow it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from optuna.trial import TrialState

from study.config.model import StudyConfig
from study.sweep import loop as runner
from study.sweep import storage

SPACES = {
    "random": {"lr": {"low": 0.01, "high": 2.0, "log": True}, "epochs": 60,
               "init_m": {"low": -1.0, "high": 1.0}},
    "qmc": {"lr": {"low": 0.01, "high": 2.0, "log": True}, "epochs": 60,
            "init_m": {"low": -1.0, "high": 1.0}},
    "grid": {"lr": {"values": [0.05, 0.1, 0.2, 0.4]}, "epochs": 60,
             "init_m": {"values": [-1.0, 0.0, 1.0]}},
}


def make(folder: Path, sampler: str) -> StudyConfig:
    folder.mkdir()
    lines = "".join(f"{x},{1.3 * x + 0.5 + 0.1 * ((7 * x) % 1 - 0.5)}\n"
                    for x in (0.1 * k for k in range(25)))
    (folder / "line.csv").write_text("x,y\n" + lines)
    raw = {"name": "resume", "data": {"path": "line.csv"},
           "search": {"sampler": sampler, "seed": 5, "n_trials": 12, "batch_size": 4,
                      "space": SPACES[sampler]},
           "tracking": {"storage": str(folder / "optuna.journal"),
                        "mlflow_uri": f"sqlite:///{folder / 'mlflow.db'}"}}
    return StudyConfig.from_mapping(raw, base_dir=folder)


def params(cfg: StudyConfig) -> list[tuple]:
    done = storage.load_study(cfg).get_trials(states=(TrialState.COMPLETE,))
    return sorted(tuple(sorted(t.params.items())) for t in done)


@pytest.mark.parametrize(("sampler", "signals"), [("random", 1), ("qmc", 2), ("grid", 2)],
                         ids=["random-clean-stop", "qmc-stop-now", "grid-stop-now"])
def test_an_interrupted_and_resumed_sweep_runs_the_same_parameters(tmp_path, monkeypatch,
                                                                   sampler, signals):
    whole = make(tmp_path / "whole", sampler)
    runner.run_sweep(whole, progress=False)

    cut = make(tmp_path / "cut", sampler)
    real, calls = runner.engine.run, []

    def interrupted(problem, trials):
        calls.append(len(trials))
        if len(calls) == 2:  # the second batch: one signal stops after it, two stop now
            for _ in range(signals):
                os.kill(os.getpid(), signal.SIGINT)
        return real(problem, trials)

    monkeypatch.setattr(runner.engine, "run", interrupted)
    stopped = runner.run_sweep(cut, progress=False)
    assert stopped.interrupted and stopped.n_complete == (8 if signals == 1 else 4)
    monkeypatch.setattr(runner.engine, "run", real)
    assert runner.run_sweep(cut, progress=False).n_complete == 12

    assert params(cut) == params(whole) and len(set(params(whole))) == 12
    failed = storage.load_study(cut).get_trials(states=(TrialState.FAIL,))
    assert len(failed) == (0 if signals == 1 else 4)  # each run again with its parameters
