"""The engine's allowed values, ranges and defaults, declared once.

Each setting or trial input has one small declarative constraint (:class:`Interval`,
:class:`Options`, :class:`Maybe`, :class:`Tolerances`, :class:`Boolean`) in
:data:`PARAMETER_CONSTRAINTS` and, where it has one, a default in :data:`DEFAULTS`. The engine's
:class:`~study.core.engine.Settings` and trial checks, the config model and the command line all
read them, so a value refused anywhere is refused everywhere with the same words:
``<name> must be <rule>; got <value>`` (a :class:`ValueError` from :func:`check`).

Cross-field rules (a grid needs a step, an objective's tolerance must be recorded) live with the
config; the constraints here are about one value each.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

MAX_EPOCHS = 10**9
# 10⁹ epochs take about 5 s of plain GD on one feature, a minute of momentum or line search and
# an hour of minibatch SGD on 100 points (benchmarks/RESULTS.md); the slowest tutorial setting
# needs about 10⁶. Ctrl-C stops any trial within milliseconds (study.core.stoppable).
EPOCHS_REASON = (
    "a larger budget runs for minutes to hours per trial; the tutorials' slowest setting needs "
    "about 10^6")


def show(value: Any) -> str:
    """A bad value as a message shows it: YAML-like, short."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else f"a {len(value)}-character string"
    if isinstance(value, numbers.Real):
        text = repr(value.item() if hasattr(value, "item") else value)
        return text if len(text) <= 60 else f"a {len(text)}-digit number"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def num(x: Any) -> str:
    """A bound as a rule states it: ``0`` rather than ``0.0``."""
    return str(int(x)) if isinstance(x, float) and x.is_integer() and abs(x) < 1e15 else repr(x)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class Constraint:
    """One value's rule: :attr:`rule` is the text after "must be"; :meth:`problem` is None for an
    allowed value, else "must be …; got …"."""

    rule: str

    def problem(self, value: Any) -> str | None:
        raise NotImplementedError

    def check(self, name: str, value: Any) -> Any:
        """``value`` unchanged, or a :class:`ValueError` "<name> must be …; got <value>"."""
        text = self.problem(value)
        if text is not None:
            raise ValueError(f"{name} {text}")
        return value


@dataclass(frozen=True)
class Interval(Constraint):
    """A number of type ``kind`` (int or float) between ``low`` and ``high`` (None: unbounded),
    ``closed`` on the named sides; floats are also finite. ``high_reason`` explains the upper
    bound and is shown when a value breaks it."""

    kind: type
    low: float | None
    high: float | None
    closed: Literal["both", "left", "right", "neither"] = "both"
    high_reason: str = ""

    @property
    def rule(self) -> str:  # type: ignore[override]
        parts = []
        if self.low is not None:
            parts.append((">= " if self.closed in ("both", "left") else "> ") + num(self.low))
        if self.high is not None:
            parts.append(("<= " if self.closed in ("both", "right") else "< ") + num(self.high))
        if self.kind is float and (self.low is None or self.high is None):
            parts.append("finite")
        return " and ".join(parts) if parts != ["finite"] else "a finite number"

    def __contains__(self, value: Any) -> bool:
        if not (_is_int(value) if self.kind is int else _is_number(value)):
            return False
        if not _is_int(value) and not math.isfinite(value):  # ints are finite, even 10**400
            return False
        low_ok = self.low is None or (value >= self.low if self.closed in ("both", "left")
                                      else value > self.low)
        high_ok = self.high is None or (value <= self.high if self.closed in ("both", "right")
                                        else value < self.high)
        return low_ok and high_ok

    def allows(self, values: np.ndarray) -> np.ndarray:
        """Elementwise :meth:`__contains__` for a numeric array (one pass, no Python loop)."""
        ok = np.isfinite(values) if self.kind is float else np.ones(values.shape, dtype=bool)
        if self.low is not None:
            ok &= values >= self.low if self.closed in ("both", "left") else values > self.low
        if self.high is not None:
            ok &= values <= self.high if self.closed in ("both", "right") else values < self.high
        return ok

    def problem(self, value: Any) -> str | None:
        if self.kind is int and not _is_int(value):
            return f"must be an integer; got {show(value)}"
        if not _is_number(value):
            return f"must be a number; got {show(value)}"
        if value in self:
            return None
        why = (f" ({self.high_reason})" if self.high_reason and self.high is not None
               and value > self.high else "")
        return f"must be {self.rule}{why}; got {show(value)}"


@dataclass(frozen=True)
class Options(Constraint):
    """One of a few names, each with one line of meaning (``{name: meaning}``)."""

    meanings: Mapping[str, str]

    @property
    def values(self) -> tuple[str, ...]:
        """The allowed names, in their declared order."""
        return tuple(self.meanings)

    @property
    def rule(self) -> str:  # type: ignore[override]
        quoted = [repr(v) for v in self.values]
        return "one of " + (f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1
                            else quoted[0])

    def problem(self, value: Any) -> str | None:
        if isinstance(value, str) and value in self.meanings:
            return None
        close = (difflib.get_close_matches(value, self.values, n=1, cutoff=0.6)
                 if isinstance(value, str) else [])
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"must be {self.rule}; got {show(value)}{hint}"


@dataclass(frozen=True)
class Boolean(Constraint):
    """true or false (not 0 or 1)."""

    rule: str = "true or false"

    def problem(self, value: Any) -> str | None:
        return None if isinstance(value, bool) else f"must be {self.rule}; got {show(value)}"


