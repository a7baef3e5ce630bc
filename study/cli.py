"""The ``study`` command: parse arguments, call the Python API, print, return an exit code.

Every subcommand is a pair: ``_add_<name>(subparsers)`` declares its arguments and
``_cmd_<name>(args) -> int`` runs it. A :class:`study.errors.StudyError` becomes one line on
stderr and exit code 2 (``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from study.errors import StudyError


def _columns(values: list[str] | None) -> list[str | int] | None:
    """Column selectors: a 0-based position if the text is an integer, else a name."""
    if not values:
        return None
    return [int(v) if v.lstrip("-").isdigit() else v for v in values]


# ── study fit ───────────────────────────────────────────────────────────────────────────────


class _LinesFormatter(argparse.HelpFormatter):
    """Help texts keep their line breaks (one line per choice), each line wrapped as usual."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        split = super()._split_lines
        return [line for part in text.splitlines() for line in split(part, width)]


def _add_choice(parser: argparse.ArgumentParser, name: str, what: str) -> None:
    """An option whose values and their meanings are the declared ones."""
    from study import api

    meanings = api.choices(name)
    lines = [f"- {value}: {meaning}" for value, meaning in meanings.items()]
    parser.add_argument(f"--{name.replace('_', '-')}", default=api.default(name),
                        choices=list(meanings), metavar="{" + ",".join(meanings) + "}",
                        help=f"{what} (default {api.default(name)}):\n" + "\n".join(lines))


def _numeric_help(name: str, what: str) -> str:
    """``what``, the declared rule and the declared default of ``name``."""
    from study import api

    return f"{what}; {api.rule(name)} (default {api.default(name)})"


def _add_fit(sub: argparse._SubParsersAction) -> None:
    from study import api

    p = sub.add_parser("fit", help="run one gradient-descent fit and compare it with OLS",
                       description="Run one gradient-descent fit on a CSV and compare it with the "
                                   "least-squares (OLS) line.", formatter_class=_LinesFormatter)
    p.add_argument("--data", required=True, help="CSV file (numeric; header optional)")
    p.add_argument("--x", nargs="+", metavar="COL", help="feature columns (names or 0-based "
                   "positions; default: all but the last)")
    p.add_argument("--y", metavar="COL", help="target column (default: the last)")
    p.add_argument("--lr", type=float, default=api.default("lr"),
                   help=_numeric_help("lr", "learning rate"))
    p.add_argument("--epochs", type=int, default=api.default("epochs"),
                   help=_numeric_help("epochs", "epoch budget"))
    p.add_argument("--init-m", type=float, default=api.default("init"),
                   help=_numeric_help("init", "initial slope(s)"))
    p.add_argument("--init-b", type=float, default=api.default("init"),
                   help=_numeric_help("init", "initial intercept"))
    _add_choice(p, "cost", "cost J of the residuals r = y − Xw − b")
    _add_choice(p, "update", "order of the parameters' updates")
    _add_choice(p, "optimizer", "update rule")
    _add_choice(p, "line_search", "step rule of --optimizer line_search")
    p.add_argument("--momentum", type=float, default=api.default("momentum"),
                   help=_numeric_help("momentum", "heavy-ball β of --optimizer momentum"))
    p.add_argument("--batch-size", type=int, default=api.default("batch_size"),
                   help=_numeric_help("batch_size", "minibatch size of --optimizer minibatch"))
    p.add_argument("--standardize", action="store_true", help="run GD on z-scored features")
    p.add_argument("--tol-param", type=float, help="stop when ‖θ − θ*‖ ≤ this; "
                   f"{api.rule('tol_param')} (default: never)")
    p.add_argument("--seed", type=int, default=api.default("seed"),
                   help=_numeric_help("seed", "seed of minibatch shuffling"))
    p.add_argument("--json", action="store_true", help="print one JSON object")


# Each numeric flag of `study fit` and the declared value it is: checked before anything runs.
_FIT_FLAGS = {"--lr": "lr", "--epochs": "epochs", "--init-m": "init", "--init-b": "init",
              "--momentum": "momentum", "--batch-size": "batch_size",
              "--tol-param": "tol_param", "--seed": "seed"}


