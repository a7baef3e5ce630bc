"""A study's YAML config → validated, frozen config objects; the one place defaults live.

Reading (``_Loader``, a PyYAML SafeLoader with YAML 1.2 scalars):

- ``1e-5``, ``1E5``, ``.5e-3`` are floats (PyYAML alone reads them as strings);
- ``010`` is the integer 10 (not octal 8); ``0o10`` and ``0x1f`` are octal and hex;
- only ``true``/``false`` are booleans: ``yes``/``no``/``on``/``off`` stay text, so a boolean key
  given ``yes`` is refused with "must be true or false" (YAML 1.1's yes/no booleans surprise people
  in the other direction: a sampler named ``off`` would have become ``False``);
- dates stay text; a duplicate key, a ``!!python/…`` tag, a tab used as indentation or an unclosed
  bracket is an error shown as ``file:line:col: message``.

Validation (pydantic v2, ``extra="forbid"``, frozen): every error is one
:class:`study.errors.ConfigError` line naming the file, the dotted key, the rule and the bad value,
e.g. ``configs/lr.yaml: search.space.lr.low must be > 0; got -1e-05``. Scalars are strict: ints must
be ints (not ``10.5``, ``"10"`` or ``true``), a float accepts an int, bools are not numbers, and
``.nan``/``.inf`` are refused everywhere.

Paths: ``data.path`` is relative to the config file's folder (inputs travel with the config);
``tracking.*`` and ``report.dir`` are relative to the working directory (outputs land where the
command runs). Every default is listed by :func:`describe_defaults` (and :data:`DEFAULTS`); the
algorithm defaults are :class:`study.engine.Settings`'s own. A space entry not given: ``epochs`` is
1000, each start (``init_*``) is 0.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import math
import re
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from study.engine import COSTS, LINE_SEARCHES, OPTIMIZERS, UPDATES, Settings
from study.errors import ConfigError

# ── YAML ────────────────────────────────────────────────────────────────────────────────────

_INT, _FLOAT, _BOOL = (f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool"))


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars and no duplicate keys (see module doc)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: set = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:
                    continue  # unhashable: the base class reports it
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _construct_int(loader: _Loader, node: yaml.Node) -> int:
    text = loader.construct_scalar(node).replace("_", "")
    try:
        if re.fullmatch(r"0o[0-7]+", text):
            return int(text[2:], 8)
        if re.fullmatch(r"0x[0-9a-fA-F]+", text):
            return int(text[2:], 16)
        return int(text, 10)
    except ValueError:
        raise yaml.constructor.ConstructorError(None, None, f"not an integer: {text!r}",
                                                node.start_mark) from None


def _construct_float(loader: _Loader, node: yaml.Node) -> float:
    text = loader.construct_scalar(node)
    special = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}
    if text.lower() in special:
        return special[text.lower()]
    try:
        return float(text)
    except ValueError:
        raise yaml.constructor.ConstructorError(None, None, f"not a number: {text!r}",
                                                node.start_mark) from None


def _construct_bool(loader: _Loader, node: yaml.Node) -> bool:
    text = loader.construct_scalar(node)
    if text.lower() not in ("true", "false"):
        raise yaml.constructor.ConstructorError(
            None, None, f"only true and false are booleans; got {text!r}", node.start_mark)
    return text.lower() == "true"


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers
            if tag not in (_INT, _FLOAT, _BOOL, "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))
_Loader.add_implicit_resolver(_INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
                              list("-+0123456789"))
_Loader.add_implicit_resolver(
    _FLOAT, re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                       r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+.0123456789"))
_Loader.add_constructor(_INT, _construct_int)
_Loader.add_constructor(_FLOAT, _construct_float)
_Loader.add_constructor(_BOOL, _construct_bool)


class _Dumper(yaml.SafeDumper):
    """SafeDumper that quotes any text the YAML 1.2 reading above would take for a number or a
    boolean (PyYAML alone writes the string '1e-3' bare, which reads back as a float)."""


_Dumper.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers


def parse_yaml(text: str, source: str) -> Any:
    """YAML text → Python objects with :class:`_Loader`; errors as ``source:line:col: message``."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = exc.problem or exc.context or "malformed YAML"
        if "'\\t'" in problem:
            problem += " (indent with spaces, not tabs)"
        elif "python/" in problem:
            problem += " (only plain YAML is read: no !!python tags)"
        elif exc.context and exc.problem:
            problem = f"{problem} ({exc.context})"
        raise ConfigError(f"{where}: {_one_line(problem)}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: {_one_line(str(exc))}") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


