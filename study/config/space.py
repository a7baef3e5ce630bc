"""The search space: ``search.space`` entries → :class:`SpaceSpec`, each value checked by the same
rule as the key's own field.

An entry is a constant (``lr: 1e-4``), a range (``{low, high[, log, step]}``, for numeric keys) or
a categorical list (``{values: [...]}``). Keys are ``lr`` (required), ``epochs`` (default 1000),
the start θ₀ (``init_m``/``init_b`` for one feature, ``init_w`` or ``init_w<i>`` and ``init_b``
for several; each 0 when not given) and any algorithm key but the recorded tolerances.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from study.config.constraints import MAX_NAME
from study.config.messages import Rule, did_you_mean, first_error
from study.config.sections import AlgorithmConfig, Model, declared_type
from study.core.constraints import DEFAULTS, PARAMETER_CONSTRAINTS, Interval, Maybe, show
from study.errors import ConfigError

_PARAM_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_NOT_SWEPT = ("param_tols", "cost_tols")  # they define which metrics exist
ALGORITHM_KEYS = tuple(k for k in AlgorithmConfig.model_fields if k not in _NOT_SWEPT)
_INIT_W = re.compile(r"init_w[1-9][0-9]*")
SPACE_KEYS = ("lr", "epochs", "init_m", "init_b", "init_w", *ALGORITHM_KEYS)


def _numeric(kind: type) -> set[str]:
    """The declared names whose values are numbers of ``kind`` (null allowed or not)."""
    out = set()
    for name, rule in PARAMETER_CONSTRAINTS.items():
        inner = rule.inner if isinstance(rule, Maybe) else rule
        if isinstance(inner, Interval) and inner.kind is kind and name != "init":
            out.add(name)
    return out


_INT_RANGES = _numeric(int)
_FLOAT_RANGES = _numeric(float)
_RANGE_KEYS = ("low", "high", "log", "step")
SPACE_DEFAULTS = {"epochs": DEFAULTS["epochs"]}  # and every init_* not given: DEFAULTS["init"]
_VALUES = {name: TypeAdapter(declared_type(name))  # the keys that are not algorithm settings
           for name in ("lr", "epochs", "init")}


class SpaceSpec(Model):
    """One search-space entry: ``const`` (``value``), ``range`` (``low``, ``high``, ``log``,
    ``step``) or ``values`` (a categorical list)."""

    kind: Literal["const", "range", "values"]
    value: Any = None
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: int | float | None = None
    values: tuple[Any, ...] | None = None

    def to_raw(self) -> Any:
        """The entry as a config writes it."""
        if self.kind == "const":
            return self.value
        if self.kind == "values":
            return {"values": list(self.values or ())}
        raw = {"low": self.low, "high": self.high, "log": self.log}
        return raw if self.step is None else {**raw, "step": self.step}


def parse_space(raw: Any) -> dict[str, SpaceSpec]:
    """A raw ``search.space`` mapping → name → :class:`SpaceSpec` (raises :class:`Rule`)."""
    if not isinstance(raw, Mapping):
        raise Rule((), f"must be a mapping of parameter names to entries; got {show(raw)}")
    keys = list(raw)
    for key in keys:
        _check_space_key(key, keys)
    if "lr" not in raw:
        raise Rule(("lr",), "is required (the learning rate: a constant, a range or values)")
    space = {key: _parse_entry(key, entry) for key, entry in raw.items()}
    for key, default in SPACE_DEFAULTS.items():
        space.setdefault(key, SpaceSpec(kind="const", value=default))
    return space


def init_space(space: Mapping[str, SpaceSpec], d: int, label: str) -> dict[str, SpaceSpec]:
    """The start θ₀'s entries for ``d`` features: ``init_m, init_b`` (d = 1) or
    ``init_w1 … init_wd, init_b``; ``init_w`` fills every weight, anything missing is 0.
    ``label`` names the config in a :class:`ConfigError`."""
    zero = SpaceSpec(kind="const", value=DEFAULTS["init"])
    weights = [k for k in space if k == "init_w" or _INIT_W.fullmatch(k)]
    if d == 1 and weights:
        raise ConfigError(f"{label}: search.space.{weights[0]} is for several "
                          "features, but the data has one: use init_m and init_b")
    if d == 1:
        return {"init_m": space.get("init_m", zero), "init_b": space.get("init_b", zero)}
    if "init_m" in space:
        raise ConfigError(f"{label}: search.space.init_m is for one feature, but the "
                          f"data has {d}: use init_w or init_w1 … init_w{d}")
    for key in weights:
        if key != "init_w" and int(key[6:]) > d:
            raise ConfigError(f"{label}: search.space.{key} is beyond the data's {d} features")
    out = {f"init_w{j}": space.get(f"init_w{j}", space.get("init_w", zero))
           for j in range(1, d + 1)}
    out["init_b"] = space.get("init_b", zero)
    return out


def _check_space_key(key: Any, keys: Sequence) -> None:
    if isinstance(key, str) and len(key) > MAX_NAME:
        raise Rule((), f"has a key of {len(key)} characters ({key[:20]!r}…): a parameter name "
                       f"has at most {MAX_NAME}")
    if not isinstance(key, str) or not _PARAM_NAME.fullmatch(key):
        raise Rule((), f"key {show(key)} is not a valid parameter name: use letters, digits, "
                       "'_', '.' and '-'")
    if key in _NOT_SWEPT:
        raise Rule((key,), "cannot be swept (it sets which tolerances are recorded); set it "
                           "under algorithm")
    if key not in SPACE_KEYS and not _INIT_W.fullmatch(key):
        raise Rule((key,), did_you_mean(key, [*SPACE_KEYS, "init_w1"]), unknown=True)
    weights = [k for k in keys if isinstance(k, str) and _INIT_W.fullmatch(k)]
    if key == "init_m" and ("init_w" in keys or weights):
        raise Rule((key,), "is for one feature and init_w/init_w<i> for several: use one kind")
    if key == "init_w" and weights:
        raise Rule((key,), f"sets every weight, so it cannot stand beside {weights[0]}: "
                           "use one or the other")


def _parse_entry(key: str, raw: Any) -> SpaceSpec:
    if isinstance(raw, Mapping) and "values" in raw:
        return _parse_values(key, raw)
    if isinstance(raw, Mapping):
        return _parse_range(key, raw)
    if isinstance(raw, list | tuple):
        raise Rule((key,), "must be a constant, a range {low, high} or {values: [...]}; got a "
                           f"list (write {{values: {show(list(raw))}}} to sweep it)")
    return SpaceSpec(kind="const", value=_check_value(key, raw, (key,)))


def _parse_values(key: str, raw: Mapping) -> SpaceSpec:
    for k in raw:
        if k != "values":
            raise Rule((key, k), "cannot stand beside values (an entry is a constant, a range "
                                 "or values)")
    values = raw["values"]
    if not isinstance(values, list | tuple):
        raise Rule((key, "values"), f"must be a list; got {show(values)}")
    if not values:
        raise Rule((key, "values"), "must not be empty")
    checked = [_check_value(key, v, (key, "values", i)) for i, v in enumerate(values)]
    for i, v in enumerate(checked):
        if any(type(u) is type(v) and u == v for u in checked[:i]):
            raise Rule((key, "values", i), f"repeats an earlier value; got {show(v)}")
    return SpaceSpec(kind="values", values=tuple(checked))


def _parse_range(key: str, raw: Mapping) -> SpaceSpec:
    for k in raw:
        if k not in _RANGE_KEYS:
            raise Rule((key, k), did_you_mean(str(k), [*_RANGE_KEYS, "values"]), unknown=True)
    if key not in _INT_RANGES | _FLOAT_RANGES and not key.startswith("init_"):
        raise Rule((key,), f"cannot be a range: give a constant or {{values: [...]}}; got "
                           f"{show(dict(raw))}")
    for bound in ("low", "high"):
        if bound not in raw:
            raise Rule((key, bound), "is required in a range {low, high[, log, step]}")
    low = _check_bound(key, raw["low"], (key, "low"))
    high = _check_bound(key, raw["high"], (key, "high"))
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise Rule((key, "log"), f"must be true or false; got {show(log)}")
    if low > high:
        raise Rule((key, "low"), f"must be <= high ({show(raw['high'])}); got {show(raw['low'])}")
    if log and low <= 0:
        raise Rule((key, "low"), f"must be > 0 on a log range; got {show(raw['low'])}")
    step = raw.get("step")
    if step is not None:
        if log:
            raise Rule((key, "step"), "is only allowed on a linear range (log: false)")
        integer = key in _INT_RANGES
        if (isinstance(step, bool) or not isinstance(step, int if integer else int | float)
                or not math.isfinite(step) or step <= 0):
            kind = "a positive integer" if integer else "a positive number"
            raise Rule((key, "step"), f"must be {kind}; got {show(step)}")
    return SpaceSpec(kind="range", low=low, high=high, log=log, step=step)


def _check_bound(key: str, value: Any, sub: tuple) -> int | float:
    if value is None:
        raise Rule(sub, "must be a number on a range; got null")
    return _check_value(key, value, sub)


def _check_value(key: str, value: Any, sub: tuple) -> Any:
    """One value of a space entry, validated by the same rule as the key's own field."""
    if key in ALGORITHM_KEYS:
        try:
            return getattr(AlgorithmConfig.model_validate({key: value}), key)
        except ValidationError as exc:
            loc, text, _ = first_error(exc, AlgorithmConfig)
            raise Rule(sub + tuple(loc[1:]), text) from None
    try:
        return _VALUES["init" if key.startswith("init_") else key].validate_python(value)
    except ValidationError as exc:
        raise Rule(sub, first_error(exc)[1]) from None
