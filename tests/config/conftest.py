"""Shared by the config tests: a working directory holding a five-point data.csv."""

from __future__ import annotations

from pathlib import Path

import pytest

POINTS = "x,y\n1,1\n2,3\n3,3\n4,3\n5,5\n"


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    """A working directory holding data.csv; defaults that depend on the cwd point here."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text(POINTS)
    return tmp_path
