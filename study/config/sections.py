"""The config's sections as frozen pydantic models: ``data``, ``algorithm``, the search's
objectives, ``tracking`` and ``report`` (the search section and the whole study are in
:mod:`study.config.model`, the search space in :mod:`study.config.space`).

Scalars are strict: ints must be ints (not ``10.5``, ``"10"`` or ``true``), a float accepts an int,
bools are not numbers, and ``.nan``/``.inf`` are refused everywhere. ``data.path`` is relative to
the config file's folder (inputs travel with the config); ``tracking.*`` and ``report.dir`` are
relative to the working directory (outputs land where the command runs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)

from study.config.constraints import SWEEP_DEFAULTS, declared
from study.config.messages import Rule
from study.core.constraints import (
    DEFAULTS,
    PARAMETER_CONSTRAINTS,
    Boolean,
    Interval,
    Maybe,
    Options,
    Tolerances,
    show,
)

Bool = Annotated[bool, Strict()]
Text = Annotated[str, Strict()]


def declared_type(name: str) -> Any:
    """The pydantic type of a declared value: the strict type, then the declared rule (its
    words are the engine's and the command line's)."""
    rule = declared(name)
    inner = rule.inner if isinstance(rule, Maybe) else rule
    if isinstance(inner, Tolerances):
        item = declared_type_of(inner.item)
        return Annotated[tuple[item, ...], Field(min_length=1), AfterValidator(_distinct(inner))]
    typed = declared_type_of(inner)
    return typed | None if isinstance(rule, Maybe) else typed


def declared_type_of(rule: Any) -> Any:
    """:func:`declared_type` of a constraint object."""

    def check(value: Any) -> Any:
        text = rule.problem(value)  # the value as written: 1, not 1.0
        if text is not None:
            raise Rule((), text).pydantic()
        return value

    def typed(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        out = handler(value)  # the strict type first
        check(value)
        return out

    if isinstance(rule, Options):
        return Annotated[str, BeforeValidator(check)]
    if isinstance(rule, Boolean):
        return Bool
    kind = int if isinstance(rule, Interval) and rule.kind is int else float
    return Annotated[kind, Strict(), WrapValidator(typed)]


def _distinct(rule: Tolerances) -> Any:
    def check(value: tuple) -> tuple:
        text = rule.repeat_problem(value)
        if text is not None:
            raise Rule((), text).pydantic()
        return value

    return check


Column = Annotated[str, Strict(), Field(min_length=1)] | Annotated[int, Strict(), Field(ge=0)]
Tolerance = declared_type_of(PARAMETER_CONSTRAINTS["param_tols"].item)
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
NEDRICH_HINT = ("the article's data lives at ../shared/data/nedrich/data.csv relative to the "
                "project root")
T = SimpleNamespace(**{name: declared_type(name) for name in PARAMETER_CONSTRAINTS})  # types
DistTol = declared_type("report.dist_tol")


def setting(name: str, description: str) -> Any:
    """The field of engine setting ``name``: its declared default, the description and, for a
    number, its declared rule."""
    rule = declared(name)
    if not isinstance(rule, Options | Boolean):
        description = f"{description}; {rule.rule}"
    return Field(DEFAULTS[name], description=description)


def _choices(name: str) -> str:
    return " | ".join(declared(name).values)


class Model(BaseModel):
    """Base of every section: unknown keys are errors, validated objects never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(Model):
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
            raise Rule((), f"must be a file path; got {show(value)}").pydantic()
        base = Path((info.context or {}).get("base_dir") or Path.cwd())
        path = (base / Path(value).expanduser()).resolve()
        if not path.is_file():
            if path.exists():  # a folder, a device such as /dev/zero, a pipe: never read
                what = "a folder" if path.is_dir() else "not a regular file"
                raise Rule((), f"must name a CSV file; got {value!r} ({path} is {what})"
                           ).pydantic()
            raise Rule((), f"must name an existing CSV file; got {value!r} (no such file: "
                           f"{path}); " + NEDRICH_HINT).pydantic()
        return path

    @field_validator("x", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str | int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _digest(self) -> DataConfig:
        from study.core.data import file_digest

        try:
            self._sha256 = file_digest(self.path)  # the data as it was when the config was read
        except OSError as exc:
            raise Rule(("path",), f"cannot be read: {exc.strerror}; got {str(self.path)!r}"
                       ).pydantic() from None
        return self

    @property
    def sha256(self) -> str:
        """sha256 of the data file's bytes when the config was validated."""
        return self._sha256


class AlgorithmConfig(Model):
    """Every engine setting; allowed values and defaults are declared in
    :mod:`study.core.constraints`."""

    cost: T.cost = setting("cost", _choices("cost"))
    update: T.update = setting("update", _choices("update"))
    optimizer: T.optimizer = setting("optimizer", _choices("optimizer"))
    momentum: T.momentum = setting("momentum", "heavy-ball beta")
    batch_size: T.batch_size = setting("batch_size", "minibatch size")
    line_search: T.line_search = setting("line_search", _choices("line_search"))
    armijo: T.armijo = setting("armijo", "Armijo sufficient-decrease constant")
    shrink: T.shrink = setting("shrink", "backtracking step factor")
    standardize: T.standardize = setting("standardize", "run GD on z-scored features")
    tol_cost_change: T.tol_cost_change = setting("tol_cost_change",
                                                    "stop when |ΔJ| <= this (null: never)")
    tol_grad: T.tol_grad = setting("tol_grad", "stop when ‖∇J‖ <= this")
    tol_param: T.tol_param = setting("tol_param", "stop when ‖θ − θ*‖ <= this")
    divergence_factor: T.divergence_factor = setting(
        "divergence_factor", "diverged when J > factor × initial J")
    history_points: T.history_points = setting("history_points",
                                                  "cost-curve points kept per trial")
    history_dense: T.history_dense = setting("history_dense", "first epochs kept one by one")
    param_tols: T.param_tols = setting("param_tols", "first epoch with ‖θ − θ*‖ <= t kept")
    cost_tols: T.cost_tols = setting("cost_tols", "first epoch with J − J* <= t kept")
    record_path: T.record_path = setting("record_path", "keep θ at history points")
    seed: T.seed = setting("seed", "minibatch shuffling seed")


METRICS = ("final_cost", "dist_to_ols", "cost_gap", "rel_cost_gap", "epochs_to_param_tol",
           "epochs_to_cost_tol")


class Objective(Model):
    """One value Optuna optimizes."""

    metric: Literal[METRICS] = Field(description=" | ".join(METRICS))
    direction: Literal["minimize", "maximize"] = Field("minimize", description="minimize | "
                                                       "maximize")
    tol: Tolerance | None = Field(None, description="for epochs_to_*: one of algorithm."
                                  "param_tols / cost_tols")

    @model_validator(mode="after")
    def _tol_fits_metric(self) -> Objective:
        if self.metric.startswith("epochs_to_") and self.tol is None:
            raise Rule(("tol",), f"is required for metric {self.metric}").pydantic()
        if not self.metric.startswith("epochs_to_") and self.tol is not None:
            raise Rule(("tol",), f"is only for epochs_to_* metrics; got {show(self.tol)} "
                                 f"with metric {self.metric}").pydantic()
        return self

    @property
    def name(self) -> str:
        """``dist_to_ols``, or ``epochs_to_param_tol_0.01`` for a metric with a tolerance."""
        return self.metric if self.tol is None else f"{self.metric}_{self.tol!r}"


class TrackingConfig(Model):
    """Where runs and trials are stored (relative paths: to the working directory)."""

    mlflow_uri: Text = Field(description="MLflow tracking URI; default sqlite:///<cwd>/mlflow.db")
    storage: Text = Field(description="Optuna storage: a journal file path (default "
                          "<cwd>/optuna.journal) or a URL (sqlite:///…, postgresql://…)")

    @field_validator("storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        if not value.strip():
            raise Rule((), "must be a journal file path or a storage URL such as "
                           f"sqlite:///optuna.db; got {show(value)}").pydantic()
        return value

    @field_validator("mlflow_uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", value):
            raise Rule((), "must be a URI such as sqlite:///mlflow.db or http://host:5000; got "
                           f"{show(value)}").pydantic()
        return value


class ReportConfig(Model):
    """Where the report goes and what counts as converged."""

    dir: Path = Field(description="report folder; default <cwd>/reports/<name>/")
    dist_tol: DistTol = Field(SWEEP_DEFAULTS["report.dist_tol"],
                              description="converged when dist_to_ols <= this")

    @field_validator("dir", mode="before")
    @classmethod
    def _folder(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise Rule((), f"must be a folder path; got {show(value)}").pydantic()
        return value


def fill_outputs(data: dict, cwd: Path) -> dict:
    """A raw config with empty sections made ``{}`` and the output locations' defaults filled
    in, relative ones made absolute against the working directory ``cwd``."""
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
            safe = isinstance(name, str) and STUDY_NAME.fullmatch(name)
            report["dir"] = cwd / "reports" / (name if safe else "study")
        elif isinstance(folder, str) and folder:
            report["dir"] = cwd / Path(folder).expanduser()
    return data


def _absolute_sqlite(uri: str, cwd: Path) -> str:
    """A relative sqlite URI (``sqlite:///runs/m.db``) made absolute against ``cwd``; absolute,
    in-memory and other URIs unchanged."""
    prefix = "sqlite:///"
    file = uri.removeprefix(prefix)
    if uri.startswith(prefix) and file and not file.startswith(("/", ":memory:")):
        return prefix + str(cwd / file)
    return uri
