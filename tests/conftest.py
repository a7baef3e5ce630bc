"""Shared fixtures: the article's data (from ../shared, never copied) and small problems."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from study.problem import Problem

ROOT = Path(__file__).resolve().parents[1]
NEDRICH_CSV = ROOT.parent / "shared" / "data" / "nedrich" / "data.csv"


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
