"""Where an MLflow tracking URI points (its sqlite file, the artifact root beside it, whether
it is a tracking server) and the command that opens its UI. Paths and strings only: no mlflow
import, so the start-up checks of the stores (:mod:`study.sweep.storage`) do not load MLflow."""

from __future__ import annotations

import shlex
from pathlib import Path
from urllib.parse import unquote, urlparse


def sqlite_path(uri: str) -> Path | None:
    """The file behind a ``sqlite:///`` URI, else None."""
    if not uri.startswith("sqlite:"):
        return None
    path = unquote(urlparse(uri).path)
    if uri.startswith("sqlite:////"):
        return Path("/" + path.lstrip("/"))
    return Path(path.lstrip("/")).resolve()


def file_path(uri: str) -> Path | None:
    """The local folder or file behind a ``file:`` URI (an artifact location), else None."""
    return Path(unquote(urlparse(uri).path)) if uri.startswith("file:") else None


def sqlite_store_missing(uri: str) -> bool:
    """True when ``uri`` names a local sqlite store whose file does not exist."""
    db = sqlite_path(uri)
    return db is not None and not db.exists()


def artifact_root(uri: str) -> Path | None:
    """Where artifacts of a local sqlite store go: ``mlruns/`` beside the database file."""
    db = sqlite_path(uri)
    return None if db is None else db.parent / "mlruns"


def is_server(uri: str) -> bool:
    """True for a tracking server (http/https), which serves the UI itself."""
    return uri.startswith(("http://", "https://"))


def ui_command(uri: str) -> list[str]:
    """The exact command that opens the UI for a tracking URI: ``mlflow ui`` on the store (with
    its artifact root for a local sqlite store), or a browser on a tracking server."""
    if is_server(uri):
        return ["python", "-m", "webbrowser", uri]
    cmd = ["mlflow", "ui", "--backend-store-uri", uri]
    root = artifact_root(uri)
    if root is not None:
        cmd += ["--default-artifact-root", root.as_uri()]
    return cmd


def ui_text(uri: str) -> str:
    """What a summary says to open the UI."""
    if is_server(uri):
        return f"{uri} (served by the tracking server)"
    return shlex.join(ui_command(uri))
