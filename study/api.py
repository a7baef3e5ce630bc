"""The Python API for notebooks, scripts and the command line: every command of ``study`` is one
function here, and this module is where the rooms meet (config → sweep → report, and the
questions beside them). Imports of the rooms happen inside the functions so that
``import study`` and ``study fit`` never load Optuna or MLflow.

Sweeps::

    from study import api
    cfg = api.load_config("configs/quickstart.yaml", ["search.n_trials=50"])
    summary = api.run_sweep(cfg)          # run or resume, then write the report
    api.run_sweep(cfg, workers=2)         # the same, shared among two processes
    print(api.format_summary(summary))
    df = api.trials_frame(cfg)            # one row per complete trial
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from study.config.model import StudyConfig
    from study.core.problem import Problem
    from study.questions.iterations import Answer
    from study.sweep.summary import SweepSummary

# ── declared values (study.core.constraints, study.config.constraints) ─────────────────────


def choices(name: str) -> dict[str, str]:
    """The allowed values of a declared option (``cost``, ``optimizer``, ``search.sampler``, …),
    each with one line of meaning."""
    from study.config.constraints import declared

    return dict(declared(name).meanings)


def default(name: str) -> Any:
    """The declared default of an engine setting or trial input (``lr``, ``momentum``, …) or of a
    sweep key (``search.n_trials``, ``heartbeat``, …)."""
    from study.config.constraints import SWEEP_DEFAULTS
    from study.core.constraints import DEFAULTS

    return SWEEP_DEFAULTS[name] if name in SWEEP_DEFAULTS else DEFAULTS[name]


def rule(name: str) -> str:
    """The declared rule of ``name`` as a message states it (``> 0 and finite``)."""
    from study.config.constraints import declared

    return declared(name).rule


def check_option(flag: str, name: str, value: Any) -> Any:
    """``value`` if the declared rule of ``name`` allows it; else a one-line
    :class:`~study.errors.StudyError` naming ``flag``: ``--lr must be > 0 and finite; got nan``."""
    from study.config.constraints import declared
    from study.errors import StudyError

    text = declared(name).problem(value)
    if text is not None:
        raise StudyError(f"{flag} {text}")
    return value


# ── configs and data ────────────────────────────────────────────────────────────────────────


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> StudyConfig:
    """Read and validate a YAML study config; ``overrides`` are ``dotted.key=value`` texts."""
    from study.config.model import load_config as _load

    return _load(path, overrides)


def load_problem(path: str | Path, x: Sequence[str | int] | None = None,
                 y: str | int | None = None) -> Problem:
    """A CSV file as a :class:`~study.core.problem.Problem` (one-line errors naming the file)."""
    from study.core.data import load_problem as _load

    return _load(path, x=x, y=y)


def config_problem(cfg: StudyConfig) -> Problem:
    """The config's data set, checked against the config's start space (``init_m`` against
    ``init_w…`` must fit the data's number of features)."""
    problem = load_problem(cfg.data.path, x=cfg.data.x, y=cfg.data.y)
    cfg.init_space(problem.d)
    return problem


def validate(cfg: StudyConfig) -> Problem:
    """Everything ``study run`` checks before it starts: the config's data and start space
    (:func:`config_problem`) and that the report's folder can be written."""
    from study.report.build import check_destination

    problem = config_problem(cfg)
    check_destination(cfg.report.dir)
    return problem


# ── sweeps and reports ──────────────────────────────────────────────────────────────────────


def run_sweep(cfg: StudyConfig, *, fresh: bool = False, progress: bool = True,
              report: bool = True, workers: int = 1, heartbeat: int | None = None
              ) -> SweepSummary:
    """Run or resume the config's sweep until ``search.n_trials`` trials are complete, then
    (unless ``report`` is False, or the sweep was interrupted or failed) write its report.

    ``workers`` > 1 shares the sweep among that many processes, as ``study run --workers N``;
    ``heartbeat`` is the interval in seconds of running trials' heartbeats on RDB storages
    (None: the default of :data:`study.config.constraints.HEARTBEAT_SECONDS`).
    """
    from study.config.constraints import HEARTBEAT_SECONDS

    beat = HEARTBEAT_SECONDS if heartbeat is None else heartbeat
    if report:  # a report that could not be written is refused before the sweep, not after
        from study.report.build import check_destination

        check_destination(cfg.report.dir)
    say = _say if progress else _quiet
    say(f"study: opening the stores of {cfg.name!r} and the data {cfg.data.path.name}")
    from study.core.kernels import compiled_here

    if not compiled_here():
        say("study: compiling the engine once for this install (10 to 40 s; later runs load "
            "it in about a second)")
    from study.tracking.uri import sqlite_path, sqlite_store_missing

    if sqlite_store_missing(cfg.tracking.mlflow_uri):
        say(f"study: creating the MLflow store {sqlite_path(cfg.tracking.mlflow_uri).name} "
            "(its tables, once: a few seconds)")
    if workers > 1:
        from study.sweep.workers import run_with_workers

        summary = run_with_workers(cfg, workers, fresh=fresh, progress=progress, heartbeat=beat)
    else:
        from study.sweep.loop import run_sweep as _run

        summary = _run(cfg, fresh=fresh, progress=progress, heartbeat=beat)
    if report and not summary.interrupted and not summary.failed_workers:
        say(f"study: writing the report to {cfg.report.dir} (figures, report.html; a few "
            "seconds)")
        summary.report_path = str(write_report(cfg)[0])
    return summary


def _say(line: str) -> None:
    """One line on stderr about what a long command is doing (stdout keeps the results)."""
    print(line, file=sys.stderr, flush=True)


def _quiet(line: str) -> None:
    """No progress lines (``progress=False``)."""


def trials_frame(cfg: StudyConfig) -> pd.DataFrame:
    """One tidy row per complete trial of the config's study."""
    from study.sweep.summary import trials_frame as _frame

    return _frame(cfg)


def format_summary(summary: SweepSummary) -> str:
    """The end-of-run text of :func:`run_sweep`."""
    from study.sweep.summary import format_summary as _format

    return _format(summary)


def report_painters() -> AbstractContextManager[Any]:
    """Processes that draw the report's figures on every core, forked now (see
    :mod:`study.report.painters`): start them before reading the config so that they import
    matplotlib meanwhile, and pass them to :func:`write_report`."""
    import pandas  # noqa: F401  (before the fork: the painters share it rather than import it)

    from study.report.painters import painters

    return painters()


def write_report(cfg: StudyConfig, painters: Any = None) -> tuple[Path, str | None]:
    """The report of ``cfg``'s study from its COMPLETE trials (a finished, resumed or running
    study) under ``cfg.report.dir``, also logged as artifacts (``report/``) of the sweep's
    parent MLflow run when there is one: (path of report.html, that run's id or None).
    ``painters`` from :func:`report_painters` (default: started here). Raises
    :class:`~study.errors.StudyError` when the study is missing or has no complete trial."""
    from study.report.build import build_report, writable_folder
    from study.tracking.histories import local_histories
    from study.tracking.publish import report_publisher

    writable_folder(cfg.report.dir)  # before the seconds of loading the trials
    crew = nullcontext(painters) if painters is not None else report_painters()
    uri = cfg.tracking.mlflow_uri
    with crew as drawn_by, report_publisher(uri, cfg.name) as publish:
        path = build_report(cfg, load_problem(cfg.data.path, cfg.data.x, cfg.data.y),
                            trials_frame(cfg), cfg.report.dir, drawn_by, local_histories(uri))
        return path, publish(cfg.report.dir)


def repair_journal(path: str | Path) -> str:
    """Rewrite a damaged Optuna journal keeping every readable record, after a backup beside
    it; one line saying what was kept. Raises :class:`~study.errors.StudyError` when the file
    is missing or is not a journal."""
    from study.errors import StudyError
    from study.sweep.journal import repair_journal as _repair

    journal = Path(path)
    if not journal.is_file():
        raise StudyError(f"no journal file {journal}")
    try:
        return _repair(journal).text()
    except OSError as exc:
        raise StudyError(f"cannot repair {journal}: {exc.strerror or exc}") from None


def ui_command(config: str | Path | None = None, overrides: Sequence[str] = ()) -> list[str]:
    """The ``mlflow ui`` command for a config's tracking store (default: ./mlflow.db)."""
    from study.tracking.uri import ui_command as _ui

    if config is None:
        return _ui(f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    return _ui(load_config(config, overrides).tracking.mlflow_uri)


# ── the questions ───────────────────────────────────────────────────────────────────────────


def fit(data: str | Path, **options: Any) -> dict:
    """One gradient-descent fit on a CSV compared with OLS, as a JSON-ready dict (see
    :func:`study.questions.fit.fit` for the options)."""
    from study.questions.fit import fit as _fit

    return _fit(data, **options)


def format_fit(out: dict) -> str:
    """The text of ``study fit``."""
    from study.questions.fit import format_fit as _format

    return _format(out)


def iterations(problem: Problem, cfg: StudyConfig | None = None, label: str = "",
               **given: Any) -> Answer:
    """The 1,000,000-iteration answer on ``problem``: ``given`` (lrs, starts, param_tols,
    cost_tols, max_epochs; None or absent means "not given") overrides what the config
    ``cfg`` asks, which overrides the defaults."""
    from study.questions import answer

    asked = answer.question_from_config(cfg, problem.d, label) if cfg is not None else {}
    asked.update({k: v for k, v in given.items() if v is not None})
    return answer.iterations(problem, **asked)


def iterations_json(result: Answer) -> dict:
    """The answer as one strict-JSON-ready object."""
    from study.questions.output import to_json

    return to_json(result)


def format_iterations(result: Answer) -> str:
    """The answer as the text of ``study iterations``."""
    from study.questions.output import format_answer

    return format_answer(result)


def check_figure_path(path: str | Path) -> Path:
    """A figure path whose folder exists, checked before any work."""
    from study.questions.figure import check_destination

    return check_destination(path)


def draw_iterations(result: Answer, path: str | Path) -> Path:
    """‖θ − θ*‖ and (J − J*)/J* against epochs for every run of the answer, as a PNG."""
    from study.questions.figure import draw

    return draw(result, path)


def reproductions(data_dir: str | Path, article_csv: str | Path,
                  only: str | None = None) -> list:
    """Every tutorial setup and claim re-run: [(section, [entry, …]), …] (one entry with
    ``only``); raises :class:`~study.errors.StudyError` for an unknown id."""
    from study.errors import StudyError
    from study.questions.reproduce import build

    try:
        return build(data_dir, article_csv, only=only)
    except KeyError as exc:
        raise StudyError(f"--only: {exc.args[0]}") from None


def reproductions_text(sections: list, page: bool = True) -> str:
    """The reproductions as the markdown page, or (``page=False``) as their entries only."""
    from study.questions.reproduce import render_entry, render_page

    if page:
        return render_page(sections)
    return "\n".join(render_entry(e) for _, entries in sections for e in entries)


def reproductions_diff(old: str, new: str, path: str) -> str:
    """Where a stored reproductions page differs from the regenerated one."""
    from study.questions.reproduce import diff_summary

    return diff_summary(old, new, path)


def reproductions_counts(sections: list) -> str:
    """How many reproductions got each verdict, in words."""
    from study.questions.reproduce import verdict_counts

    return verdict_counts(sections)
