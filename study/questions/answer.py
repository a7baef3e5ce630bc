"""The 1,000,000-iteration question: how many epochs gradient descent needs, measured and
predicted, why, and what cures it.

For each learning rate and start θ₀, :func:`iterations` measures and predicts the first epoch
of every target for plain GD and for every cure (:mod:`study.questions.iterations`), explains
the numbers from the Hessian's spectrum and checks the article's claims on the same data
(:mod:`study.questions.explain`). :func:`question_from_config` reads the same inputs from a
study config; :func:`to_json` and :func:`format_answer` (:mod:`study.questions.output`)
turn the answer into the command's output. No I/O.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from study.core import engine as E
from study.core import theory as T
from study.core.constraints import DEFAULTS
from study.core.problem import Problem
from study.errors import ConfigError
from study.questions.explain import check_claims, explain
from study.questions.iterations import Answer, cures, measure, plain

if TYPE_CHECKING:
    from study.config.model import StudyConfig


DEFAULT_LRS = (DEFAULTS["lr"],)
DEFAULT_STARTS = ((0.0, 0.0), (-1.0, 0.0), (2.0, 8.0))  # one feature; else the origin
DEFAULT_PARAM_TOLS = DEFAULTS["param_tols"]
DEFAULT_COST_TOLS = DEFAULTS["cost_tols"]
DEFAULT_MAX_EPOCHS = DEFAULTS["max_epochs"]


def iterations(problem: Problem, lrs: Sequence[float] = DEFAULT_LRS,
               starts: Sequence[Sequence[float]] | None = None,
               param_tols: Sequence[float] = DEFAULT_PARAM_TOLS,
               cost_tols: Sequence[float] = DEFAULT_COST_TOLS,
               max_epochs: int = DEFAULT_MAX_EPOCHS,
               settings: E.Settings | None = None) -> Answer:
    """Measured and predicted first epochs of plain GD (each lr × start) and of every cure
    (each start), with the why and the article's claims. ``settings`` gives the cost
    convention and the line-search constants (default: mse, the engine's defaults)."""
    base = replace(settings or E.Settings(), optimizer="gd", standardize=False,
                   update="simultaneous")
    starts = _starts(problem, starts)
    param_tols = tuple(sorted(map(float, param_tols), reverse=True))
    cost_tols = tuple(sorted(map(float, cost_tols), reverse=True))
    with np.errstate(all="ignore"):  # overflowing runs are data (status diverged), not noise
        return _iterations(problem, lrs, starts, param_tols, cost_tols, max_epochs, base)


def _iterations(problem, lrs, starts, param_tols, cost_tols, max_epochs, base) -> Answer:
    methods = [plain(float(lr), base) for lr in lrs] + cures(problem, base)
    runs = measure(problem, methods, starts, param_tols, cost_tols, max_epochs)
    runs.sort(key=lambda r: starts.index(r.init))  # grouped by start, methods in order
    sp = T.spectrum(problem, base)
    answer = Answer(
        source=problem.source, n=problem.n, cost=base.cost, param_names=problem.param_names,
        ols_theta=problem.ols_theta, ols_cost=problem.ols_cost(base.cost),
        lam_min=sp.lam_min, lam_max=sp.lam_max, condition_number=sp.condition_number,
        lr_max=T.lr_max(problem, base), lrs=tuple(map(float, lrs)), starts=starts,
        param_tols=param_tols, cost_tols=cost_tols, max_epochs=int(max_epochs), runs=runs,
        why={}, gap_mode=T.gap_denominator(problem, base.cost)[1],
    )
    answer = replace(answer, why=explain(problem, base, answer))
    if problem.d == 1:  # the article's claims are about one feature
        answer = replace(answer, claims=check_claims(problem, base, answer))
    return answer


def _starts(problem: Problem, starts: Sequence[Sequence[float]] | None
            ) -> tuple[tuple[float, ...], ...]:
    """The starts as float tuples of the problem's length (default: DEFAULT_STARTS for one
    feature, else the origin); raises ValueError naming the parameters on a wrong length."""
    p = problem.d + 1
    if starts is None:
        starts = DEFAULT_STARTS if p == 2 else (tuple([0.0] * p),)
    out = tuple(tuple(map(float, s)) for s in starts)
    for s in out:
        if len(s) != p:
            raise ValueError(f"a start needs {p} numbers ({', '.join(problem.param_names)}); "
                             f"got {len(s)}")
    return out


def question_from_config(cfg: StudyConfig, d: int, label: str) -> dict:
    """lrs, starts (every combination of the init_* entries), tolerances, cap and settings
    from a study config whose space entries are constants or ``{values: [...]}``."""

    def values(key: str, spec) -> list:
        if spec.kind == "const":
            return [spec.value]
        if spec.kind == "values":
            return list(spec.values)
        raise ConfigError(f"{label}: search.space.{key} is a range; study iterations needs a "
                          "constant or {values: [...]}")

    space = cfg.search.space
    init = cfg.init_space(d)
    settings = cfg.settings()
    starts = [tuple(float(v) for v in combo) for combo in
              itertools.product(*(values(k, s) for k, s in init.items()))]
    return {"lrs": [float(v) for v in values("lr", space["lr"])], "starts": starts,
            "param_tols": settings.param_tols, "cost_tols": settings.cost_tols,
            "max_epochs": int(max(values("epochs", space["epochs"]))), "settings": settings}
