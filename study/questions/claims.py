"""What an entry of docs/reproductions.md is, and what the entries share.

The tutorials' setups and claims (../shared/SEEDS.md) are each re-run and judged by one function
(:mod:`study.questions.claims_article` for the article, A1–A11;
:mod:`study.questions.claims_tutorials` for the other four tutorials, B–E) whose name
starts with the entry's id (``a1_…`` is A1). It runs the engine and the theory on the data
of its setup (a :class:`Sources`) and returns an :class:`Entry`: the numbers it prints and
a verdict derived from them (no verdict is typed in by hand). A ``study fit`` command quoted
by an entry carries the values it prints
(:class:`FitCheck`), and the tests run it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from study.core import engine as E
from study.core.data import load_problem
from study.core.problem import Problem
from study.questions import answer as Q
from study.questions.iterations import Answer, Run

ARTICLE_CSV = "../shared/data/nedrich/data.csv"  # as the page shows it (relative to the root)
DATA_DIR = "data"
MSE = E.Settings()


@dataclass(frozen=True)
class FitCheck:
    """A ``study fit`` command quoted on the page, with the values the page says it prints
    (tests run it and compare)."""

    argv: tuple[str, ...]
    values: dict

    @property
    def command(self) -> str:
        return fit_command(self.argv)


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    setup: str
    claim: str
    commands: tuple[str, ...]
    output: tuple[str, ...]
    verdict: str  # starts with "holds", "does not hold" or "holds only"
    reason: str
    fit_checks: tuple[FitCheck, ...] = field(default=())


class Sources:
    """The problems the entries run on, loaded once (and the article's iterations answer)."""

    def __init__(self, data_dir: Path, article_csv: Path) -> None:
        self.data_dir, self.article_csv = data_dir, article_csv

    @cached_property
    def article(self) -> Problem:
        return load_problem(self.article_csv)

    def project(self, name: str) -> Problem:
        return load_problem(self.data_dir / name)

    @cached_property
    def answer(self) -> Answer:
        return Q.iterations(self.article)

    def gd_run(self, init: tuple[float, ...]) -> Run:
        """The answer's plain-GD run (lr 0.0001) from ``init``."""
        return next(r for r in self.answer.runs if r.method.name == "gd" and r.init == init)


def fit_command(argv: Sequence[str]) -> str:
    """The shell form of a ``study fit`` argv (a negative value as ``--flag=-1``)."""
    out, args = ["study"], list(argv)
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--") and i + 1 < len(args) and args[i + 1].startswith("-") \
                and not args[i + 1].startswith("--"):
            out.append(f"{a}={args[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return " ".join(out)


def run(problem: Problem, lr: float, epochs: int, init: Sequence[float],
        settings: E.Settings = MSE, **changes) -> E.Result:
    """One engine run, with ``changes`` applied to ``settings``."""
    s = replace(settings, **changes)
    return E.run_one(problem, E.Trial(lr, epochs, tuple(map(float, init)), s))


def fit_check(data: str, *flags: str, result: E.Result) -> FitCheck:
    """``study fit --data DATA FLAGS…`` and the slope, intercept and status it prints."""
    return FitCheck(("fit", "--data", data, *flags),
                    {"m": float(result.theta[0]), "b": float(result.theta[1]),
                     "status": result.status})


def verdict(holds: bool) -> str:
    return "holds" if holds else "does not hold"


def num(x: float, digits: int = 6) -> str:
    """``x`` to ``digits`` significant digits."""
    return f"{x:.{digits}g}"
