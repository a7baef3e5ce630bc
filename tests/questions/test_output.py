"""study/questions/output.py: strict JSON that round-trips the answer's numbers, a text with
words (never inf/nan) where a number is not finite, and the small formatters."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from study.questions import answer as Q
from study.questions import output as F


@pytest.fixture(scope="module")
def small(well_conditioned):
    # lr 5.0 is above lr_max (≈ 0.98 here): a diverged run among the converged ones
    return Q.iterations(well_conditioned, lrs=[0.1, 5.0], starts=[(0.0, 0.0), (2.0, -1.0)],
                        max_epochs=10_000)


@pytest.fixture(scope="module")
def degenerate(small):
    """The same answer with a spectrum beyond double precision (λ_min underflowed)."""
    return replace(small, lam_min=0.0, condition_number=float("inf"), lr_max=float("nan"))


def _strict(answer) -> dict:
    text = json.dumps(F.to_json(answer), allow_nan=False)  # raises on NaN / ±inf
    return json.loads(text)


def test_to_json_is_strict_and_round_trips_the_numbers(small, well_conditioned):
    out = _strict(small)
    A = np.column_stack([well_conditioned.X, np.ones(well_conditioned.n)])
    m, b = np.linalg.lstsq(A, well_conditioned.y, rcond=None)[0]
    assert (out["ols"]["m"], out["ols"]["b"]) == pytest.approx((m, b), rel=1e-12)
    assert out["ols"]["cost"] == small.ols_cost
    assert (out["lam_min"], out["lam_max"], out["condition_number"], out["lr_max"]) == (
        small.lam_min, small.lam_max, small.condition_number, small.lr_max)
    assert out["n"] == well_conditioned.n and out["max_epochs"] == 10_000
    assert out["param_tols"] == list(small.param_tols)
    assert len(out["runs"]) == len(small.runs)
    for got, run in zip(out["runs"], small.runs, strict=True):
        assert got["method"] == run.method.name and got["lr"] == run.method.lr
        assert (got["init_m"], got["init_b"]) == run.init
        assert (got["final"]["m"], got["final"]["b"]) == tuple(run.theta)
        assert got["status"] == run.status and got["epochs_run"] == run.epochs_run
        assert [(t["criterion"], t["tol"], t["measured_epochs"], t["predicted_epochs"])
                for t in got["targets"]] == [(t.criterion, t.tol, t.measured_epochs,
                                              t.predicted_epochs) for t in run.targets]
        assert got["fit_flags"] == run.method.flags
    assert any(r["status"] == "diverged" for r in out["runs"])


def test_ratios_are_measured_over_predicted(small):
    for got, run in zip(_strict(small)["runs"], small.runs, strict=True):
        for t, target in zip(got["targets"], run.targets, strict=True):
            if target.measured_epochs is None or target.predicted_epochs is None:
                assert t["ratio"] is None
            elif target.predicted_epochs:
                assert t["ratio"] == target.measured_epochs / target.predicted_epochs


def test_non_finite_numbers_become_null_with_a_reason(degenerate):
    out = _strict(degenerate)
    assert out["lam_min"] == 0.0 and "underflows" in out["lam_min_reason"]
    assert out["condition_number"] is None and out["condition_number_reason"]
    assert out["lr_max"] is None and out["lr_max_reason"]


def test_several_features_give_weights(multivariate):
    a = Q.iterations(multivariate, lrs=[0.1], max_epochs=5_000)
    out = _strict(a)
    A = np.column_stack([multivariate.X, np.ones(multivariate.n)])
    want = np.linalg.lstsq(A, multivariate.y, rcond=None)[0]
    np.testing.assert_allclose([*out["ols"]["w"], out["ols"]["b"]], want, rtol=1e-10)


_NON_FINITE_WORD = re.compile(r"(?<![A-Za-z])(inf|nan|infinity)(?![A-Za-z])", re.IGNORECASE)


@pytest.mark.parametrize("name", ["small", "degenerate"])
def test_format_answer_never_prints_inf_or_nan(name, request):
    text = F.format_answer(request.getfixturevalue(name))
    assert not _NON_FINITE_WORD.search(text), _NON_FINITE_WORD.search(text)
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_format_answer_shows_the_numbers_it_is_given(small):
    text = F.format_answer(small)
    assert f"λ_min = {small.lam_min:.6g}" in text and f"λ_max = {small.lam_max:.6g}" in text
    assert f"lr_max = 2/λ_max = {small.lr_max:.6g}" in text
    assert f"cap {small.max_epochs:,} epochs" in text
    assert "lr 5 ≥ lr_max: no time constant" in text
    assert "diverges: lr ≥ lr_max" in text
    degenerate = " ".join(F.format_answer(replace(small, condition_number=float("inf"))).split())
    assert "κ = λ_max/λ_min = (beyond double precision)" in degenerate


def test_agreement_counts_exact_cells_by_hand(small):
    cells = [t for r in small.runs if r.method.prediction == "exact" and r.status != "diverged"
             for t in r.targets if t.predicted_epochs is not None]
    same = sum(1 for t in cells if t.measured_epochs == t.predicted_epochs)
    assert F.agreement(small) == (same, len(cells))


@pytest.mark.parametrize(("value", "text"), [(None, "—"), (0, "0"), (999, "999"),
                                             (1000, "1,000"), (1_190_103, "1,190,103")])
def test_epochs_text(value, text):
    assert F.epochs_text(value) == text


@pytest.mark.parametrize(("start", "text"), [((0.0, 0.0), "(0, 0)"), ((-1.0, 0.0), "(-1, 0)"),
                                             ((2.0, 8.0), "(2, 8)"), ((0.5, -1e-7, 3.0),
                                                                      "(0.5, -1e-07, 3)")])
def test_start_text(start, text):
    assert F.start_text(start) == text


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), None])
def test_fnum_gives_words_for_what_is_not_finite(value):
    assert F.fnum(value) == "(beyond double precision)"


def test_fnum_and_gap_text():
    assert F.fnum(4.0129643623e-4) == "0.000401296"
    assert F.fnum(66031.2, ",.0f") == "66,031"
    assert F.gap_text("relative") == "(J − J*)/J*" and F.gap_text("absolute") == "J − J*"


def test_short_names(small):
    names = [F.short_name(r.method) for r in small.runs if r.init == (0.0, 0.0)]
    assert names[:2] == ["gd lr 0.1", "gd lr 5"]
    assert names[2:] == [F.SHORT_NAMES[r.method.name] for r in small.runs
                         if r.init == (0.0, 0.0) and r.method.name != "gd"]
