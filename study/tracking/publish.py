"""Log a report's folder to the sweep's parent MLflow run, without importing MLflow where the
store is a local sqlite file with local artifacts, else from a helper process started before the
report is drawn.

A local store's parent run and its artifact folder are read with sqlite alone
(:func:`study.tracking.sqlite_store.sweep_run_location`) and the folder is copied there, as
MLflow's local artifact repository does (``shutil.copytree`` into ``<artifacts>/report``).

Importing MLflow and opening its store takes about as long as drawing the report (about 1.5 s
each in a fresh ``study report``), and both are mostly Python bytecode, so a thread would not
overlap them. A helper process (``python -m study.tracking.publish URI EXPERIMENT``) does that
part on the other core: it finds the parent run (:func:`study.tracking.tracker.sweep_run`),
reads the report's folder as one line on stdin, logs it and answers with one JSON line on
stdout, ``{"run_id": ID or null}`` or ``{"error": "one line"}``.

End of stdin before a folder (the report failed, or Ctrl-C) ends it with nothing logged. When
this process has imported MLflow already (at the end of ``study run``) the helper would only
add work, so :func:`report_publisher` logs in this process instead.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from study.errors import StudyError
from study.tracking.sqlite_store import sweep_run_location
from study.tracking.uri import file_path, sqlite_path, sqlite_store_missing

Publish = Callable[[Path], "str | None"]


@contextmanager
def report_publisher(uri: str, experiment: str) -> Iterator[Publish]:
    """A function that logs a folder to ``experiment``'s latest parent run and returns the run
    id (None: no store, experiment or parent run); the MLflow side starts on entry."""
    if sqlite_store_missing(uri):  # no store, so no run to log to
        yield lambda folder: None
        return
    local = _local_publisher(uri, experiment)
    if local is not None:
        yield local
        return
    if "mlflow" in sys.modules:  # this process already paid for MLflow
        from study.tracking.tracker import log_report_artifacts

        yield lambda folder: log_report_artifacts(uri, experiment, folder)
        return
    helper = subprocess.Popen([sys.executable, "-m", "study.tracking.publish", uri, experiment],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def publish(folder: Path) -> str | None:
        out, _ = helper.communicate(f"{folder}\n")
        answers = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        answer = answers[-1] if answers else {"error": f"the helper logging the report to "
                                                       f"{uri} ended with code {helper.returncode}"}
        if "error" in answer:
            raise StudyError(answer["error"])
        return answer["run_id"]

    try:
        yield publish
    finally:
        if helper.poll() is None:  # the report was not published: end the helper unheard
            helper.stdin.close()
            helper.wait()


def _local_publisher(uri: str, experiment: str) -> Publish | None:
    """Publishing by a copy into the parent run's artifact folder, for a local sqlite store
    whose artifacts are local files; None where MLflow itself must log."""
    db = sqlite_path(uri)
    if db is None:
        return None
    try:
        found = sweep_run_location(db, experiment)
    except sqlite3.Error:  # not a store this can read: MLflow says what is wrong with it
        return None
    if found is None:
        return lambda folder: None
    run_id, artifacts = found
    local = file_path(artifacts)
    if local is None:
        return None

    def publish(folder: Path) -> str:
        target = local / "report"
        try:
            shutil.copytree(folder, target, dirs_exist_ok=True)
        except OSError as err:
            raise StudyError(f"cannot log the report to MLflow run {run_id} ({target}): "
                             f"{err.strerror or err}; the report is written, not logged") from None
        return run_id

    return publish


def _serve(uri: str, experiment: str) -> int:
    from study.tracking.runlog import first_line
    from study.tracking.tracker import log_folder, sweep_run

    def say(answer: dict) -> None:
        print(json.dumps(answer), flush=True)

    try:
        run = sweep_run(uri, experiment)
        folder = sys.stdin.readline().rstrip("\n")
        if folder:
            say({"run_id": None if run is None else log_folder(uri, run, folder)})
    except Exception as exc:  # one line for the parent, naming the store
        say({"error": str(exc) if isinstance(exc, StudyError) else
             f"the MLflow store {uri} failed: {first_line(exc)}; the report is written, "
             f"not logged"})
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(_serve(*sys.argv[1:3]))
    except KeyboardInterrupt:  # the terminal's Ctrl-C reaches this process too: the parent speaks
        sys.exit(130)