# ── values and messages ─────────────────────────────────────────────────────────────────────

Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Bool = Annotated[bool, Strict()]
Text = Annotated[str, Strict()]
MAX_TEXT = 6000  # longest MLflow param value
MAX_NAME = 250  # longest MLflow param / metric key
_PARAM_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
NEDRICH_HINT = ("the article's data lives at ../shared/data/nedrich/data.csv relative to the "
                "project root")


def _show(value: Any) -> str:
    """A bad value as a message shows it: YAML-like, short."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else f"a {len(value)}-character string"
    if isinstance(value, float | int):
        return repr(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _num(x: Any) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() and abs(x) < 1e15 else repr(x)


class _Rule(Exception):
    """A rule broken at ``sub`` (a key path relative to the validated field)."""

    def __init__(self, sub: tuple, msg: str, unknown: bool = False) -> None:
        super().__init__(msg)
        self.sub, self.msg, self.unknown = sub, msg, unknown

    def pydantic(self) -> PydanticCustomError:
        kind = "config_unknown" if self.unknown else "config_rule"
        return PydanticCustomError(kind, "{msg}", {"msg": self.msg, "sub": self.sub})


def _did_you_mean(key: str, allowed: Sequence[str]) -> str:
    match = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    match = match or [a for a in allowed if len(key) >= 3 and a.startswith(key)][:1]
    if match:
        return f"(did you mean {match[0]!r}?)"
    return f"(allowed: {', '.join(allowed)})"


def _rule_text(err: Mapping) -> str:
    """A pydantic error → 'must …; got …' (without the key)."""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    got = f"; got {_show(value)}"
    if kind in ("config_rule", "config_unknown"):
        return ctx["msg"]
    if kind == "missing":
        return "is required"
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return "must be an integer" + got
    if kind in ("float_type", "float_parsing"):
        quoted = isinstance(value, str) and re.fullmatch(r"\s*[-+]?[\d.]+(e[-+]?\d+)?\s*",
                                                         value, re.I)
        return "must be a number" + got + (" (a quoted number is text)" if quoted else "")
    if kind in ("bool_type", "bool_parsing"):
        yaml11 = isinstance(value, str) and value.lower() in ("yes", "no", "on", "off", "y", "n")
        return "must be true or false" + got + (" (only true/false are booleans)" if yaml11
                                                else "")
    if kind == "string_type":
        return "must be text" + got
    if kind == "finite_number":
        return "must be a finite number" + got
    ops = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="),
           "less_than": ("lt", "<"), "less_than_equal": ("le", "<=")}
    if kind in ops:
        key, op = ops[kind]
        return f"must be {op} {_num(ctx[key])}" + got
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}" + got
    if kind in ("too_short", "string_too_short"):
        return f"must have at least {ctx.get('min_length', 1)} item(s)" + got
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters" + got
    if kind in ("list_type", "tuple_type"):
        return "must be a list" + got
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a mapping of keys to values" + got
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return err["msg"] + got


def _dotted(loc: Sequence) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _first_error(exc: ValidationError, prefix: tuple = ()) -> tuple[tuple, str, bool]:
    """(key path, rule text, unknown?) of the error to show first: typos explain the rest."""
    errors = exc.errors()
    errors.sort(key=lambda e: e["type"] not in ("extra_forbidden", "config_unknown"))
    err = errors[0]
    loc = prefix + tuple(err["loc"]) + tuple((err.get("ctx") or {}).get("sub", ()))
    if err["type"] == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = list(model.model_fields) if model else []
        return loc, _did_you_mean(str(loc[-1]), allowed), True
    return loc, _rule_text(err), err["type"] == "config_unknown"


def _model_at(loc: Sequence) -> type[BaseModel] | None:
    model: type[BaseModel] | None = StudyConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model else None
        model = _find_model(field.annotation) if field else None
    return model


def _find_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _find_model(arg)
        if found:
            return found
    return None


# ── sections ────────────────────────────────────────────────────────────────────────────────


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_DEFAULT = Settings()
Column = Annotated[str, Strict(), Field(min_length=1)] | Annotated[int, Strict(), Field(ge=0)]
Tolerance = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
StopTol = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)] | None


class DataConfig(_Model):
    """Where the data is and which columns to fit."""

    path: Path = Field(description="CSV file, relative to the config file's folder")
    x: tuple[Column, ...] | None = Field(None, description="feature columns: names or 0-based "
                                         "positions; null = every column but y")
    y: Column | None = Field(None, description="target column: name or position; null = last")
    _sha256: str = PrivateAttr("")

    @field_validator("path", mode="before")
    @classmethod
    def _resolve(cls, value: Any, info: ValidationInfo) -> Path:
        if not isinstance(value, str) or not value:
            raise _Rule((), f"must be a file path; got {_show(value)}").pydantic()
        base = Path((info.context or {}).get("base_dir") or Path.cwd())
        path = (base / Path(value).expanduser()).resolve()
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "no such file"
            raise _Rule((), f"must name an existing CSV file; got {value!r} ({what}: {path}); "
                            + NEDRICH_HINT).pydantic()
        return path

    @field_validator("x", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str | int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _digest(self) -> DataConfig:
        from study.data import file_digest

        try:
            self._sha256 = file_digest(self.path)  # the data as it was when the config was read
        except OSError as exc:
            raise _Rule(("path",), f"cannot be read: {exc.strerror}; got {str(self.path)!r}"
                        ).pydantic() from None
        return self

    @property
    def sha256(self) -> str:
        """sha256 of the data file's bytes when the config was validated."""
        return self._sha256


