"""README.md: its console examples are what the code prints (scripts/readme_examples.py
--check), and it says how to install, test and browse."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script():
    """scripts/readme_examples.py as a module (scripts/ is not a package)."""
    if "readme_examples" not in sys.modules:
        spec = importlib.util.spec_from_file_location("readme_examples",
                                                      ROOT / "scripts" / "readme_examples.py")
        sys.modules["readme_examples"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["readme_examples"])
    return sys.modules["readme_examples"]


def test_the_fit_and_iterations_examples_are_what_the_code_prints(nedrich_csv, capsys):
    code = _script().main(["--check", "--only", *_script().FAST])
    assert code == 0, capsys.readouterr().err


@pytest.mark.slow
def test_the_sweep_example_is_what_the_code_prints(capsys):
    assert _script().main(["--check", "--only", "run"]) == 0, capsys.readouterr().err


def test_a_stale_or_missing_block_is_found():
    rx = _script()
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert rx.stale(text, {"fit": "an old output"}) == ["fit"]
    current = rx.update(text, {"fit": "an old output"})
    assert rx.stale(current, {"fit": "an old output"}) == []
    with pytest.raises(KeyError, match="no '<!-- example: nothing -->' block"):
        rx.update("no markers here", {"nothing": "x"})


def test_timings_and_the_working_directory_are_written_the_same_way():
    rx = _script()
    text = ("study 'q': 6 of 6 trials complete (6 new in 7.8 s, 15.4 trials/s)\n"
            "  MLflow: sqlite:////tmp/readme-abc/mlflow.db\n")
    assert rx.normalise(text, "/tmp/readme-abc") == (
        "study 'q': 6 of 6 trials complete (6 new in … s, … trials/s)\n"
        "  MLflow: sqlite:///…/mlflow.db\n")


def test_the_readme_says_how_to_install_test_and_browse():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for needed in ("python -m venv .venv", "pip install -e '.[dev]'",
                   "python -m pytest -q -n auto", "-m \"not slow\"",
                   "optuna-dashboard optuna.journal", "study ui configs/quickstart.yaml --open"):
        assert needed in text, needed
    blocks = [name for name in _script().EXAMPLES if f"<!-- example: {name} -->" in text]
    assert blocks == list(_script().EXAMPLES)
