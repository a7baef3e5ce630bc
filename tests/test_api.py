"""study.api as a notebook calls it: configs and data, declared values, one fit against
np.linalg.lstsq, the iterations answer as strict JSON, and the one-line errors of reproductions
and repair_journal. (Sweeps and reports are run by their own tests.)"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from study import api
from study.config.model import StudyConfig
from study.core.problem import Problem
from study.errors import ConfigError, StudyError

ROOT = Path(__file__).resolve().parents[1]
BLOG = ROOT / "data" / "blog_like.csv"
QUICKSTART = ROOT / "configs" / "quickstart.yaml"


def _lstsq(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    A = np.column_stack([X, np.ones(len(y))])
    return np.linalg.lstsq(A, y, rcond=None)[0]


def _csv(path: Path, X: np.ndarray, y: np.ndarray) -> Path:
    X = X.reshape(len(y), -1)
    names = ["x"] if X.shape[1] == 1 else [f"x{j + 1}" for j in range(X.shape[1])]
    rows = [",".join([*names, "y"])] + [",".join(repr(float(v)) for v in (*row, t))
                                        for row, t in zip(X, y, strict=True)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _config_file(folder: Path, data: str, space: dict) -> Path:
    path = folder / "c.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "data": {"path": data},
                                    "search": {"space": {"lr": 1.0e-3, **space}}}))
    return path


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)  # outputs default to the working directory
    return tmp_path


@pytest.fixture
def two_features(folder) -> Path:
    rng = np.random.default_rng(4)
    X = rng.normal(0.0, 1.0, (40, 2))
    return _csv(folder / "wide.csv", X, X @ [2.0, -1.0] + 0.5 + rng.normal(0.0, 0.1, 40))


# ── configs and data ────────────────────────────────────────────────────────────────────────


def test_load_config_and_problem_of_the_quickstart():
    cfg = api.load_config(QUICKSTART, ["search.n_trials=7"])
    assert isinstance(cfg, StudyConfig)
    assert cfg.name == "quickstart" and cfg.search.n_trials == 7
    assert cfg.data.path == BLOG.resolve()
    problem = api.config_problem(cfg)
    raw = np.loadtxt(BLOG, delimiter=",", skiprows=1)
    assert isinstance(problem, Problem) and problem.d == 1 and problem.n == len(raw)
    np.testing.assert_allclose(problem.ols_theta, _lstsq(raw[:, :1], raw[:, 1]), rtol=1e-10)


def test_load_config_errors_are_config_errors(folder):
    with pytest.raises(ConfigError, match="no such file"):
        api.load_config(folder / "missing.yaml")
    with pytest.raises(ConfigError, match=r"search.n_trials"):
        api.load_config(QUICKSTART, ["search.n_trials=0"])


def test_load_problem_columns(two_features):
    raw = np.loadtxt(two_features, delimiter=",", skiprows=1)
    both = api.load_problem(two_features)
    assert both.x_names == ("x1", "x2") and both.y_name == "y"
    np.testing.assert_allclose(both.ols_theta, _lstsq(raw[:, :2], raw[:, 2]), rtol=1e-10)
    one = api.load_problem(two_features, x=["x2"], y="y")
    np.testing.assert_array_equal(one.X[:, 0], raw[:, 1])
    by_position = api.load_problem(two_features, x=[1], y=2)
    np.testing.assert_array_equal(by_position.X, one.X)


def test_config_problem_refuses_a_start_space_that_does_not_fit(folder, two_features):
    cfg = api.load_config(_config_file(folder, "wide.csv", {"init_m": {"low": -1, "high": 1}}))
    with pytest.raises(ConfigError, match=r"search.space.init_m is for one feature"):
        api.config_problem(cfg)
    fits = api.load_config(_config_file(folder, "wide.csv", {"init_w1": 1.0, "init_w2": 0.0}))
    assert api.config_problem(fits).d == 2
    blog = api.load_config(_config_file(folder, str(BLOG), {"init_w3": 1.0}))
    with pytest.raises(ConfigError, match=r"init_w3"):
        api.config_problem(blog)


def test_validate_returns_the_problem_and_creates_nothing(folder):
    cfg = api.load_config(_config_file(folder, str(BLOG), {"init_m": 0.0}))
    before = sorted(p.name for p in folder.iterdir())
    problem = api.validate(cfg)
    assert problem.source.endswith("blog_like.csv") and problem.n == 100
    assert sorted(p.name for p in folder.iterdir()) == before


# ── declared values ─────────────────────────────────────────────────────────────────────────


def test_choices_default_rule_and_check_option():
    costs = api.choices("cost")
    assert set(costs) == {"mse", "half_mse", "sse"} and all(costs.values())
    assert api.default("lr") > 0 and isinstance(api.default("epochs"), int)
    assert isinstance(api.default("search.n_trials"), int)
    assert api.rule("lr") == "> 0 and finite"
    assert api.check_option("--lr", "lr", 0.25) == 0.25
    for bad, shown in ((math.nan, "nan"), (-1.0, "-1"), (0, "0")):
        with pytest.raises(StudyError, match=rf"^--lr must be > 0 and finite; got {shown}"):
            api.check_option("--lr", "lr", bad)
    with pytest.raises(StudyError, match=r"^--cost "):
        api.check_option("--cost", "cost", "mae")
    with pytest.raises(KeyError):
        api.default("no_such_key")


# ── fit ─────────────────────────────────────────────────────────────────────────────────────


def test_long_well_conditioned_fit_lands_on_ols(folder):
    rng = np.random.default_rng(1)
    x = rng.uniform(-2.0, 2.0, 50)
    y = 1.7 * x - 0.4 + rng.normal(0.0, 0.3, 50)
    path = _csv(folder / "w.csv", x, y)
    m_ref, b_ref = _lstsq(x[:, None], y)
    out = api.fit(path, lr=0.1, epochs=5000)
    assert out["status"] in {"converged", "max_epochs"}
    assert out["m"] == pytest.approx(m_ref, abs=1e-9)
    assert out["b"] == pytest.approx(b_ref, abs=1e-9)
    assert out["ols"]["m"] == pytest.approx(m_ref, rel=1e-12)
    r = y - m_ref * x - b_ref
    assert out["ols"]["cost"] == pytest.approx((r @ r) / 50, rel=1e-10)  # default cost: mse
    assert out["dist_to_ols"] < 1e-9 and out["cost_gap"] < 1e-12
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert api.format_fit(out).strip()


def test_fit_of_two_features_and_other_costs(two_features):
    raw = np.loadtxt(two_features, delimiter=",", skiprows=1)
    ref = _lstsq(raw[:, :2], raw[:, 2])
    out = api.fit(two_features, lr=0.2, epochs=3000, cost="half_mse", init_m=[0.0, 0.0])
    np.testing.assert_allclose(out["weights"], ref[:2], atol=1e-8)
    assert out["intercept"] == pytest.approx(ref[2], abs=1e-8)
    r = raw[:, 2] - raw[:, :2] @ ref[:2] - ref[2]
    assert out["ols"]["cost"] == pytest.approx((r @ r) / (2 * 40), rel=1e-10)


def test_fit_that_diverges_is_a_status(folder):
    x = np.linspace(-1.0, 1.0, 20)
    path = _csv(folder / "d.csv", x, 3 * x + 1)
    out = api.fit(path, lr=50.0, epochs=200)
    assert out["status"] == "diverged" and out["diverged_at"] is not None
    assert out["lr"] > out["lr_max"]
    json.dumps(out, allow_nan=False)


def test_fit_refuses_bad_options(folder):
    path = _csv(folder / "d.csv", np.arange(5.0), np.arange(5.0) * 2)
    with pytest.raises(StudyError, match="lr"):
        api.fit(path, lr=-1.0)
    with pytest.raises(StudyError):
        api.fit(path, cost="mae")


# ── iterations ──────────────────────────────────────────────────────────────────────────────


def test_iterations_json_is_strict_json(folder):
    path = _csv(folder / "c.csv", np.array([1.0, 2.0, 3.0, 4.0, 5.0]),
                np.array([1.0, 3.0, 3.0, 3.0, 5.0]))
    problem = api.load_problem(path)
    answer = api.iterations(problem, lrs=[0.01], starts=[[0.0, 0.0]], max_epochs=1000)
    out = api.iterations_json(answer)
    text = json.dumps(out, allow_nan=False)  # no NaN or inf anywhere
    assert json.loads(text) == out
    assert out["max_epochs"] == 1000 and out["n"] == 5
    assert out["ols"]["m"] == pytest.approx(0.8) and out["ols"]["b"] == pytest.approx(0.6)
    # λ of the mse Hessian (2/N)[[Σx², Σx], [Σx, N]], by numpy
    H = (2 / 5) * np.array([[55.0, 15.0], [15.0, 5.0]])
    lam = np.linalg.eigvalsh(H)
    assert out["lam_max"] == pytest.approx(lam[-1]) and out["lam_min"] == pytest.approx(lam[0])
    assert out["lr_max"] == pytest.approx(2 / lam[-1])
    gd = [r for r in out["runs"] if r["method"] == "gd"]
    assert gd and gd[0]["lr"] == 0.01 and gd[0]["epochs_run"] <= 1000
    assert isinstance(api.format_iterations(answer), str)


# ── one-line errors ─────────────────────────────────────────────────────────────────────────


def test_reproductions_unknown_id_is_a_study_error(folder):
    with pytest.raises(StudyError, match=r"^--only: no entry 'ZZ9'"):
        api.reproductions(ROOT / "data", folder / "article.csv", only="ZZ9")


def test_repair_journal_of_a_missing_file(folder):
    with pytest.raises(StudyError, match=r"^no journal file "):
        api.repair_journal(folder / "optuna.journal")
    (folder / "a_folder").mkdir()
    with pytest.raises(StudyError, match=r"^no journal file "):
        api.repair_journal(folder / "a_folder")
    assert sorted(p.name for p in folder.iterdir()) == ["a_folder"]