class AlgorithmConfig(_Model):
    """Every engine setting; defaults are :class:`study.engine.Settings`'s."""

    cost: Literal[COSTS] = Field(_DEFAULT.cost, description="mse | half_mse | sse")
    update: Literal[tuple(UPDATES)] = Field(_DEFAULT.update, description="simultaneous | "
                                            "sequential (m first, then b from the new m)")
    optimizer: Literal[tuple(OPTIMIZERS)] = Field(_DEFAULT.optimizer,
                                                  description="gd | momentum | minibatch | "
                                                  "line_search")
    momentum: Annotated[float, Strict(), Field(ge=0, lt=1, allow_inf_nan=False)] = Field(
        _DEFAULT.momentum, description="heavy-ball beta, 0 <= beta < 1")
    batch_size: Annotated[int, Strict(), Field(ge=1)] = Field(_DEFAULT.batch_size,
                                                              description="minibatch size")
    line_search: Literal[tuple(LINE_SEARCHES)] = Field(_DEFAULT.line_search,
                                                       description="backtracking | exact")
    armijo: Annotated[float, Strict(), Field(gt=0, lt=1, allow_inf_nan=False)] = Field(
        _DEFAULT.armijo, description="Armijo sufficient-decrease constant, in (0, 1)")
    shrink: Annotated[float, Strict(), Field(gt=0, lt=1, allow_inf_nan=False)] = Field(
        _DEFAULT.shrink, description="backtracking step factor, in (0, 1)")
    standardize: Bool = Field(_DEFAULT.standardize, description="run GD on z-scored features")
    tol_cost_change: StopTol = Field(_DEFAULT.tol_cost_change,
                                     description="stop when |ΔJ| <= this (null: never)")
    tol_grad: StopTol = Field(_DEFAULT.tol_grad, description="stop when ‖∇J‖ <= this")
    tol_param: StopTol = Field(_DEFAULT.tol_param, description="stop when ‖θ − θ*‖ <= this")
    divergence_factor: Annotated[float, Strict(), Field(gt=1, allow_inf_nan=False)] = Field(
        _DEFAULT.divergence_factor, description="diverged when J > factor × initial J")
    history_points: Annotated[int, Strict(), Field(ge=2, le=1000)] = Field(
        _DEFAULT.history_points, description="cost-curve points kept per trial")
    history_dense: Annotated[int, Strict(), Field(ge=0, le=1000)] = Field(
        _DEFAULT.history_dense, description="first epochs kept one by one")
    param_tols: tuple[Tolerance, ...] = Field(_DEFAULT.param_tols, min_length=1,
                                              description="first epoch with ‖θ − θ*‖ <= t kept")
    cost_tols: tuple[Tolerance, ...] = Field(_DEFAULT.cost_tols, min_length=1,
                                             description="first epoch with J − J* <= t kept")
    record_path: Bool = Field(_DEFAULT.record_path, description="keep θ at history points")
    seed: Annotated[int, Strict(), Field(ge=0)] = Field(_DEFAULT.seed,
                                                        description="minibatch shuffling seed")

    @field_validator("param_tols", "cost_tols")
    @classmethod
    def _distinct(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if len(set(value)) != len(value):
            raise _Rule((), f"must not repeat a tolerance; got {list(value)}").pydantic()
        return value


METRICS = ("final_cost", "dist_to_ols", "cost_gap", "rel_cost_gap", "epochs_to_param_tol",
           "epochs_to_cost_tol")


class Objective(_Model):
    """One value Optuna optimizes."""

    metric: Literal[METRICS] = Field(description=" | ".join(METRICS))
    direction: Literal["minimize", "maximize"] = Field("minimize", description="minimize | "
                                                       "maximize")
    tol: Tolerance | None = Field(None, description="for epochs_to_*: one of algorithm."
                                  "param_tols / cost_tols")

    @model_validator(mode="after")
    def _tol_fits_metric(self) -> Objective:
        if self.metric.startswith("epochs_to_") and self.tol is None:
            raise _Rule(("tol",), f"is required for metric {self.metric}").pydantic()
        if not self.metric.startswith("epochs_to_") and self.tol is not None:
            raise _Rule(("tol",), f"is only for epochs_to_* metrics; got {_show(self.tol)} "
                                  f"with metric {self.metric}").pydantic()
        return self

    @property
    def name(self) -> str:
        """``dist_to_ols``, or ``epochs_to_param_tol_0.01`` for a metric with a tolerance."""
        return self.metric if self.tol is None else f"{self.metric}_{self.tol!r}"


# ── search space ────────────────────────────────────────────────────────────────────────────

_NOT_SWEPT = ("param_tols", "cost_tols")  # they define which metrics exist
ALGORITHM_KEYS = tuple(k for k in AlgorithmConfig.model_fields if k not in _NOT_SWEPT)
_INIT_W = re.compile(r"init_w[1-9][0-9]*")
SPACE_KEYS = ("lr", "epochs", "init_m", "init_b", "init_w", *ALGORITHM_KEYS)
_INT_RANGES = {"epochs", "batch_size", "history_points", "history_dense", "seed"}
_FLOAT_RANGES = {"lr", "momentum", "armijo", "shrink", "divergence_factor", "tol_cost_change",
                 "tol_grad", "tol_param"}
SPACE_DEFAULTS = {"epochs": 1000}  # and every init_* not given: 0
_VALUE_TYPES = {
    "lr": Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)],
    "epochs": Annotated[int, Strict(), Field(ge=1)],
    "init": Float,
}


