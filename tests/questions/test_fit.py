"""`study fit`: one run from the command line, checked against np.polyfit / lstsq."""

from __future__ import annotations

import json

import numpy as np
import pytest

from study.cli import main


def fit_json(capsys, *args: str) -> dict:
    assert main(["fit", *args, "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1  # exactly one JSON object
    return json.loads(out[0])


def test_json_on_the_articles_data(capsys, nedrich_csv):
    out = fit_json(capsys, "--data", str(nedrich_csv), "--lr", "1e-4", "--epochs", "1000")
    for key in ("m", "b", "cost", "status", "epochs_run", "dist_to_ols", "cost_gap", "lr_max",
                "ols"):
        assert key in out
    assert out["m"] == pytest.approx(1.47774408519, rel=1e-10)
    assert out["b"] == pytest.approx(0.0889365199374, rel=1e-10)
    data = np.loadtxt(nedrich_csv, delimiter=",")
    m, b = np.polyfit(data[:, 0], data[:, 1], 1)
    assert out["ols"]["m"] == pytest.approx(m, rel=1e-10)
    assert out["ols"]["b"] == pytest.approx(b, rel=1e-10)
    assert out["ols"]["cost"] == pytest.approx(np.mean((data[:, 1] - m * data[:, 0] - b) ** 2))
    assert out["dist_to_ols"] == pytest.approx(np.hypot(out["m"] - m, out["b"] - b), rel=1e-9)
    assert out["status"] == "max_epochs" and out["epochs_run"] == 1000
    assert out["lr_max"] == pytest.approx(4.013e-4, rel=1e-3)


def test_diverging_fit_is_an_outcome_not_an_error(capsys, nedrich_csv):
    out = fit_json(capsys, "--data", str(nedrich_csv), "--lr", "5e-4", "--epochs", "2000",
                   "--init-m=-1")
    assert out["status"] == "diverged" and out["diverged_at"] == out["epochs_run"]
    assert all(np.isfinite([out["m"], out["b"], out["cost"]]))


def test_several_features_give_weights_and_intercept(capsys, tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 3))
    y = X @ [1.0, -2.0, 0.5] + 3.0 + rng.normal(0, 0.1, 50)
    path = tmp_path / "multi.csv"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header="a,b,c,target",
               comments="")
    out = fit_json(capsys, "--data", str(path), "--standardize", "--lr", "0.5",
                   "--epochs", "500", "--tol-param", "1e-9")
    want, *_ = np.linalg.lstsq(np.column_stack([X, np.ones(50)]), y, rcond=None)
    assert out["weights"] == pytest.approx(want[:3], abs=1e-8)
    assert out["intercept"] == pytest.approx(want[3], abs=1e-8)
    assert out["status"] == "converged"
    # columns by name select a subset
    sub = fit_json(capsys, "--data", str(path), "--x", "a", "c", "--y", "target",
                   "--standardize", "--lr", "0.5", "--tol-param", "1e-9")
    assert len(sub["weights"]) == 2


def test_summary_text_and_bad_input(capsys, nedrich_csv, tmp_path):
    assert main(["fit", "--data", str(nedrich_csv)]) == 0
    text = capsys.readouterr().out
    assert "OLS line" in text and "lr_max" in text
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2\n3,abc\n5,6\n")
    assert main(["fit", "--data", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.csv" in err and ":2:" in err
    assert main(["fit", "--data", str(tmp_path / "missing.csv")]) == 2
    assert main(["fit", "--data", str(nedrich_csv), "--lr", "-1"]) == 2