def _check_flags(args: argparse.Namespace, flags: dict[str, str]) -> None:
    """Every flag's value against its declared rule: one line naming the flag, exit 2."""
    from study import api

    for flag, name in flags.items():
        api.check_option(flag, name, getattr(args, flag[2:].replace("-", "_")))


def _cmd_fit(args: argparse.Namespace) -> int:
    from study import api

    _check_flags(args, _FIT_FLAGS)
    out = api.fit(
        args.data, x=_columns(args.x), y=_columns([args.y])[0] if args.y else None,
        lr=args.lr, epochs=args.epochs, init_m=args.init_m, init_b=args.init_b,
        cost=args.cost, update=args.update, optimizer=args.optimizer,
        line_search=args.line_search, momentum=args.momentum, batch_size=args.batch_size,
        standardize=args.standardize, tol_param=args.tol_param, seed=args.seed,
    )
    if args.json:
        print(json.dumps(out, allow_nan=False))
    else:
        print(api.format_fit(out))
    return 0


# ── config arguments (shared by the commands that read a study config) ─────────────────────


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    """Positional ``config`` and repeatable ``--set KEY=VALUE`` (applied before validation)."""
    parser.add_argument("config", help="study config (YAML)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config key before validation, "
                        "e.g. --set search.n_trials=50 (repeatable)")


def _load_config(args: argparse.Namespace):
    """The validated config named by :func:`_add_config_args`'s arguments."""
    from study import api

    return api.load_config(args.config, args.overrides)


# ── study validate ──────────────────────────────────────────────────────────────────────────


def _add_validate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a config and its data without running anything",
                       description="Validate a study config (with overrides) and load its data; "
                                   "print one ok line, or one error line and exit 2.")
    _add_config_args(p)


def _cmd_validate(args: argparse.Namespace) -> int:
    from study import api

    cfg = _load_config(args)
    api.validate(cfg)
    print(f"ok: {args.config}: {cfg.name}, {cfg.search.n_trials} trials, "
          f"space: {', '.join(cfg.search.space)}")
    return 0


# ── study run ───────────────────────────────────────────────────────────────────────────────


def _add_run(sub: argparse._SubParsersAction) -> None:
    from study import api

    p = sub.add_parser("run", help="run or resume the sweep of a config",
                       description="Run the config's Optuna sweep, one MLflow run per trial, "
                                   "until search.n_trials trials are complete (re-running "
                                   "resumes). Ctrl-C stops cleanly; run again to resume.")
    _add_config_args(p)
    p.add_argument("--fresh", action="store_true",
                   help="delete a stored study of the same name and start again")
    p.add_argument("--no-report", action="store_true", help="do not write the report")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--workers", type=int, default=api.default("workers"), metavar="N",
                   help=f"run N local worker processes on the study (default "
                        f"{api.default('workers')}: this process); on several machines, run "
                        "the command on each against one PostgreSQL storage and one MLflow "
                        "server")
    p.add_argument("--heartbeat", type=int, default=None, metavar="SECONDS",
                   help="on RDB storages (sqlite://, postgresql://), record running trials' "
                        f"heartbeats this often; a trial silent {api.default('heartbeat_grace')}x "
                        f"as long is failed and run again (default {api.default('heartbeat')}; "
                        "use the same value on every machine)")