class SpaceSpec(_Model):
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


def _check_value(key: str, value: Any, sub: tuple) -> Any:
    """One value of a space entry, validated by the same rule as the key's own field."""
    if key in ALGORITHM_KEYS:
        try:
            return getattr(AlgorithmConfig.model_validate({key: value}), key)
        except ValidationError as exc:
            loc, text, _ = _first_error(exc)
            raise _Rule(sub + tuple(loc[1:]), text) from None
    from pydantic import TypeAdapter

    adapter = TypeAdapter(_VALUE_TYPES["init" if key.startswith("init_") else key])
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise _Rule(sub, _first_error(exc)[1]) from None


def _check_bound(key: str, value: Any, sub: tuple) -> int | float:
    if value is None:
        raise _Rule(sub, "must be a number on a range; got null")
    return _check_value(key, value, sub)


def _parse_range(key: str, raw: Mapping) -> SpaceSpec:
    for k in raw:
        if k not in ("low", "high", "log", "step"):
            raise _Rule((key, k), _did_you_mean(str(k), ["low", "high", "log", "step", "values"]),
                        unknown=True)
    if key not in _INT_RANGES | _FLOAT_RANGES and not key.startswith("init_"):
        raise _Rule((key,), f"cannot be a range: give a constant or {{values: [...]}}; got "
                            f"{_show(dict(raw))}")
    for bound in ("low", "high"):
        if bound not in raw:
            raise _Rule((key, bound), "is required in a range {low, high[, log, step]}")
    low = _check_bound(key, raw["low"], (key, "low"))
    high = _check_bound(key, raw["high"], (key, "high"))
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise _Rule((key, "log"), f"must be true or false; got {_show(log)}")
    if low > high:
        raise _Rule((key, "low"), f"must be <= high ({_show(raw['high'])}); got "
                                  f"{_show(raw['low'])}")
    if log and low <= 0:
        raise _Rule((key, "low"), f"must be > 0 on a log range; got {_show(raw['low'])}")
    step = raw.get("step")
    if step is not None:
        if log:
            raise _Rule((key, "step"), "is only allowed on a linear range (log: false)")
        integer = key in _INT_RANGES
        if (isinstance(step, bool) or not isinstance(step, int if integer else int | float)
                or not math.isfinite(step) or step <= 0):
            kind = "a positive integer" if integer else "a positive number"
            raise _Rule((key, "step"), f"must be {kind}; got {_show(step)}")
    return SpaceSpec(kind="range", low=low, high=high, log=log, step=step)


