"""study/questions/claims.py (with a few entries of claims_article and claims_tutorials): the
shared helpers, and an entry's quoted ``study fit`` command re-run through the command line
gives the slope and intercept the entry recorded, which hand-written loops confirm."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from study.cli import main
from study.core.data import load_problem
from study.questions import claims as C
from study.questions.claims_article import a1_published, a2_text_settings
from study.questions.claims_tutorials import C_START, c1_after_1000

ROOT = Path(__file__).resolve().parents[2]


def gd_loop(problem, lr: float, epochs: int, start, cost: str = "mse") -> np.ndarray:
    """Plain simultaneous GD by hand: J = s·Σr², g = −2s·Aᵀr."""
    A = np.column_stack([problem.X, np.ones(problem.n)])
    s = {"mse": 1.0 / problem.n, "half_mse": 0.5 / problem.n, "sse": 1.0}[cost]
    theta = np.array(start, dtype=float)
    for _ in range(epochs):
        theta = theta + lr * 2.0 * s * A.T @ (problem.y - A @ theta)
    return theta


@pytest.fixture(scope="module")
def sources(nedrich_csv):
    return C.Sources(ROOT / C.DATA_DIR, nedrich_csv)


# ── the helpers ─────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("cost", ["mse", "half_mse", "sse"])
def test_run_is_one_engine_run_with_the_changes(well_conditioned, cost):
    lr = 0.1 if cost != "sse" else 0.1 / well_conditioned.n
    r = C.run(well_conditioned, lr, 25, (1.0, -2.0), cost=cost)
    np.testing.assert_allclose(r.theta, gd_loop(well_conditioned, lr, 25, (1.0, -2.0), cost),
                               rtol=1e-12)
    assert r.epochs_run == 25 and r.status == "max_epochs"


def test_run_leaves_the_settings_it_is_given(well_conditioned):
    before = C.MSE
    C.run(well_conditioned, 0.1, 5, (0, 0), cost="sse")
    assert C.MSE is before and C.MSE.cost == "mse"


def test_fit_check_records_the_argv_and_the_result(well_conditioned):
    r = C.run(well_conditioned, 0.1, 10, (0, 0))
    fc = C.fit_check("data/x.csv", "--lr", "0.1", "--init-m", "-1", result=r)
    assert fc.argv == ("fit", "--data", "data/x.csv", "--lr", "0.1", "--init-m", "-1")
    assert fc.values == {"m": float(r.theta[0]), "b": float(r.theta[1]), "status": r.status}
    assert fc.command == "study fit --data data/x.csv --lr 0.1 --init-m=-1"


def test_fit_command_joins_negative_values_with_equals():
    assert C.fit_command(["fit", "--init-b", "-0.5", "--lr", "1e-4", "--standardize"]) == \
        "study fit --init-b=-0.5 --lr 1e-4 --standardize"
    assert C.fit_command(["fit", "--update", "--lr", "1"]) == "study fit --update --lr 1"


def test_verdict_and_num():
    assert C.verdict(True) == "holds" and C.verdict(False) == "does not hold"
    assert C.num(4.0129643623432654e-4) == "0.000401296"
    assert C.num(66031.23, 3) == "6.6e+04" and C.num(2.0) == "2"


# ── entries, re-run independently ───────────────────────────────────────────────────────────


def _fit_json(capsys, argv) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a1_command_gives_what_the_entry_recorded(sources, nedrich, monkeypatch, capsys):
    entry = a1_published(sources)
    assert entry.id == "A1" and entry.verdict == "holds"
    [fc] = entry.fit_checks
    assert fc.command in entry.commands
    want = gd_loop(nedrich, 1e-4, 1000, (0.0, 0.0))
    assert (fc.values["m"], fc.values["b"]) == pytest.approx(tuple(want), rel=1e-10)
    monkeypatch.chdir(ROOT)  # the quoted data path is relative to the project root
    out = _fit_json(capsys, fc.argv)
    assert out["status"] == fc.values["status"] == "max_epochs"
    assert (out["m"], out["b"]) == pytest.approx((fc.values["m"], fc.values["b"]), rel=1e-12)


def test_a2_command_diverges_as_the_entry_says(sources, monkeypatch, capsys):
    entry = a2_text_settings(sources)
    assert entry.verdict == "does not hold"
    [fc] = entry.fit_checks
    monkeypatch.chdir(ROOT)
    out = _fit_json(capsys, fc.argv)
    assert out["status"] == fc.values["status"] == "diverged"
    assert out["diverged_at"] == 3


def test_c1_command_gives_what_the_entry_recorded(sources, monkeypatch, capsys):
    entry = c1_after_1000(sources)
    [fc] = entry.fit_checks
    p = load_problem(ROOT / "data" / "tutorial_c.csv")
    want = gd_loop(p, 0.01, 1000, C_START)
    assert (fc.values["m"], fc.values["b"]) == pytest.approx(tuple(want), rel=1e-10)
    assert entry.verdict.startswith(("holds", "does not hold"))
    monkeypatch.chdir(ROOT)
    out = _fit_json(capsys, fc.argv)
    assert (out["m"], out["b"]) == pytest.approx((fc.values["m"], fc.values["b"]), rel=1e-12)


def test_sources_give_the_articles_plain_gd_runs(sources, nedrich):
    r = sources.gd_run((0.0, 0.0))
    assert r.method.name == "gd" and r.method.lr == 1e-4 and r.init == (0.0, 0.0)
    assert sources.article.n == nedrich.n
    np.testing.assert_array_equal(sources.article.y, nedrich.y)
    assert sources.answer is sources.answer  # loaded once