def _cmd_run(args: argparse.Namespace) -> int:
    import shlex

    from study import api

    api.check_option("--workers", "workers", args.workers)
    if args.heartbeat is not None:
        api.check_option("--heartbeat", "heartbeat", args.heartbeat)
    cfg = _load_config(args)
    summary = api.run_sweep(cfg, fresh=args.fresh, progress=not args.no_progress,
                            report=not args.no_report, workers=args.workers,
                            heartbeat=args.heartbeat)
    print(api.format_summary(summary))
    again = shlex.join(["study", "run", args.config,
                        *(a for o in args.overrides for a in ("--set", o)),
                        *(["--workers", str(args.workers)] if args.workers > 1 else [])])
    if summary.interrupted:
        print(f"study: interrupted with {summary.n_complete} of {summary.n_trials} trials "
              f"complete; to resume, run: {again}", file=sys.stderr)
        return 130
    if summary.failed_workers:
        done = summary.n_complete >= summary.n_trials
        print(f"study: {len(summary.failed_workers)} worker(s) failed; {summary.n_complete} of "
              f"{summary.n_trials} trials complete" + (
                  " (the other workers ran the failed worker's trials again)" if done else
                  f"; to finish, run: {again}"), file=sys.stderr)
        return summary.exit_code or 1
    return 0


# ── study ui ────────────────────────────────────────────────────────────────────────────────


def _add_ui(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", help="print (or run) the mlflow ui command for a config's store",
                       description="Print the exact `mlflow ui` command for the config's "
                                   "tracking store (default: ./mlflow.db); --open runs it.")
    p.add_argument("config", nargs="?", help="study config (YAML); default: the stores in the "
                   "working directory")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key before validation (repeatable)")
    p.add_argument("--open", action="store_true", help="run the command (Ctrl-C stops it)")


def _cmd_ui(args: argparse.Namespace) -> int:
    import shlex
    import shutil
    import subprocess

    from study import api

    cmd = api.ui_command(args.config, args.overrides)
    print(shlex.join(cmd))
    if not args.open:
        return 0
    if cmd[0] == "python":  # a tracking server: open its page
        return subprocess.call([sys.executable, *cmd[1:]])
    exe = shutil.which("mlflow")
    try:
        return subprocess.call([exe, *cmd[1:]] if exe else [sys.executable, "-m", "mlflow",
                                                            *cmd[1:]])
    except KeyboardInterrupt:
        return 0


# ── study iterations ────────────────────────────────────────────────────────────────────────


def _parse(flag: str, text: str, kind: type = float) -> float:
    """A number from a command-line value, or a one-line error naming the flag."""
    try:
        return kind(float(text)) if kind is int and "e" in text.lower() else kind(text)
    except (ValueError, OverflowError):
        raise StudyError(f"{flag} must be a {'whole ' if kind is int else ''}number; got "
                         f"{text!r}") from None


def _number(flag: str, name: str, text: str, kind: type = float) -> float:
    """:func:`_parse`, then the declared rule of ``name``."""
    from study import api

    return api.check_option(flag, name, _parse(flag, text, kind))


def _tolerances(flag: str, texts: list[str]) -> list[float]:
    """Target tolerances from the command line, checked as a recorded tolerance list."""
    from study import api

    return api.check_option(flag, "param_tols", [_parse(flag, t) for t in texts])


def _start(text: str, p: int, names: Sequence[str]) -> tuple[float, ...]:
    """``"2,8"`` → (2.0, 8.0), with as many numbers as the problem has parameters."""
    from study import api

    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != p:
        raise StudyError(f"--start must be {p} comma-separated numbers ({','.join(names)}), "
                         f"e.g. --start=-1,0; got {text!r}")
    return tuple(api.check_option("--start", "init", v) for v in values)