def _parse_entry(key: str, raw: Any) -> SpaceSpec:
    if isinstance(raw, Mapping) and "values" in raw:
        for k in raw:
            if k != "values":
                raise _Rule((key, k), "cannot stand beside values (an entry is a constant, "
                                      "a range or values)", unknown=False)
        values = raw["values"]
        if not isinstance(values, list | tuple):
            raise _Rule((key, "values"), f"must be a list; got {_show(values)}")
        if not values:
            raise _Rule((key, "values"), "must not be empty")
        checked = [_check_value(key, v, (key, "values", i)) for i, v in enumerate(values)]
        for i, v in enumerate(checked):
            if any(type(u) is type(v) and u == v for u in checked[:i]):
                raise _Rule((key, "values", i), f"repeats an earlier value; got {_show(v)}")
        return SpaceSpec(kind="values", values=tuple(checked))
    if isinstance(raw, Mapping):
        return _parse_range(key, raw)
    if isinstance(raw, list | tuple):
        raise _Rule((key,), "must be a constant, a range {low, high} or {values: [...]}; got a "
                            f"list (write {{values: {_show(list(raw))}}} to sweep it)")
    return SpaceSpec(kind="const", value=_check_value(key, raw, (key,)))


def _check_space_key(key: Any, keys: Sequence) -> None:
    if isinstance(key, str) and len(key) > MAX_NAME:
        raise _Rule((), f"has a key of {len(key)} characters ({key[:20]!r}…): a parameter name "
                        f"has at most {MAX_NAME}")
    if not isinstance(key, str) or not _PARAM_NAME.fullmatch(key):
        raise _Rule((), f"key {_show(key)} is not a valid parameter name: use letters, digits, "
                        "'_', '.' and '-'")
    if key in _NOT_SWEPT:
        raise _Rule((key,), "cannot be swept (it sets which tolerances are recorded); set it "
                            "under algorithm")
    if key not in SPACE_KEYS and not _INIT_W.fullmatch(key):
        raise _Rule((key,), _did_you_mean(key, [*SPACE_KEYS, "init_w1"]), unknown=True)
    weights = [k for k in keys if isinstance(k, str) and _INIT_W.fullmatch(k)]
    if key == "init_m" and ("init_w" in keys or weights):
        raise _Rule((key,), "is for one feature and init_w/init_w<i> for several: use one kind")
    if key == "init_w" and weights:
        raise _Rule((key,), f"sets every weight, so it cannot stand beside {weights[0]}: "
                            "use one or the other")


def parse_space(raw: Any) -> dict[str, SpaceSpec]:
    """A raw ``search.space`` mapping → name → :class:`SpaceSpec` (raises ``_Rule``)."""
    if not isinstance(raw, Mapping):
        raise _Rule((), f"must be a mapping of parameter names to entries; got {_show(raw)}")
    keys = list(raw)
    for key in keys:
        _check_space_key(key, keys)
    if "lr" not in raw:
        raise _Rule(("lr",), "is required (the learning rate: a constant, a range or values)")
    space = {key: _parse_entry(key, entry) for key, entry in raw.items()}
    for key, default in SPACE_DEFAULTS.items():
        space.setdefault(key, SpaceSpec(kind="const", value=default))
    return space


# ── the study ───────────────────────────────────────────────────────────────────────────────

SAMPLERS = ("grid", "random", "qmc", "tpe", "nsga2")