@dataclass(frozen=True)
class Maybe(Constraint):
    """``inner``'s values, or None (null: the rule is off)."""

    inner: Constraint

    @property
    def rule(self) -> str:  # type: ignore[override]
        return self.inner.rule  # null switches the rule off: the config's key says so

    def problem(self, value: Any) -> str | None:
        return None if value is None else self.inner.problem(value)


@dataclass(frozen=True)
class Tolerances(Constraint):
    """A non-empty collection of distinct ``item`` values."""

    item: Constraint

    @property
    def rule(self) -> str:  # type: ignore[override]
        return f"a non-empty list of distinct values, each {self.item.rule}"

    def repeat_problem(self, values: Iterable[Any]) -> str | None:
        """The complaint about a repeated tolerance, or None."""
        values = list(values)
        if len(set(values)) != len(values):
            return f"must not repeat a tolerance; got {values}"
        return None

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, list | tuple) or not value:
            return f"must be {self.rule}; got {show(value)}"
        for v in value:
            text = self.item.problem(v)
            if text is not None:
                return text
        return self.repeat_problem(value)

    def check(self, name: str, value: Any) -> Any:
        if isinstance(value, list | tuple):
            for i, v in enumerate(value):
                self.item.check(f"{name}[{i}]", v)
        return super().check(name, value)


POSITIVE = Interval(float, 0, None, closed="neither")
STOP_TOL = Maybe(Interval(float, 0, None, closed="left"))
TOLERANCE = POSITIVE
TOLERANCES = Tolerances(TOLERANCE)

PARAMETER_CONSTRAINTS: dict[str, Constraint] = {
    # the trial
    "lr": POSITIVE,
    "epochs": Interval(int, 1, MAX_EPOCHS, high_reason=EPOCHS_REASON),
    "init": Interval(float, None, None),  # every start θ₀ value
    # the settings
    "cost": Options({
        "mse": "J = (1/N) Σ r², the mean squared error",
        "half_mse": "J = (1/2N) Σ r², so ∇J has no factor 2",
        "sse": "J = Σ r², the sum of squared errors"}),
    "update": Options({
        "simultaneous": "every parameter from the same θ: θ ← θ − lr·∇J(θ)",
        "sequential": "m first, then b from the new m (features in order, intercept last)"}),
    "optimizer": Options({
        "gd": "plain full-batch gradient descent",
        "momentum": "heavy ball: v ← β·v − lr·∇J(θ), θ ← θ + v",
        "minibatch": "SGD: each epoch one pass over a seeded shuffle in batches",
        "line_search": "each epoch's step t by the line search, starting at lr"}),
    "line_search": Options({
        "backtracking": "Armijo: shrink t until J(θ − t·g) ≤ J(θ) − armijo·t·‖g‖²",
        "exact": "the exact minimiser t = gᵀg / gᵀHg of the quadratic cost along −g"}),
    "momentum": Interval(float, 0, 1, closed="left"),  # β = 1 never forgets: no convergence
    "batch_size": Interval(int, 1, None),
    "armijo": Interval(float, 0, 1, closed="neither"),
    "shrink": Interval(float, 0, 1, closed="neither"),
    "standardize": Boolean(),
    "tol_cost_change": STOP_TOL,
    "tol_grad": STOP_TOL,
    "tol_param": STOP_TOL,
    "divergence_factor": Interval(float, 1, None, closed="neither"),
    "history_points": Interval(int, 2, 1000),  # kept per trial and logged: bounded
    "history_dense": Interval(int, 0, 1000),
    "param_tols": TOLERANCES,
    "cost_tols": TOLERANCES,
    "record_path": Boolean(),
    "seed": Interval(int, 0, None),
}

DEFAULTS: dict[str, Any] = {
    "lr": 1e-4,
    "epochs": 1000,
    "init": 0.0,
    "max_epochs": 5_000_000,  # the iterations question's epoch cap: 1e-4 on the article's data
    "cost": "mse",
    "update": "simultaneous",
    "optimizer": "gd",
    "momentum": 0.9,
    "batch_size": 10,
    "line_search": "backtracking",
    "armijo": 1e-4,
    "shrink": 0.5,
    "standardize": False,
    "tol_cost_change": None,
    "tol_grad": None,
    "tol_param": None,
    "divergence_factor": 10.0,
    "history_points": 200,
    "history_dense": 100,
    "param_tols": (0.1, 0.01, 0.001),
    "cost_tols": (1e-2, 1e-3, 1e-4),
    "record_path": False,
    "seed": 0,
}


def constraint(name: str) -> Constraint:
    """The declared constraint of ``name`` (``max_epochs`` shares ``epochs``'s)."""
    return PARAMETER_CONSTRAINTS["epochs" if name == "max_epochs" else name]


def check(name: str, value: Any, label: str | None = None) -> Any:
    """``value`` if ``name``'s constraint allows it, else a :class:`ValueError` naming ``label``
    (default ``name``): ``<label> must be <rule>; got <value>``."""
    return constraint(name).check(label or name, value)


def check_params(params: Mapping[str, Any]) -> Mapping[str, Any]:
    """Every ``name: value`` checked by :func:`check`; ``params`` unchanged."""
    for name, value in params.items():
        check(name, value)
    return params


def check_each(name: str, values: Iterable[Any]) -> None:
    """Every value of ``values`` checked by :func:`check`; the first refused one raises."""
    rule = constraint(name)
    for value in values:
        rule.check(name, value)


def check_array(name: str, values: np.ndarray) -> None:
    """Every value of a numeric array checked against ``name``'s :class:`Interval` at numpy
    speed (a million trials are checked in milliseconds); the first refused one raises as
    :func:`check` does."""
    rule = constraint(name)
    refused = values[~rule.allows(values)]
    if refused.size:
        rule.check(name, refused.flat[0].item())
