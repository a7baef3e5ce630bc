"""Fixtures of the tracking tests: a new sqlite tracking store in tmp_path and a small problem."""

from __future__ import annotations

import numpy as np
import pytest

from study.core.problem import Problem


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    monkeypatch.chdir(tmp_path)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(scope="module")
def problem() -> Problem:
    rng = np.random.default_rng(5)
    x = rng.uniform(0.0, 2.0, 20)
    return Problem(x[:, None], 2.0 * x - 1.0 + rng.normal(0.0, 0.1, 20))
