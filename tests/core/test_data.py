"""study.core.data and study.core.datasets: CSV/DataFrame → Problem, every error's one-line
message, and the project's data sets (deterministic, committed files equal to the generators'
output)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study.core import datasets
from study.core.data import load_problem, problem_from_frame
from study.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"


def _write(tmp_path: Path, text: str | bytes, name: str = "d.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def _lstsq(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    A = np.column_stack([X, np.ones(len(y))])
    return np.linalg.lstsq(A, y, rcond=None)[0]


# ── reading ────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("name", ["tutorial_c", "tutorial_b", "blog_like"])
def test_one_feature_files_match_polyfit(name):
    problem = load_problem(DATA / f"{name}.csv")
    raw = np.loadtxt(DATA / f"{name}.csv", delimiter=",", skiprows=1)
    m, b = np.polyfit(raw[:, 0], raw[:, 1], 1)
    assert problem.x_names == ("x",) and problem.y_name == "y"
    np.testing.assert_allclose(problem.ols_theta, [m, b], rtol=1e-10, atol=1e-12)


def test_multivariate_file_matches_lstsq():
    problem = load_problem(DATA / "multivariate.csv")
    raw = np.loadtxt(DATA / "multivariate.csv", delimiter=",", skiprows=1)
    assert problem.X.shape == (100, 5)
    assert problem.x_names == ("x1", "x2", "x3", "x4", "x5")
    np.testing.assert_allclose(problem.ols_theta, _lstsq(raw[:, :5], raw[:, 5]), rtol=1e-10)


def test_article_data_matches_polyfit(nedrich_csv):
    problem = load_problem(nedrich_csv)  # no header row
    raw = np.loadtxt(nedrich_csv, delimiter=",")
    np.testing.assert_allclose(problem.ols_theta, np.polyfit(raw[:, 0], raw[:, 1], 1),
                               rtol=1e-10)
    np.testing.assert_allclose(problem.ols_theta, [1.3224, 7.9910], atol=1e-4)


def test_header_is_optional_and_crlf_bom_are_handled(tmp_path):
    rows = "1,1\n2,3\n3,3\n4,3\n5,5\n"
    plain = load_problem(_write(tmp_path, rows, "plain.csv"))
    crlf_bom = load_problem(_write(tmp_path, b"\xef\xbb\xbfx,y\r\n" + rows.replace("\n", "\r\n")
                                   .encode(), "bom.csv"))
    np.testing.assert_array_equal(plain.X, crlf_bom.X)
    np.testing.assert_allclose(crlf_bom.ols_theta, [0.8, 0.6])
    assert crlf_bom.x_names == ("x",)
    assert plain.source.endswith("plain.csv")


def test_trailing_blank_lines_and_spaces_around_cells(tmp_path):
    problem = load_problem(_write(tmp_path, "x, y\n1, 1\n 2,3\n3 ,3\n\n\n"))
    np.testing.assert_array_equal(problem.y, [1, 3, 3])


def test_columns_by_name_and_position(tmp_path):
    text = "a,b,target,c\n" + "".join(
        f"{i},{(i * 7) % 5},{2 * i + 1 + (i % 3)},{i * i}\n" for i in range(12))
    path = _write(tmp_path, text)
    raw = np.loadtxt(path, delimiter=",", skiprows=1)
    by_name = load_problem(path, x=["a", "b"], y="target")
    by_pos = load_problem(path, x=[0, 1], y=2)
    one = load_problem(path, x="c", y="target")
    assert by_name.x_names == ("a", "b") and by_name.y_name == "target"
    np.testing.assert_array_equal(by_name.X, by_pos.X)
    np.testing.assert_allclose(by_name.ols_theta, _lstsq(raw[:, :2], raw[:, 2]), rtol=1e-10)
    np.testing.assert_allclose(one.ols_theta, np.polyfit(raw[:, 3], raw[:, 2], 1), rtol=1e-10)
    default = load_problem(path)  # all but the last column
    assert default.x_names == ("a", "b", "target") and default.y_name == "c"


BAD = [
    # (file text, expected message after the path)
    ("x,y\n1,2\n2,abc\n3,4\n", ":3:2: cell 'abc' is not a number in column 'y'"),
    ("x,y\n1,2\n,3\n3,4\n", ":3:1: empty cell in column 'x'"),
    ("x,y\n1,2\n2,nan\n3,4\n", ":3:2: nan is not a finite number"),
    ("x,y\n1,2\n2,inf\n3,4\n", ":3:2: inf is not a finite number"),
    ("1,2\n-inf,3\n3,4\n", ":2:1: -inf is not a finite number"),
    ("x,y\n1,2\n2,3,4\n3,4\n", ":3:3: line 3 has 3 cells; expected 2"),
    ("x,y,z\n1,2,3\n2,3\n", ":3:3: line 3 has 2 cells; expected 3"),
    ("x;y\n1;2\n2;3\n", ":1:1: the file seems to use ';' as delimiter; only ',' is accepted"),
    ("x,y\n1;2,3\n", ":2:1: cell '1;2' is not a number (the file seems to use ';'"),
    ("x,y\n1,2\n\n2,3\n3,4\n", ":3:1: empty line inside the data"),
    ("x,1\n2,3\n", ":1:1: cell 'x' is not a number (a header row needs a non-numeric name"),
    ("x,x\n1,2\n", ":1:2: duplicate column name 'x' (also column 1)"),
    ("", ": empty file (no rows)"),
    ("\n\n", ": empty file (no rows)"),
    ("x,y\n", ": header only, no data rows; needs at least 3 rows (more than the 2 parameters) "
              "for a unique fit; got 0"),
    ("x,y\n1,2\n", ": needs at least 3 rows (more than the 2 parameters) for a unique fit; "
                   "got 1"),
    ("a,b,y\n1,0,1\n2,1,2\n3,0,2\n", ": needs at least 4 rows (more than the 3 parameters) for "
                                     "a unique fit; got 3"),
    ("x,y\n5,1\n5,2\n5,3\n", ": x has (almost) zero variance: the slope is not identifiable"),
    ("x,y\n1e6,1\n1000000.0000000001,2\n1e6,3\n", ": x has (almost) zero variance"),
    ("a,b,y\n1,2,1\n2,4,3\n3,6,2\n4,8,5\n",
     ": features 'a' (column 1), 'b' (column 2) are (almost) exactly collinear"),
    ("x\n1\n2\n3\n", ": needs at least 2 columns (x and y); got 1"),
    ("x,y\n1,1e308\n2,1e308\n3,1\n", ": values too large: their squares overflow float64"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_files_raise_one_line_naming_file_line_and_column(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(DataError) as info:
        load_problem(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path) + expected)
    assert sorted(tmp_path.iterdir()) == [path]  # nothing written


def test_not_utf8_names_line_and_column(tmp_path):
    path = _write(tmp_path, b"x,y\n1,2\n3,\xff\n")
    with pytest.raises(DataError, match=r"d\.csv:3:3: not UTF-8 text \(byte 0xff\)"):
        load_problem(path)


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"x": ["z"]}, "unknown x column 'z'; columns are x, y"),
    ({"y": "q"}, "unknown y column 'q'; columns are x, y"),
    ({"x": [5]}, "x column position 5 is out of range; the data has 2 columns (positions 0..1)"),
    ({"y": -1}, "y column position -1 is out of range"),
    ({"x": ["y"]}, "'y' (column 2) is both x and y"),
    ({"x": ["x", "x"]}, "'x' (column 1) is given twice as x"),
    ({"x": [1.5]}, "x column must be a name or a 0-based position; got 1.5"),
    ({"x": []}, "x must name at least one column"),
])
def test_bad_column_selection(tmp_path, kwargs, expected):
    path = _write(tmp_path, "x,y\n1,1\n2,3\n3,3\n")
    with pytest.raises(DataError) as info:
        load_problem(path, **kwargs)
    assert str(info.value).startswith(f"{path}: {expected}")


def test_names_need_a_header(tmp_path):
    path = _write(tmp_path, "1,1\n2,3\n3,3\n")
    with pytest.raises(DataError, match="no header row, so column 'x' \\(x\\) cannot be found"):
        load_problem(path, x=["x"])


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: no such file$"):
        load_problem(tmp_path / "nope.csv")
    with pytest.raises(DataError, match=r": a folder, not a CSV file$"):
        load_problem(tmp_path)


# ── DataFrames ─────────────────────────────────────────────────────────────────────────────


def test_frame_matches_csv():
    frame = datasets.multivariate()
    from_frame = problem_from_frame(frame)
    from_file = load_problem(DATA / "multivariate.csv")
    np.testing.assert_array_equal(from_frame.X, from_file.X)
    np.testing.assert_allclose(from_frame.ols_theta, from_file.ols_theta, rtol=1e-12)
    assert from_frame.source == "<DataFrame>"
    picked = problem_from_frame(frame, x="x2", y=5, source="mine")
    np.testing.assert_allclose(picked.ols_theta,
                               np.polyfit(frame["x2"], frame["y"], 1), rtol=1e-10)


@pytest.mark.parametrize(("x_values", "expected"), [
    ([1.0, np.nan, 3.0, 4.0], "row 2 (index 1), column 1 'x': nan is not a finite number"),
    ([1.0, 2.0, np.inf, 4.0], "row 3 (index 2), column 1 'x': inf is not a finite number"),
    ([1, 2, "abc", 4], "row 3 (index 2), column 1 'x': cell 'abc' is not a number"),
    ([1, 2, None, 4], "row 3 (index 2), column 1 'x': empty cell"),
    ([True, False, True, False], "row 1 (index 0), column 1 'x': cell True is not a number"),
    ([2.0, 2.0, 2.0, 2.0], "x has (almost) zero variance: the slope is not identifiable"),
])
def test_bad_frames(x_values, expected):
    frame = pd.DataFrame({"x": pd.Series(x_values, dtype=object), "y": [1.0, 2.0, 2.0, 3.0]})
    if all(isinstance(v, float) for v in x_values):
        frame["x"] = frame["x"].astype(float)
    with pytest.raises(DataError) as info:
        problem_from_frame(frame, source="frame")
    assert str(info.value).startswith(f"frame: {expected}")


# ── the project's data sets ────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("name", list(datasets.DATASETS))
def test_committed_csvs_equal_the_generators(name):
    text = (DATA / f"{name}.csv").read_text(encoding="utf-8")
    assert text == datasets.render_csv(datasets.DATASETS[name]())
    frame = datasets.DATASETS[name]()
    problem = load_problem(DATA / f"{name}.csv")
    np.testing.assert_array_equal(problem.X, frame.iloc[:, :-1].to_numpy())  # exact round trip
    np.testing.assert_array_equal(problem.y, frame.iloc[:, -1].to_numpy())


def test_write_datasets_rewrites_the_same_bytes(tmp_path):
    written = datasets.write_datasets(tmp_path)
    assert sorted(written) == sorted(datasets.DATASETS)
    for name, path in written.items():
        assert path.read_bytes() == (DATA / f"{name}.csv").read_bytes()


def test_generators_are_seeded():
    for make in (datasets.tutorial_b, datasets.multivariate, datasets.blog_like):
        pd.testing.assert_frame_equal(make(3), make(3))
        assert not make(3).equals(make(4))


def test_tutorial_c_is_the_notebooks_points():
    frame = datasets.tutorial_c()
    assert frame["x"].tolist() == [1, 2, 3, 4, 5] and frame["y"].tolist() == [1, 3, 3, 3, 5]


def test_tutorial_b_follows_its_recipe():
    frame = datasets.tutorial_b(0)
    rng = np.random.default_rng(0)
    base = np.linspace(-1, 1, 100)
    np.testing.assert_array_equal(frame["x"], base + rng.normal(0, 0.25, 100))
    np.testing.assert_array_equal(frame["y"], base + rng.normal(0, 0.25, 100))


def test_multivariate_shape_and_fit():
    frame = datasets.multivariate()
    assert list(frame.columns) == ["x1", "x2", "x3", "x4", "x5", "y"]
    assert frame.shape == (100, 6)
    problem = problem_from_frame(frame)
    residual = frame["y"] - problem.X @ problem.ols_theta[:-1] - problem.ols_theta[-1]
    assert 5 < residual.std() < 15  # noise σ = 10


def test_blog_like_has_the_articles_long_flat_valley():
    frame = datasets.blog_like()
    x, y = frame["x"].to_numpy(), frame["y"].to_numpy()
    n = len(x)
    H = (2 / n) * np.array([[x @ x, x.sum()], [x.sum(), n]])
    eig = np.linalg.eigvalsh(H)
    assert eig[-1] / eig[0] > 1e4
    assert 18 < x.min() and x.max() < 82
    m, b = np.polyfit(x, y, 1)
    assert abs(m - 1.3) < 0.15 and abs(b - 8) < 8


def test_the_articles_data_is_not_copied_into_the_project(nedrich_csv):
    shared = hashlib.sha256(nedrich_csv.read_bytes()).hexdigest()
    for path in ROOT.rglob("*.csv"):
        if ".git" not in path.parts:
            assert hashlib.sha256(path.read_bytes()).hexdigest() != shared, path


# ── the constant-feature check is relative to the feature's own scale ─────────────────────


@pytest.mark.parametrize("scale", [1e-200, 1e-100, 1.0, 1e100, 1e150])
def test_a_feature_with_real_spread_is_accepted_at_any_scale(tmp_path, scale):
    x = scale * np.array([1.0, 1.5, 2.0, 2.5, 3.0])
    text = "x,y\n" + "".join(f"{float(v)!r},{k}\n" for k, v in enumerate(x))
    p = load_problem(_write(tmp_path, text))
    # the slope against an independent reference: lstsq on x/scale, rescaled
    slope = np.polyfit(x / scale, np.arange(5.0), 1)[0] / scale
    assert p.ols_theta[0] == pytest.approx(slope, rel=1e-9)


def test_a_large_offset_with_noise_at_rounding_level_is_constant(tmp_path):
    base = 1e8
    x = base + np.array([0, 1, -1, 2, 0]) * np.spacing(base)  # a few ulps apart
    text = "x,y\n" + "".join(f"{float(v)!r},{k}\n" for k, v in enumerate(x))
    with pytest.raises(DataError, match="zero variance"):
        load_problem(_write(tmp_path, text))


def test_a_large_offset_with_real_spread_is_not_constant(tmp_path):
    x = 1e8 + 1e-3 * np.array([0.0, 1.0, -1.0, 2.0, 0.5])
    text = "x,y\n" + "".join(f"{float(v)!r},{k}\n" for k, v in enumerate(x))
    assert load_problem(_write(tmp_path, text)).n == 5


def test_overflowing_data_is_one_error_and_no_warning(tmp_path):
    import warnings

    text = "x,y\n1e200,1e308\n-1e200,1e308\n3,1\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match="values too large"):
            load_problem(_write(tmp_path, text))


def test_the_data_digest_is_the_sha256_of_the_bytes_and_follows_changes(tmp_path):
    import hashlib

    from study.core.data import file_digest

    path = tmp_path / "d.csv"
    path.write_text("1,2\n2,3\n3,5\n")
    load_problem(path)
    assert file_digest(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_text("1,2\n2,3\n3,6\n")
    assert file_digest(path) == hashlib.sha256(path.read_bytes()).hexdigest()
