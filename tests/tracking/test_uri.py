"""Where a tracking URI points and the command that opens its UI (:mod:`study.tracking.uri`)."""

from __future__ import annotations

from pathlib import Path

from study.tracking import uri


def test_ui_command_and_store_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = f"sqlite:///{tmp_path / 'm.db'}"
    assert uri.ui_command(store) == ["mlflow", "ui", "--backend-store-uri", store,
                                     "--default-artifact-root", (tmp_path / "mlruns").as_uri()]
    assert uri.sqlite_path("sqlite:///rel.db") == tmp_path / "rel.db"
    assert uri.ui_command("http://host:5000") == ["python", "-m", "webbrowser",
                                                  "http://host:5000"]
    assert uri.ui_text("http://host:5000") == "http://host:5000 (served by the tracking server)"
    assert uri.ui_text(store).startswith("mlflow ui --backend-store-uri sqlite:///")


def test_sqlite_paths_absolute_relative_and_quoted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert uri.sqlite_path("sqlite:////abs/dir/m.db") == Path("/abs/dir/m.db")
    assert uri.sqlite_path("sqlite:///sub/m.db") == tmp_path / "sub" / "m.db"
    assert uri.sqlite_path("sqlite:////a%20b/m.db") == Path("/a b/m.db")
    assert uri.sqlite_path("http://host:5000") is None
    assert uri.sqlite_path("postgresql://u@h/db") is None
    assert uri.artifact_root("sqlite:////abs/dir/m.db") == Path("/abs/dir/mlruns")
    assert uri.artifact_root("https://host") is None
    assert uri.is_server("https://host") and not uri.is_server("sqlite:///m.db")
