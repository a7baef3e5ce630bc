"""study.core.datasets: the generators' recipes rebuilt by hand, their shapes and columns, the CSV
text format and the command that writes the files. (Committed files equal to the generators and
seeding are checked in test_data.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study.core import datasets

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"


def test_registry_names_the_four_sets_and_their_files_exist():
    assert list(datasets.DATASETS) == ["tutorial_c", "tutorial_b", "multivariate", "blog_like"]
    for name in datasets.DATASETS:
        assert (DATA / f"{name}.csv").is_file()


@pytest.mark.parametrize("name,shape,columns", [
    ("tutorial_c", (5, 2), ["x", "y"]),
    ("tutorial_b", (100, 2), ["x", "y"]),
    ("multivariate", (100, 6), ["x1", "x2", "x3", "x4", "x5", "y"]),
    ("blog_like", (100, 2), ["x", "y"]),
])
def test_shapes_columns_and_dtypes(name, shape, columns):
    frame = datasets.DATASETS[name]()
    assert frame.shape == shape and list(frame.columns) == columns
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    assert np.isfinite(frame.to_numpy()).all()


def test_default_seed_is_the_module_seed():
    for make in (datasets.tutorial_b, datasets.multivariate, datasets.blog_like):
        pd.testing.assert_frame_equal(make(), make(datasets.SEED))
        pd.testing.assert_frame_equal(make(), make())  # same seed → same data


def test_blog_like_follows_its_recipe():
    rng = np.random.default_rng(5)
    x = rng.uniform(20.0, 80.0, 100)
    y = np.array([1.3 * xi + 8.0 for xi in x]) + rng.normal(0.0, 10.0, 100)
    frame = datasets.blog_like(5)
    np.testing.assert_array_equal(frame["x"], x)
    np.testing.assert_allclose(frame["y"], y, rtol=0, atol=1e-12)


def test_multivariate_follows_its_recipe_with_other_sizes():
    frame = datasets.multivariate(seed=2, n=30, d=3, noise=0.0)
    assert list(frame.columns) == ["x1", "x2", "x3", "y"]
    rng = np.random.default_rng(2)
    X = rng.standard_normal((30, 3))
    w = 100.0 * rng.uniform(0.0, 1.0, 3)
    np.testing.assert_array_equal(frame[["x1", "x2", "x3"]].to_numpy(), X)
    # noise 0: y is exactly linear in X with no bias, so lstsq recovers w and a zero intercept
    A = np.column_stack([X, np.ones(30)])
    coef = np.linalg.lstsq(A, frame["y"].to_numpy(), rcond=None)[0]
    np.testing.assert_allclose(coef[:3], w, rtol=1e-10)
    assert abs(coef[3]) < 1e-9
    assert ((0 <= w) & (w <= 100)).all()


def test_tutorial_c_has_the_documented_ols_line():
    frame = datasets.tutorial_c()
    A = np.column_stack([frame["x"], np.ones(5)])
    np.testing.assert_allclose(np.linalg.lstsq(A, frame["y"], rcond=None)[0], [0.8, 0.6])


def test_render_csv_is_header_lf_and_round_trips_exactly():
    frame = datasets.multivariate(seed=9)
    text = datasets.render_csv(frame)
    assert "\r" not in text and text.endswith("\n") and not text.endswith("\n\n")
    lines = text.split("\n")[:-1]
    assert lines[0] == "x1,x2,x3,x4,x5,y" and len(lines) == 101
    values = np.array([[float(cell) for cell in line.split(",")] for line in lines[1:]])
    np.testing.assert_array_equal(values, frame.to_numpy())  # exact, not approximate
    for cell in lines[1].split(","):
        assert "e" not in cell.lower()  # positional, not scientific


def test_render_csv_of_small_integers_and_shortest_floats():
    frame = pd.DataFrame({"a": [1.0, 0.1, -2.5], "b": [3.0, 1e-7, 1e20]})
    assert datasets.render_csv(frame) == (
        "a,b\n1,3\n0.1,0.0000001\n-2.5,100000000000000000000\n")


def test_main_writes_every_file_into_the_given_folder(tmp_path, capsys):
    folder = tmp_path / "new" / "data"
    assert datasets.main([str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{name}.csv" for name in datasets.DATASETS)
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == list(datasets.DATASETS)
    for name in datasets.DATASETS:
        assert (folder / f"{name}.csv").read_text(encoding="utf-8") == \
            datasets.render_csv(datasets.DATASETS[name]())
