"""The Python API for notebooks and scripts; every import happens inside the function so that
``import study`` stays cheap.

Sweeps::

    from study import api
    cfg = api.load_config("configs/quickstart.yaml", ["search.n_trials=50"])
    summary = api.run_sweep(cfg)          # run or resume; returns a SweepSummary
    api.run_sweep(cfg, workers=2)         # the same, shared among two processes
    print(api.format_summary(summary))
    df = api.trials_frame(cfg)            # one row per complete trial (see sweep.trials_frame)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from study.config import StudyConfig
    from study.sweep import SweepSummary

# ── sweeps ──────────────────────────────────────────────────────────────────────────────────


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> StudyConfig:
    """Read and validate a YAML study config; ``overrides`` are ``dotted.key=value`` texts."""
    from study.config import load_config as _load

    return _load(path, overrides)


def run_sweep(cfg: StudyConfig, *, fresh: bool = False, progress: bool = True,
              report: bool | None = None, workers: int = 1) -> SweepSummary:
    """Run or resume the config's sweep until ``search.n_trials`` trials are complete;
    ``workers`` > 1 shares it among that many processes, as ``study run --workers N``."""
    from study.sweep import run_sweep as _run

    return _run(cfg, fresh=fresh, progress=progress, report=report, workers=workers)


def trials_frame(cfg: StudyConfig) -> pd.DataFrame:
    """One tidy row per complete trial of the config's study."""
    from study.sweep import trials_frame as _frame

    return _frame(cfg)


def format_summary(summary: SweepSummary) -> str:
    """The end-of-run text of :func:`run_sweep`."""
    from study.sweep import format_summary as _format

    return _format(summary)


def ui_command(config: str | Path | None = None, overrides: Sequence[str] = ()) -> list[str]:
    """The ``mlflow ui`` command for a config's tracking store (default: ./mlflow.db)."""
    from study.mlflowuri import ui_command as _ui

    if config is None:
        return _ui(f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    return _ui(load_config(config, overrides).tracking.mlflow_uri)