def _add_iterations(sub: argparse._SubParsersAction) -> None:
    from study import api

    p = sub.add_parser(
        "iterations", help="how many epochs GD needs: measured, predicted, why, and the cures",
        description="For each learning rate and start: the first epoch at which ‖θ − θ*‖ ≤ t "
                    "and (J − J*)/J* ≤ t, measured by iterating and predicted by theory; why "
                    "(the Hessian's spectrum); the cures measured the same way; the article's "
                    "claims checked. With a CONFIG, data, lr, starts (every combination of the "
                    "init_* entries), tolerances and the epoch cap come from it; flags "
                    "override. --json prints one object: lam_min, lam_max, condition_number, "
                    "lr_max, ols {m, b, cost}, runs [{method, lr, init_m, init_b, targets "
                    "[{criterion, tol, measured_epochs, predicted_epochs}]}], why, claims.")
    p.add_argument("config", nargs="?", help="study config (YAML), e.g. configs/million.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key before validation (repeatable)")
    p.add_argument("--data", help="CSV file (default: the config's data.path)")
    p.add_argument("--lr", action="append", metavar="LR",
                   help=f"learning rate of plain GD, {api.rule('lr')} (repeatable; default "
                        f"{api.default('lr')})")
    p.add_argument("--start", action="append", metavar="M,B",
                   help="start (repeatable; default 0,0 and -1,0 and 2,8); write a negative "
                        "value as --start=-1,0")
    p.add_argument("--param-tol", nargs="+", metavar="T",
                   help="targets ‖θ − θ*‖ ≤ T (default "
                        f"{' '.join(map(str, api.default('param_tols')))})")
    p.add_argument("--cost-tol", nargs="+", metavar="T",
                   help="targets (J − J*)/J* ≤ T (default "
                        f"{' '.join(map(str, api.default('cost_tols')))})")
    p.add_argument("--max-epochs", metavar="N", help=f"epoch cap of every run; "
                   f"{api.rule('max_epochs')} (default {api.default('max_epochs')})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--figure", metavar="PATH", help="also draw ‖θ − θ*‖ and (J − J*)/J* "
                   "against epochs (PNG)")


def _cmd_iterations(args: argparse.Namespace) -> int:
    from study import api

    if args.config is None and args.data is None:
        raise StudyError("study iterations needs a CONFIG or --data PATH")
    if args.figure:
        api.check_figure_path(args.figure)
    cfg = _load_config(args) if args.config else None
    problem = (api.load_problem(args.data) if args.data is not None
               else api.load_problem(cfg.data.path, x=cfg.data.x, y=cfg.data.y))
    answer = api.iterations(
        problem, cfg, args.config or "",
        lrs=[_number("--lr", "lr", v) for v in args.lr] if args.lr else None,
        starts=([_start(v, problem.d + 1, problem.param_names) for v in args.start]
                if args.start else None),
        param_tols=_tolerances("--param-tol", args.param_tol) if args.param_tol else None,
        cost_tols=_tolerances("--cost-tol", args.cost_tol) if args.cost_tol else None,
        max_epochs=(_number("--max-epochs", "max_epochs", args.max_epochs, int)
                    if args.max_epochs else None),
    )
    figure = api.draw_iterations(answer, args.figure) if args.figure else None
    if args.json:
        print(json.dumps(api.iterations_json(answer), allow_nan=False))
    else:
        print(api.format_iterations(answer), end="")
        if figure is not None:
            print(f"\nFigure: {figure}")
    return 0


# ── study reproduce ─────────────────────────────────────────────────────────────────────────


def _add_reproduce(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce", help="re-run every tutorial setup and claim; write docs/reproductions.md",
        description="Re-run every setup and claim of the tutorials and write the page of "
                    "commands, outputs and verdicts. --check compares the regenerated page "
                    "with the file instead of writing it (exit 1 if they differ).")
    p.add_argument("--data-dir", default="data", help="the project's data sets (default: data)")
    p.add_argument("--article-data", default="../shared/data/nedrich/data.csv",
                   help="the article's data.csv (default: ../shared/data/nedrich/data.csv)")
    p.add_argument("--out", default="docs/reproductions.md",
                   help="the page (default: docs/reproductions.md)")
    p.add_argument("--check", action="store_true",
                   help="exit 1 with a diff summary if the page is not what the code produces")
    p.add_argument("--only", metavar="ID", help="print one entry (e.g. A1) instead of the page")


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from pathlib import Path

    from study import api

    sections = api.reproductions(args.data_dir, args.article_data, only=args.only)
    if args.only:
        print(api.reproductions_text(sections, page=False), end="")
        return 0
    page = api.reproductions_text(sections)
    out = Path(args.out)
    if args.check:
        old = out.read_text(encoding="utf-8") if out.is_file() else ""
        if old == page:
            print(f"{args.out} is up to date")
            return 0
        print(api.reproductions_diff(old, page, args.out), file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(f"wrote {args.out}: {api.reproductions_counts(sections)}")
    return 0


# ── study report ────────────────────────────────────────────────────────────────────────────


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write the report of a config's study",
                       description="Write the study's report (trials table, regions, figures, "
                                   "report.md and a self-contained report.html) from its "
                                   "complete trials, under report.dir, and log it to the "
                                   "sweep's parent MLflow run. Works while a sweep runs.")
    _add_config_args(p)


