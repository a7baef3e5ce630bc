"""report.md and report.html from blocks: every kind of block, escaping, missing cells, images."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd

from study.core.problem import Problem
from study.report import document


def _blocks(tmp_path):
    png = tmp_path / "figures" / "regions.png"
    png.parent.mkdir()
    png.write_bytes(b"\x89PNG not really")
    table = pd.DataFrame({"lr": [1e-4, np.nan], "region": ["converged", "diverged"],
                          "trials": [1234, 5]})
    return [("h1", "Study <t>"), ("h2", "Regions"), ("p", "a & b"), ("ul", ["one", "two"]),
            ("table", table), ("img", png, "Where it converges")], png


def test_markdown(tmp_path):
    blocks, _ = _blocks(tmp_path)
    md = document.to_markdown(blocks, tmp_path)
    assert md.split("\n\n")[:4] == ["# Study <t>", "## Regions", "a & b", "- one\n- two"]
    assert ("| lr | region | trials |\n|---|---|---|\n| 0.0001 | converged | 1,234 |\n"
            "| — | diverged | 5 |") in md
    assert md.endswith("![Where it converges](figures/regions.png)\n\n*Where it converges*\n")


def test_html_is_escaped_and_self_contained(tmp_path):
    blocks, png = _blocks(tmp_path)
    page = document.to_html(blocks, "Study report: t")
    assert page.startswith("<!DOCTYPE html>") and "<title>Study report: t</title>" in page
    assert "<h1>Study &lt;t&gt;</h1>" in page and "<p>a &amp; b</p>" in page
    assert "<ul><li>one</li><li>two</li></ul>" in page
    assert "<tr><td>—</td><td>diverged</td><td>5</td></tr>" in page
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    assert f'src="data:image/png;base64,{data}"' in page
    assert "<figcaption>Where it converges</figcaption>" in page


def test_ols_text():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    assert document.ols_text(Problem(x[:, None], 2.0 * x - 1.0)) == \
        "Its least-squares line is y = 2·x − 1."
    X = np.column_stack([x, x ** 2])
    fit = document.ols_text(Problem(X, 0.5 * x - 3.0 * x ** 2 + 4.0, x_names=("a", "b")))
    assert fit == "Its least-squares fit is y = 0.5·a − 3·b + 4."
