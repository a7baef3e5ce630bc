"""The study's answer: where gradient descent converges, where it diverges, and why.

From the complete trials of a sweep :func:`build_report` writes, under one folder:

1. ``trials.csv`` and ``trials.parquet``: the trials table, each trial with its measured region
   and theory's prediction (:mod:`study.report.regions`);
2. ``figures/*.png``: plot data computed first (:mod:`study.report.figures`), drawn second
   (:mod:`study.report.drawing`);
3. ``report.md`` and one self-contained ``report.html`` (:mod:`study.report.document`) whose
   conclusion is written from the numbers (:mod:`study.report.text`);
4. ``summary.json``: the region table and theory's figures per settings group.

:func:`study.api.write_report` does this for a config's study and logs the folder to its MLflow
run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from study.core.problem import Problem
from study.errors import StudyError
from study.report.document import report_blocks, to_html, to_markdown
from study.report.figures import CAPTIONS, FIGURES, StoredHistory, figure_data
from study.report.painters import InProcess, Job
from study.report.regions import (
    agreement,
    group_settings,
    region_summary,
    settings_groups,
    theory_facts,
    trials_table,
)
from study.report.spec import ReportSpec, spec_from_config

# The figures handed out to the painters longest first (as measured on the quickstart), so
# that the last one to start is a short one.
LONGEST_FIRST = ("cost", "axes", "contour", "distance", "regions", "data", "pareto")


def build_report(cfg: Any, problem: Problem, trials: pd.DataFrame, out_dir: str | Path,
                 painters: InProcess | None = None, stored: StoredHistory | None = None
                 ) -> Path:
    """Write trials.csv/.parquet, summary.json, figures/*.png, report.md and report.html under
    ``out_dir`` from the complete trials; ``cfg`` is a StudyConfig or a :class:`ReportSpec`.
    The figures are drawn by ``painters`` (:func:`study.report.painters.painters`; default:
    here, one after another); ``stored`` reads trials' logged histories for the cost figure
    (default: re-run). Returns the path of report.html."""
    spec = cfg if isinstance(cfg, ReportSpec) else spec_from_config(cfg)
    if trials is None or len(trials) == 0:
        raise StudyError(f"study {spec.name!r} has no complete trials yet: nothing to report")
    out = writable_folder(out_dir)
    try:
        return _write(spec, problem, trials, out, painters or InProcess(), stored)
    except OSError as err:  # a disk filling up or a folder made read-only meanwhile
        raise StudyError(f"cannot write the report under {out}: "
                         f"{err.strerror or err} ({err.filename or out})") from None


def paint(key: str, piece: Any, folder: Path, dist_tol: float, name: str) -> Path | None:
    """Figure ``key`` drawn from its data and saved (:func:`study.report.drawing.paint`)."""
    from study.report import drawing  # matplotlib is loaded only where figures are drawn

    return drawing.paint(key, piece, folder, dist_tol, name)


def check_destination(out_dir: str | Path) -> None:
    """Refuse, before a sweep, a report folder that could not be written: a file in its place
    or on its path, or a read-only nearest existing folder. Creates nothing."""
    out = Path(out_dir)
    probe = out.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise StudyError(f"cannot write the report to {out}: {probe} is not a folder "
                         "(report.dir)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise StudyError(f"cannot write the report to {out}: {probe} is not writable "
                         "(report.dir)")


def writable_folder(out_dir: str | Path) -> Path:
    """``out_dir`` created if needed, checked writable before any work (a read-only
    destination is one line, not a traceback after the figures)."""
    out = Path(out_dir)
    try:
        (out / "figures").mkdir(parents=True, exist_ok=True)
        probe = out / ".write-check"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise StudyError(f"cannot write the report to {out}: {err.strerror or err}") from None
    return out


def _write(spec: ReportSpec, problem: Problem, trials: pd.DataFrame, out: Path,
           painters: InProcess, stored: StoredHistory | None) -> Path:
    """Every file of the report under ``out``; returns the path of report.html."""
    table = trials_table(problem, trials, spec)
    summary = region_summary(table)
    table.to_csv(out / "trials.csv", index=False)
    table.to_parquet(out / "trials.parquet", index=False)
    data = figure_data(problem, table, spec, stored)
    folder = out / "figures"
    paths = painters.run([Job(key, paint, (key, data[key], folder, spec.dist_tol, spec.name))
                          for key in sorted(FIGURES, key=LONGEST_FIRST.index)])
    images = {key: (paths[key], CAPTIONS[key]) for key in FIGURES if paths[key] is not None}
    blocks = report_blocks(problem, table, summary, spec, images, data["frontier_table"])
    (out / "report.md").write_text(to_markdown(blocks, out), encoding="utf-8")
    (out / "report.html").write_text(to_html(blocks, f"Study report: {spec.name}"),
                                     encoding="utf-8")
    doc = {"name": spec.name, "dist_tol": spec.dist_tol, "trials": len(table),
           "agreement": agreement(table)[0],
           "regions": json.loads(summary.to_json(orient="records")),
           "theory": [{"group": label, **theory_facts(problem, group_settings(part, spec.settings))}
                      for label, part in settings_groups(table)]}
    (out / "summary.json").write_text(json.dumps(doc, indent=2, default=str) + "\n",
                                      encoding="utf-8")
    return out / "report.html"
