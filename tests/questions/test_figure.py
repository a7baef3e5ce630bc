"""study/questions/figure.py: the figure checked through its matplotlib objects (panels, log
scales, labels, artists), and a destination refused before anything is made."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

from study.errors import StudyError
from study.questions import answer as Q
from study.questions import figure as G


@pytest.fixture(scope="module")
def small(well_conditioned):
    # two lrs (one above lr_max ≈ 0.98) from two starts, and the six cures from the first
    return Q.iterations(well_conditioned, lrs=[0.1, 5.0], starts=[(0.0, 0.0), (2.0, -1.0)],
                        max_epochs=10_000)


@pytest.fixture
def fig(small):
    figure = G.build(small)
    yield figure
    plt.close(figure)


def test_build_returns_two_log_log_panels(fig):
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    left, right = fig.axes
    for ax in (left, right):
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        assert ax.get_xlabel() == "epoch (log scale; epoch 0 not shown)"
    assert left.get_ylabel() == "‖θ − θ*‖  (log scale)"
    assert right.get_ylabel() == "(J − J*) / J*  (log scale)"
    assert left.get_title() == "distance of (m, b) to the least-squares line"
    assert right.get_title() == "relative cost gap"
    assert left.get_shared_x_axes().joined(left, right)
    assert "<array>" in fig.get_suptitle()


def test_one_legend_entry_per_series(fig, small):
    """Plain GD from every start and lr, the six cures from the first start only."""
    n_gd = len(small.lrs) * len(small.starts)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert len(labels) == n_gd + 6
    assert sum(label.startswith("GD lr ") for label in labels) == n_gd
    assert all("from (0, 0)" in label for label in labels
               if not label.startswith("GD lr "))
    assert fig.axes[1].get_legend_handles_labels()[1] == labels
    assert len(fig.legends) == 1


def test_tolerance_lines_and_diverged_marks(fig, small):
    left, right = fig.axes
    for ax, tols in ((left, small.param_tols), (right, small.cost_tols)):
        dotted = [ln for ln in ax.get_lines() if ln.get_linestyle() == ":"
                  and ln.get_color() == "0.55"]
        assert sorted(ln.get_ydata()[0] for ln in dotted) == sorted(tols)
        crosses = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
        diverged = [r for r in small.runs if r.status == "diverged"]
        assert len(crosses) == len(diverged) == len(small.starts)  # lr 5 from each start
        assert all(ln.get_color() == "red" for ln in crosses)
        assert ax.get_xlim()[0] == 0.8 and ax.get_xlim()[1] == small.max_epochs * 1.5
        assert ax.get_ylim()[0] == pytest.approx(min(tols) / 100.0)


def test_absolute_gaps_relabel_the_right_panel(small):
    figure = G.build(replace(small, gap_mode="absolute"))
    try:
        assert figure.axes[1].get_ylabel().startswith("J − J*")
        assert "absolute" in figure.axes[1].get_title()
    finally:
        plt.close(figure)


def test_check_destination_refuses_a_missing_folder_and_creates_nothing(tmp_path):
    missing = tmp_path / "no" / "such" / "folder"
    with pytest.raises(StudyError, match=r"--figure .*folder .* does not exist"):
        G.check_destination(missing / "it.png")
    assert list(tmp_path.iterdir()) == []


def test_check_destination_accepts_an_existing_folder(tmp_path, monkeypatch):
    assert G.check_destination(tmp_path / "it.png") == tmp_path / "it.png"
    monkeypatch.chdir(tmp_path)
    assert G.check_destination("it.png") == Path("it.png")  # the current folder
    assert list(tmp_path.iterdir()) == []


def test_draw_refuses_before_drawing(small, tmp_path):
    with pytest.raises(StudyError):
        G.draw(small, tmp_path / "missing" / "it.svg")
    assert list(tmp_path.iterdir()) == []
    out = G.draw(small, tmp_path / "it.svg")
    assert out.read_text().lstrip().startswith("<?xml")