class SearchConfig(_Model):
    """How Optuna searches: sampler, budget, objectives, space."""

    sampler: Literal[SAMPLERS] = Field("tpe", description=" | ".join(SAMPLERS))
    seed: Annotated[int, Strict(), Field(ge=0)] = Field(0, description="sampler seed")
    n_trials: Annotated[int, Strict(), Field(ge=1)] = Field(
        100, description="total complete trials wanted (a resume tops up to it)")
    batch_size: Annotated[int, Strict(), Field(ge=1)] = Field(
        32, description="trials asked from Optuna and run as one engine batch")
    objectives: tuple[Objective, ...] = Field(
        (Objective(metric="dist_to_ols"),), min_length=1,
        description="one or more {metric, direction, tol}")
    space: dict[str, SpaceSpec] = Field(description="name → constant, {low, high, log, step} "
                                        "or {values: [...]}; lr required")

    @field_validator("space", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> dict[str, SpaceSpec]:
        try:
            return parse_space(value)
        except _Rule as rule:
            raise rule.pydantic() from None

    @model_validator(mode="after")
    def _cross(self) -> SearchConfig:
        names = [o.name for o in self.objectives]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise _Rule(("objectives", i), f"repeats objective {name}").pydantic()
        if self.sampler == "grid":
            for key, spec in self.space.items():
                if spec.kind == "range" and spec.step is None:
                    raise _Rule(("space", key), "the grid sampler needs {values: [...]}, a "
                                "constant or a range with step; got a continuous range "
                                f"{_show(spec.to_raw())}").pydantic()
        return self

    @property
    def swept(self) -> list[str]:
        """Names of the entries that vary (ranges and values lists of 2+ items)."""
        return [k for k, s in self.space.items()
                if s.kind == "range" or (s.kind == "values" and len(s.values or ()) > 1)]


class TrackingConfig(_Model):
    """Where runs and trials are stored (relative paths: to the working directory)."""

    mlflow_uri: Text = Field(description="MLflow tracking URI; default sqlite:///<cwd>/mlflow.db")
    storage: Text = Field(description="Optuna storage: a journal file path (default "
                          "<cwd>/optuna.journal) or a URL (sqlite:///…, postgresql://…)")

    @field_validator("mlflow_uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", value):
            raise _Rule((), "must be a URI such as sqlite:///mlflow.db or http://host:5000; got "
                            f"{_show(value)}").pydantic()
        return value


class ReportConfig(_Model):
    """Where the report goes and what counts as converged."""

    dir: Path = Field(description="report folder; default <cwd>/reports/<name>/")
    dist_tol: Tolerance = Field(0.01, description="converged when dist_to_ols <= this")


def _absolute_sqlite(uri: str, cwd: Path) -> str:
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix):].startswith(("/", ":memory:")) \
            and len(uri) > len(prefix):
        return prefix + str(cwd / uri[len(prefix):])
    return uri


def _fill_outputs(data: dict, cwd: Path) -> dict:
    """Defaults of the output locations, made absolute against the working directory."""
    for section in ("algorithm", "tracking", "report"):
        if data.get(section) is None:
            data[section] = {}
    tracking = data["tracking"]
    if isinstance(tracking, Mapping):
        tracking = data["tracking"] = dict(tracking)
        uri = tracking.get("mlflow_uri")
        if uri is None:
            tracking["mlflow_uri"] = f"sqlite:///{cwd / 'mlflow.db'}"
        elif isinstance(uri, str):
            tracking["mlflow_uri"] = _absolute_sqlite(uri, cwd)
        storage = tracking.get("storage")
        if storage is None:
            tracking["storage"] = str(cwd / "optuna.journal")
        elif isinstance(storage, str) and storage:
            tracking["storage"] = (_absolute_sqlite(storage, cwd) if "://" in storage
                                   else str(cwd / Path(storage).expanduser()))
    report = data["report"]
    if isinstance(report, Mapping):
        report = data["report"] = dict(report)
        name = data.get("name")
        folder = report.get("dir")
        if folder is None:
            safe = isinstance(name, str) and _STUDY_NAME.fullmatch(name)
            report["dir"] = cwd / "reports" / (name if safe else "study")
        elif isinstance(folder, str) and folder:
            report["dir"] = cwd / Path(folder).expanduser()
    return data


