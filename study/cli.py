"""The ``study`` command: parse arguments, call the Python API, print, return an exit code.

Every subcommand is a pair: ``_add_<name>(subparsers)`` declares its arguments and
``_cmd_<name>(args) -> int`` runs it. A :class:`study.errors.StudyError` becomes one line on
stderr and exit code 2 (``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from study.errors import StudyError


def _floats(text: str) -> tuple[float, ...]:
    """``"2,8"`` → (2.0, 8.0); used for starts given as M,B (or W1,…,B)."""
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers; got {text!r}") from None


def _columns(values: list[str] | None) -> list[str | int] | None:
    """Column selectors: a 0-based position if the text is an integer, else a name."""
    if not values:
        return None
    return [int(v) if v.lstrip("-").isdigit() else v for v in values]


# ── study fit ───────────────────────────────────────────────────────────────────────────────


def _add_fit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit", help="run one gradient-descent fit and compare it with OLS",
                       description="Run one gradient-descent fit on a CSV and compare it with the "
                                   "least-squares (OLS) line.")
    p.add_argument("--data", required=True, help="CSV file (numeric; header optional)")
    p.add_argument("--x", nargs="+", metavar="COL", help="feature columns (names or 0-based "
                   "positions; default: all but the last)")
    p.add_argument("--y", metavar="COL", help="target column (default: the last)")
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate (default 1e-4)")
    p.add_argument("--epochs", type=int, default=1000, help="epoch budget (default 1000)")
    p.add_argument("--init-m", type=float, default=0.0, help="initial slope(s) (default 0)")
    p.add_argument("--init-b", type=float, default=0.0, help="initial intercept (default 0)")
    p.add_argument("--cost", default="mse", choices=["mse", "half_mse", "sse"])
    p.add_argument("--update", default="simultaneous", choices=["simultaneous", "sequential"])
    p.add_argument("--optimizer", default="gd",
                   choices=["gd", "momentum", "minibatch", "line_search"])
    p.add_argument("--line-search", default="backtracking", choices=["backtracking", "exact"])
    p.add_argument("--momentum", type=float, default=0.9, help="heavy-ball β (default 0.9)")
    p.add_argument("--batch-size", type=int, default=10, help="minibatch size (default 10)")
    p.add_argument("--standardize", action="store_true", help="run GD on z-scored features")
    p.add_argument("--tol-param", type=float, help="stop when ‖θ − θ*‖ ≤ this")
    p.add_argument("--seed", type=int, default=0, help="seed of minibatch shuffling")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _cmd_fit(args: argparse.Namespace) -> int:
    from study import api

    out = api.fit(
        args.data, x=_columns(args.x), y=_columns([args.y] if args.y else None),
        lr=args.lr, epochs=args.epochs, init_m=args.init_m, init_b=args.init_b,
        cost=args.cost, update=args.update, optimizer=args.optimizer,
        line_search=args.line_search, momentum=args.momentum, batch_size=args.batch_size,
        standardize=args.standardize, tol_param=args.tol_param, seed=args.seed,
    )
    if args.json:
        print(json.dumps(out))
    else:
        print(api.format_fit(out))
    return 0


# ── main ────────────────────────────────────────────────────────────────────────────────────

COMMANDS = {"fit": (_add_fit, _cmd_fit)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="study", description="Gradient descent on linear regression as a tracked, "
                                  "reproducible hyperparameter study.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command][1](args)
    except StudyError as exc:
        if args.debug:
            raise
        print(f"study: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("study: interrupted", file=sys.stderr)
        return 130
