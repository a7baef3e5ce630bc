"""Shared fixtures: the article's data (from ../shared, never copied), small problems, and
trials tables made by running the engine on a grid (the report's tests)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study.core import engine, theory
from study.core.problem import Problem
from study.report.regions import trials_table
from study.report.spec import Objective, ReportSpec

ROOT = Path(__file__).resolve().parents[1]
NEDRICH_CSV = Path(os.environ.get("STUDY_NEDRICH_CSV",
                                  ROOT.parent / "shared" / "data" / "nedrich" / "data.csv"))


@pytest.fixture(scope="session")
def nedrich_csv() -> Path:
    """Path of the article's data.csv; skips where absent, fails under STUDY_REQUIRE_SHARED_DATA."""
    if not NEDRICH_CSV.is_file():
        msg = f"the article's data is not at {NEDRICH_CSV}"
        if os.environ.get("STUDY_REQUIRE_SHARED_DATA"):
            pytest.fail(msg + " (STUDY_REQUIRE_SHARED_DATA is set)")
        pytest.skip(msg)
    return NEDRICH_CSV


@pytest.fixture(scope="session")
def nedrich(nedrich_csv: Path) -> Problem:
    data = np.loadtxt(nedrich_csv, delimiter=",")
    return Problem(data[:, :1], data[:, 1], source=str(nedrich_csv))


@pytest.fixture(scope="session")
def well_conditioned() -> Problem:
    """A small problem with standardized-like x, so every optimizer reaches θ* quickly."""
    rng = np.random.default_rng(7)
    x = rng.normal(0.0, 1.0, 40)
    y = 0.7 * x - 0.3 + rng.normal(0.0, 0.2, 40)
    return Problem(x[:, None], y)


@pytest.fixture(scope="session")
def multivariate() -> Problem:
    rng = np.random.default_rng(11)
    X = rng.normal(0.0, 1.0, (60, 3))
    y = X @ np.array([1.5, -2.0, 0.5]) + 4.0 + rng.normal(0.0, 0.1, 60)
    return Problem(X, y)


# ── trials tables for the report ────────────────────────────────────────────────────────────


def _engine_frame(problem: Problem, settings: engine.Settings, lrs, budgets, starts
                  ) -> tuple[pd.DataFrame, list[engine.Trial], list[engine.Result]]:
    trials = [engine.Trial(float(lr), int(e), tuple(s), settings)
              for lr in lrs for e in budgets for s in starts]
    results = engine.run(problem, trials)
    rows = []
    for i, (t, r) in enumerate(zip(trials, results, strict=True)):
        row = {"trial": i, "lr": t.lr, "epochs": t.epochs}
        row.update({f"init_{n}": v for n, v in zip(problem.param_names, t.init, strict=True)})
        row.update({"status": r.status, "final_cost": r.cost, "dist_to_ols": r.dist_to_ols,
                    "cost_gap": r.cost_gap, "rel_cost_gap": r.rel_cost_gap,
                    "epochs_run": r.epochs_run, "diverged_at": r.diverged_at})
        row.update({f"final_{n}": v for n, v in zip(problem.param_names, r.theta, strict=True)})
        row.update({f"epochs_to_param_tol_{k:g}": v for k, v in r.first_param_epoch.items()})
        rows.append(row)
    return pd.DataFrame(rows), trials, results


DISTANCE = (Objective("dist_to_ols"),)


def _report_spec(name: str = "test", settings: engine.Settings | None = None,
                 dist_tol: float = 0.01, objectives=DISTANCE) -> ReportSpec:
    return ReportSpec(name=name, settings=settings or engine.Settings(), dist_tol=dist_tol,
                      objectives=tuple(objectives), swept=("lr", "epochs", "init_m", "init_b"),
                      log_scaled=frozenset({"lr", "epochs"}))


@pytest.fixture(scope="session")
def engine_frame():
    """``engine_frame(problem, settings, lrs, budgets, starts)``: a trials table shaped like the
    sweep's, made by running the engine on the grid, with the engine's trials and results."""
    return _engine_frame


@pytest.fixture(scope="session")
def report_spec():
    """``report_spec(name, settings, dist_tol, objectives)``: a report spec sweeping lr, epochs
    and the start, lr and epochs on a log scale."""
    return _report_spec


@pytest.fixture(scope="session")
def article(nedrich):
    """The article's data swept over lr 1e-6 … 1e-3 × budgets × the three starts of the text:
    (frame, trials, results, trials table)."""
    frame, trials, results = _engine_frame(nedrich, engine.Settings(),
                                           np.geomspace(1e-6, 1e-3, 22), (100, 1000, 20000),
                                           ((0.0, 0.0), (-1.0, 0.0), (2.0, 8.0)))
    return frame, trials, results, trials_table(nedrich, frame, _report_spec("nedrich"))


@pytest.fixture(scope="session")
def valley() -> Problem:
    """A small problem with a long, flat valley (x far from 0: κ ≈ 2·10³), solved fast."""
    rng = np.random.default_rng(3)
    x = rng.uniform(8.0, 12.0, 30)
    return Problem(x[:, None], 1.5 * x + 2.0 + rng.normal(0.0, 0.5, 30))


@pytest.fixture(scope="session")
def valley_table(valley):
    """A trials table on ``valley`` with every region present, and its report spec."""
    edge = theory.lr_max(valley)
    frame, _, _ = _engine_frame(valley, engine.Settings(), edge * np.geomspace(0.01, 2.0, 9),
                                (300, 30000), ((0.0, 0.0), (3.0, -5.0)))
    sp = _report_spec("small")
    return trials_table(valley, frame, sp), sp


@pytest.fixture(scope="session")
def update_groups(valley):
    """A trials table on ``valley`` comparing the simultaneous and the sequential update."""
    frames = [_engine_frame(valley, engine.Settings(update=u), [1e-4, 1e-3], (200,),
                            [(0.0, 0.0)])[0].assign(update=u)
              for u in ("simultaneous", "sequential")]
    return trials_table(valley, pd.concat(frames, ignore_index=True), _report_spec())