class StudyConfig(_Model):
    """A whole study, validated; see the module docstring and :func:`describe_defaults`."""

    name: Text = Field(description="MLflow experiment and Optuna study name")
    data: DataConfig
    algorithm: AlgorithmConfig = Field(AlgorithmConfig(), description="engine settings")
    search: SearchConfig
    tracking: TrackingConfig
    report: ReportConfig
    _source: Path | None = PrivateAttr(None)
    _label: str = PrivateAttr("<dict>")

    @model_validator(mode="before")
    @classmethod
    def _outputs(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return data
        return _fill_outputs(dict(data), Path((info.context or {}).get("cwd") or Path.cwd()))

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not _STUDY_NAME.fullmatch(value):
            raise _Rule((), "must be 1-100 letters, digits, '_', '-' or '.', starting with a "
                            f"letter or digit; got {_show(value)}").pydantic()
        return value

    @model_validator(mode="after")
    def _tolerances_recorded(self) -> StudyConfig:
        for i, obj in enumerate(self.search.objectives):
            if obj.tol is None:
                continue
            which = "param_tols" if obj.metric == "epochs_to_param_tol" else "cost_tols"
            allowed = getattr(self.algorithm, which)
            if obj.tol not in allowed:
                raise _Rule(("search", "objectives", i, "tol"),
                            f"must be one of algorithm.{which} "
                            f"({', '.join(_num(t) for t in allowed)}); got {_show(obj.tol)}"
                            ).pydantic()
        return self

    # -- what others read -----------------------------------------------------------------

    @property
    def source(self) -> Path | None:
        """The YAML file this config was read from (absolute), or None."""
        return self._source

    def settings(self) -> Settings:
        """The engine settings before any swept algorithm key is applied."""
        return Settings(**{f.name: getattr(self.algorithm, f.name)
                           for f in dataclasses.fields(Settings)})

    def init_space(self, d: int) -> dict[str, SpaceSpec]:
        """The start θ₀'s entries for ``d`` features: ``init_m, init_b`` (d = 1) or
        ``init_w1 … init_wd, init_b``; ``init_w`` fills every weight, anything missing is 0."""
        space, zero = self.search.space, SpaceSpec(kind="const", value=0.0)
        weights = [k for k in space if k == "init_w" or _INIT_W.fullmatch(k)]
        if d == 1 and weights:
            raise ConfigError(f"{self._label}: search.space.{weights[0]} is for several "
                              "features, but the data has one: use init_m and init_b")
        if d == 1:
            return {"init_m": space.get("init_m", zero), "init_b": space.get("init_b", zero)}
        if "init_m" in space:
            raise ConfigError(f"{self._label}: search.space.init_m is for one feature, but the "
                              f"data has {d}: use init_w or init_w1 … init_w{d}")
        for key in weights:
            if key != "init_w" and int(key[6:]) > d:
                raise ConfigError(f"{self._label}: search.space.{key} is beyond the data's "
                                  f"{d} features")
        out = {f"init_w{j}": space.get(f"init_w{j}", space.get("init_w", zero))
               for j in range(1, d + 1)}
        out["init_b"] = space.get("init_b", zero)
        return out

    def resolved(self) -> dict:
        """Plain JSON/YAML-serialisable dict with every default filled in."""
        out = self.model_dump(mode="json", exclude={"search": {"space", "objectives"}})
        out["search"]["objectives"] = [
            {"metric": o.metric, "direction": o.direction, **({"tol": o.tol} if o.tol else {})}
            for o in self.search.objectives]
        out["search"]["space"] = {k: s.to_raw() for k, s in self.search.space.items()}
        return out

    def to_yaml(self) -> str:
        """The resolved config as YAML that :func:`load_config` reads back to the same study."""
        return yaml.dump(self.resolved(), Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                         default_flow_style=None, width=100)

    def study_fingerprint(self) -> dict:
        """What defines the study's trials: data (path, sha256, columns), algorithm, and the
        search's sampler, seed, objectives and space (not n_trials, batch_size, tracking or
        report, which may change on a resume)."""
        r = self.resolved()
        return {
            "data": {**r["data"], "sha256": self.data.sha256},
            "algorithm": r["algorithm"],
            "search": {k: r["search"][k] for k in ("sampler", "seed", "objectives", "space")},
        }

    def hash(self) -> str:
        """sha256 of :meth:`study_fingerprint` as canonical JSON."""
        text = json.dumps(self.study_fingerprint(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @classmethod
    def from_mapping(cls, d: Mapping, source: str = "<dict>", base_dir: Path | None = None,
                     overrides: Sequence[str] = ()) -> StudyConfig:
        """Validate a mapping (``data.path`` relative to ``base_dir``, default the working
        directory) after applying ``dotted.key=value`` overrides; raises :class:`ConfigError`."""
        raw = copy.deepcopy(dict(d)) if isinstance(d, Mapping) else d
        return _validate(raw, source, Path.cwd() if base_dir is None else Path(base_dir),
                         overrides)


def fingerprint_changes(old: Mapping, new: Mapping, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two :meth:`StudyConfig.study_fingerprint`s."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b, dotted = old.get(key), new.get(key), f"{prefix}{key}"
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += fingerprint_changes(a, b, dotted + ".")
        elif a != b:
            out.append(dotted)
    return out


# ── loading ─────────────────────────────────────────────────────────────────────────────────


def _check_raw(obj: Any, loc: tuple = ()) -> None:
    """Rules of the raw tree: text keys; no text longer than an MLflow param value."""
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise _Rule(loc, f"keys must be text; got {_show(key)}")
            _check_raw(value, (*loc, key))
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            _check_raw(value, (*loc, i))
    elif isinstance(obj, str) and len(obj) > MAX_TEXT:
        raise _Rule(loc, f"must be at most {MAX_TEXT} characters; got a {len(obj)}-character "
                         "string")


def _override_path(text: str) -> tuple:
    key = text.partition("=")[0].strip()
    return tuple(int(p) if p.isdigit() else p for p in key.split("."))


def _apply_override(raw: dict, text: str, source: str) -> None:
    key, sep, value = text.partition("=")
    key = key.strip()
    where = f"{source}: --set {text}"
    if not sep or not key or any(not p for p in key.split(".")):
        raise ConfigError(f"{where}: expected KEY=VALUE with a dotted key, e.g. "
                          "search.n_trials=50")
    try:
        parsed = parse_yaml(value, "value")
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    path = _override_path(text)
    node: Any = raw
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, list) and isinstance(part, int) and part < len(node):
            if last:
                node[part] = parsed
            node = node[part]
        elif isinstance(node, dict):
            if last:
                node[str(part)] = parsed
            elif node.get(str(part)) is None:
                node[str(part)] = {}
            node = node[str(part)]
        elif isinstance(node, list):
            raise ConfigError(f"{where}: {_dotted(path[:i])} has {len(node)} item(s), "
                              f"numbered from 0; got {_show(part)}")
        else:
            raise ConfigError(f"{where}: {_dotted(path[:i]) or 'the config'} is not a mapping; "
                              f"got {_show(node)}")


def _validate(raw: Any, source: str, base_dir: Path, overrides: Sequence[str]) -> StudyConfig:
    if raw is None:
        raise ConfigError(f"{source}: the config is empty")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: a config must be a mapping of keys to values; got "
                          f"{_show(raw)}")
    for text in overrides:
        _apply_override(raw, text, source)
    notes = [(_override_path(t), t) for t in overrides]

    def fail(loc: tuple, text: str, unknown: bool) -> ConfigError:
        shown = _dotted(tuple(p if not isinstance(p, str) or len(p) <= 60
                              else f"{p[:40]}…({len(p)} characters)" for p in loc))
        msg = f"unknown key {shown!r} {text}" if unknown else f"{shown} {text}".strip()
        note = next((f" (from --set {t})" for p, t in notes
                     if tuple(loc[:len(p)]) == p or tuple(p[:len(loc)]) == tuple(loc)), "")
        return ConfigError(f"{source}: {msg}{note}")

    try:
        _check_raw(raw)
        return StudyConfig.model_validate(raw, context={"base_dir": base_dir, "cwd": Path.cwd()})
    except _Rule as rule:
        raise fail(rule.sub, rule.msg, rule.unknown) from None
    except ValidationError as exc:
        raise fail(*_first_error(exc)) from None


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> StudyConfig:
    """Read, override and validate a YAML config; raises :class:`ConfigError` (one line)."""
    shown = str(path)
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"{shown}: {'not a file' if file.exists() else 'no such file'}")
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    raw = parse_yaml(text, shown)
    cfg = _validate(raw, shown, file.resolve().parent, overrides)
    cfg._source = file.resolve()
    cfg._label = shown
    return cfg


# ── defaults ────────────────────────────────────────────────────────────────────────────────

_SECTIONS = {"": StudyConfig, "data": DataConfig, "algorithm": AlgorithmConfig,
             "search": SearchConfig, "tracking": TrackingConfig, "report": ReportConfig}
_COMPUTED = {"tracking.mlflow_uri": "sqlite:///<cwd>/mlflow.db",
             "tracking.storage": "<cwd>/optuna.journal", "report.dir": "<cwd>/reports/<name>/"}


def _defaults() -> dict[str, tuple[Any, str]]:
    out: dict[str, tuple[Any, str]] = {}
    for section, model in _SECTIONS.items():
        for name, field in model.model_fields.items():
            if name in _SECTIONS and not section:
                continue
            key = f"{section}.{name}" if section else name
            if key in _COMPUTED:
                default = _COMPUTED[key]
            elif field.is_required():
                default = "(required)"
            elif key == "search.objectives":
                default = [{"metric": "dist_to_ols", "direction": "minimize"}]
            else:
                default = field.get_default(call_default_factory=True)
            out[key] = (default, field.description or "")
    out["search.space.epochs"] = (SPACE_DEFAULTS["epochs"], "epoch budget when not given")
    out["search.space.init_*"] = (0, "each start (init_m, init_b, init_w…) not given")
    return out


DEFAULTS: dict[str, Any] = {k: v for k, (v, _) in _defaults().items()}


def describe_defaults() -> str:
    """A table of every config key, its default and what it does."""
    rows = [(k, _show(list(v) if isinstance(v, tuple) else v) if not isinstance(v, str) else v,
             doc) for k, (v, doc) in _defaults().items()]
    width = max(len(k) for k, _, _ in rows)
    dwidth = max(len(d) for _, d, _ in rows)
    return "\n".join(f"{k:<{width}}  {d:<{dwidth}}  {doc}" for k, d, doc in rows)
