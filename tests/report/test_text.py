"""The report's words: numbers for people, and the conclusion written from the numbers."""

from __future__ import annotations

import math

import pandas as pd

from study.core import theory
from study.report import regions
from study.report import text as report_text
from study.report.text import fmt


def test_fmt():
    assert fmt(None) == "—" and fmt(float("nan")) == "—" and fmt(pd.NA) == "—"
    assert fmt(1234567) == "1,234,567" and fmt(0.000401296) == "0.0004013"
    assert fmt(True) == "yes" and math.isfinite(float(fmt(2.5)))
    assert report_text.start_text((0.0, -1.23456)) == "(0, -1.23)"


def test_conclusion_is_written_from_the_numbers(article, nedrich, report_spec):
    _, _, _, table = article
    text = " ".join(report_text.conclusion(nedrich, table, regions.region_summary(table),
                                           report_spec("nedrich")))
    smallest = table.loc[table["region"] == "diverged", "lr"].min()
    assert f"Every trial with lr ≥ {fmt(smallest)} diverged" in text
    assert f"lr_max = {fmt(theory.lr_max(nedrich))}" in text
    n_conv = int((table["region"] == "converged").sum())
    n_stable = int((table["region"] != "diverged").sum())
    assert f"Of the {n_stable} stable trials, {n_conv} reached the OLS line" in text
    assert "Theory predicted the region of" in text
    best = regions.best_trials(table, report_spec("nedrich"))["distance to OLS ‖θ − θ*‖"]
    assert f"Best by distance to OLS ‖θ − θ*‖: trial #{fmt(best['trial'].iloc[0])}" in text


def test_conclusion_with_settings_groups_has_a_line_per_group(update_groups, valley,
                                                              report_spec):
    table = update_groups
    lines = report_text.conclusion(valley, table, regions.region_summary(table), report_spec())
    for label, part in regions.settings_groups(table):
        line = next(s for s in lines if s.startswith(f"[{label}] lr_max = "))
        assert f"{int((part['region'] == 'diverged').sum())} diverged" in line
