"""Fixtures of the sweep tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from stores import raw_config, write_line_data

from study.config.model import StudyConfig


@pytest.fixture
def make_cfg(tmp_path: Path, monkeypatch):
    """``make_cfg(raw=None, overrides=(), **search)``: a validated config of ``raw_config`` (or
    ``raw``) on ``line.csv`` in tmp_path, the working folder."""
    monkeypatch.chdir(tmp_path)
    write_line_data(tmp_path)

    def make(raw: dict | None = None, overrides=(), **search) -> StudyConfig:
        return StudyConfig.from_mapping(raw or raw_config(**search), base_dir=tmp_path,
                                        overrides=overrides)

    return make


@pytest.fixture
def folder(tmp_path: Path, monkeypatch) -> Path:
    """tmp_path, as the working folder."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