def _cmd_report(args: argparse.Namespace) -> int:
    from study import api

    with api.report_painters() as painters:  # importing matplotlib while the config is read
        cfg = _load_config(args)
        path, run_id = api.write_report(cfg, painters)
    print(f"report: {path}")
    print(f"  logged as artifacts report/ of MLflow run {run_id}" if run_id else
          f"  not logged to MLflow: no sweep parent run of {cfg.name!r} in "
          f"{cfg.tracking.mlflow_uri}")
    return 0


# ── study repair-journal ────────────────────────────────────────────────────────────────────


def _cmd_repair_journal(args: argparse.Namespace) -> int:
    from study import api

    print(api.repair_journal(args.path))
    return 0


REPAIR_JOURNAL = (
    "Rewrite an Optuna journal file keeping every readable record (two records glued into one "
    "line are split; an unreadable trial creation keeps its trial number), after a backup "
    "beside it (<name>.bak-<time>). For a torn last line, the error of study run gives the "
    "exact truncate.")


def _add_repair_journal(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("repair-journal", description=REPAIR_JOURNAL,
                       help="repair an Optuna journal damaged inside")
    p.add_argument("path", help="the journal file (e.g. optuna.journal)")


# ── main ────────────────────────────────────────────────────────────────────────────────────

COMMANDS = {"fit": (_add_fit, _cmd_fit), "validate": (_add_validate, _cmd_validate),
            "run": (_add_run, _cmd_run), "ui": (_add_ui, _cmd_ui),
            "iterations": (_add_iterations, _cmd_iterations),
            "reproduce": (_add_reproduce, _cmd_reproduce),
            "report": (_add_report, _cmd_report),
            "repair-journal": (_add_repair_journal, _cmd_repair_journal)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="study", description="Gradient descent on linear regression as a tracked, "
                                  "reproducible hyperparameter study.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def _interrupted(exc: BaseException | None) -> bool:
    """A Ctrl-C, also one Python wrapped: a KeyboardInterrupt raised while a class is created
    (its ``__set_name__``) surfaces as a RuntimeError caused by it, as seen when a Ctrl-C lands
    while numba is being imported."""
    while exc is not None:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@contextmanager
def _no_swallowed_interrupts() -> Iterator[None]:
    """A Ctrl-C that lands where Python cannot raise it (a weakref callback of the import
    system, a finalizer) is printed as "Exception ignored" and lost, and the command would go
    on as if nothing happened. It is sent again to the main thread 50 ms later, from a timer
    thread, so that it is raised once this hook has returned, where the command's handlers see
    it (sent from here, it would be raised inside the hook and lost again)."""
    default = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            again = threading.Timer(0.05, signal.pthread_kill,
                                    (threading.main_thread().ident, signal.SIGINT))
            again.daemon = True
            again.start()
        else:
            default(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = default


def main(argv: Sequence[str] | None = None) -> int:
    with _no_swallowed_interrupts():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    debug = False
    try:  # building the parser imports the declared options (numpy): a Ctrl-C may land there
        args = build_parser().parse_args(argv)
        debug = args.debug
        code = COMMANDS[args.command][1](args)
        sys.stdout.flush()  # a reader that went away shows here, not at the interpreter's exit
        return code
    except StudyError as exc:
        if debug:
            raise
        print(f"study: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`study iterations | head`): nothing to say
        # Python flushes stdout again at exit; point it at devnull so that cannot fail too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except BaseException as exc:
        if not _interrupted(exc):
            raise
        print("study: interrupted", file=sys.stderr)
        return 130
