"""A study's YAML config → validated, frozen config objects.

The work is shared out: :mod:`study.config.yamlio` reads the YAML (YAML 1.2 numbers and booleans,
no duplicate keys, errors as ``file:line:col: message``), :mod:`study.config.sections` holds the
section models, :mod:`study.config.space` the search space, :mod:`study.config.overrides` the
``--set`` overrides and :mod:`study.config.messages` the wording of a broken rule. This module
holds the search section, the whole study, loading and the table of defaults. Allowed values and
defaults are declared in :mod:`study.core.constraints` (engine settings, ``lr``, ``epochs``,
starts) and :mod:`study.config.constraints` (the sweep's); the models read them.

Validation (pydantic v2, ``extra="forbid"``, frozen): every error is one
:class:`study.errors.ConfigError` line naming the file, the dotted key, the rule and the bad value,
e.g. ``configs/lr.yaml: search.space.lr.low must be > 0 and finite; got -1e-05``. Scalars are
strict: ints must be ints (not ``10.5``, ``"10"`` or ``true``), a float accepts an int, bools are
not numbers, and ``.nan``/``.inf`` are refused everywhere.

Paths: ``data.path`` is relative to the config file's folder (inputs travel with the config);
``tracking.*`` and ``report.dir`` are relative to the working directory (outputs land where the
command runs). Every default is listed by :func:`describe_defaults` (and :data:`DEFAULTS`). A
space entry not given: ``epochs`` is its declared default (1000), each start (``init_*``) is 0.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from study.config.constraints import MAX_TEXT, SWEEP_DEFAULTS, declared, grid_problem
from study.config.messages import Rule, dotted, first_error
from study.config.overrides import apply_override, override_path
from study.config.sections import (
    STUDY_NAME,
    AlgorithmConfig,
    DataConfig,
    Model,
    Objective,
    ReportConfig,
    Text,
    TrackingConfig,
    declared_type,
    fill_outputs,
)
from study.config.space import SPACE_DEFAULTS, SpaceSpec, init_space, parse_space
from study.config.yamlio import dump_yaml, parse_yaml
from study.core.constraints import num, show
from study.core.engine import Settings
from study.errors import ConfigError

S = SimpleNamespace(**{name: declared_type(f"search.{name}")  # the search's types
                       for name in ("sampler", "seed", "n_trials", "batch_size")})


def _search(name: str, description: str) -> Any:
    """The field of search key ``name``: its declared default, the description."""
    return Field(SWEEP_DEFAULTS[f"search.{name}"], description=description)


class SearchConfig(Model):
    """How Optuna searches: sampler, budget, objectives, space."""

    sampler: S.sampler = _search("sampler", " | ".join(declared("search.sampler").values))
    seed: S.seed = _search("seed", "sampler seed")
    n_trials: S.n_trials = _search("n_trials",
                                      "total complete trials wanted (a resume tops up to it)")
    batch_size: S.batch_size = _search("batch_size",
                                          "trials asked from Optuna and run as one engine batch")
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
        except Rule as rule:
            raise rule.pydantic() from None

    @model_validator(mode="after")
    def _cross(self) -> SearchConfig:
        names = [o.name for o in self.objectives]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise Rule(("objectives", i), f"repeats objective {name}").pydantic()
        if self.sampler == "grid":
            for key, spec in self.space.items():
                text = grid_problem(spec)
                if text is not None:
                    raise Rule(("space", key), text).pydantic()
        return self

    @property
    def swept(self) -> list[str]:
        """Names of the entries that vary (ranges and values lists of 2+ items)."""
        return [k for k, s in self.space.items()
                if s.kind == "range" or (s.kind == "values" and len(s.values or ()) > 1)]


class StudyConfig(Model):
    """A whole study, validated; see the module docstring and :func:`describe_defaults`."""

    name: Text = Field(description="MLflow experiment and Optuna study name")
    data: DataConfig
    algorithm: AlgorithmConfig = Field(AlgorithmConfig(), description="engine settings")
    search: SearchConfig
    tracking: TrackingConfig
    report: ReportConfig
    _source: Path | None = PrivateAttr(None)
    _base_dir: Path | None = PrivateAttr(None)  # what data.path is relative to
    _label: str = PrivateAttr("<dict>")

    @model_validator(mode="before")
    @classmethod
    def _outputs(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return data
        return fill_outputs(dict(data), Path((info.context or {}).get("cwd") or Path.cwd()))

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not STUDY_NAME.fullmatch(value):
            raise Rule((), "must be 1-100 letters, digits, '_', '-' or '.', starting with a "
                           f"letter or digit; got {show(value)}").pydantic()
        return value

    @model_validator(mode="after")
    def _tolerances_recorded(self) -> StudyConfig:
        for i, obj in enumerate(self.search.objectives):
            if obj.tol is None:
                continue
            which = "param_tols" if obj.metric == "epochs_to_param_tol" else "cost_tols"
            allowed = getattr(self.algorithm, which)
            if obj.tol not in allowed:
                raise Rule(("search", "objectives", i, "tol"),
                           f"must be one of algorithm.{which} "
                           f"({', '.join(num(t) for t in allowed)}); got {show(obj.tol)}"
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
        return init_space(self.search.space, d, self._label)

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
        return dump_yaml(self.resolved())

    def study_fingerprint(self) -> dict:
        """What defines the study's trials: data (sha256, columns, path relative to the
        config's folder), algorithm, and the search's sampler, seed, objectives and space (not
        n_trials, batch_size, tracking or report, which may change on a resume)."""
        r = self.resolved()
        # the data by content and by its path from the config, so a copied or moved folder
        # (another machine, another checkout path) is the same study
        where = os.path.relpath(self.data.path, self._base_dir or self.data.path.parent)
        return {
            "data": {**r["data"], "path": Path(where).as_posix(), "sha256": self.data.sha256},
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
        a, b, path = old.get(key), new.get(key), f"{prefix}{key}"
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += fingerprint_changes(a, b, path + ".")
        elif a != b:
            out.append(path)
    return out


# ── loading ─────────────────────────────────────────────────────────────────────────────────


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


def _validate(raw: Any, source: str, base_dir: Path, overrides: Sequence[str]) -> StudyConfig:
    if raw is None:
        raise ConfigError(f"{source}: the config is empty")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: a config must be a mapping of keys to values; got "
                          f"{show(raw)}")
    for text in overrides:
        apply_override(raw, text, source)
    notes = [(override_path(t), t) for t in overrides]

    def fail(loc: tuple, text: str, unknown: bool) -> ConfigError:
        shown = dotted(tuple(p if not isinstance(p, str) or len(p) <= 60
                             else f"{p[:40]}…({len(p)} characters)" for p in loc))
        msg = f"unknown key {shown!r} {text}" if unknown else f"{shown} {text}".strip()
        note = next((f" (from --set {t})" for p, t in notes
                     if tuple(loc[:len(p)]) == p or tuple(p[:len(loc)]) == tuple(loc)), "")
        return ConfigError(f"{source}: {msg}{note}")

    try:
        _check_raw(raw)
        cfg = StudyConfig.model_validate(raw, context={"base_dir": base_dir, "cwd": Path.cwd()})
        cfg._base_dir = base_dir.resolve()
        return cfg
    except Rule as rule:
        raise fail(rule.sub, rule.msg, rule.unknown) from None
    except ValidationError as exc:
        raise fail(*first_error(exc, StudyConfig)) from None


def _check_raw(obj: Any, loc: tuple = ()) -> None:
    """Rules of the raw tree: text keys; no text longer than an MLflow param value."""
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise Rule(loc, f"keys must be text; got {show(key)}")
            _check_raw(value, (*loc, key))
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            _check_raw(value, (*loc, i))
    elif isinstance(obj, str) and len(obj) > MAX_TEXT:
        raise Rule(loc, f"must be at most {MAX_TEXT} characters; got a {len(obj)}-character "
                        "string")


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
    rows = [(k, v if isinstance(v, str) else show(list(v) if isinstance(v, tuple) else v), doc)
            for k, (v, doc) in _defaults().items()]
    width = max(len(k) for k, _, _ in rows)
    dwidth = max(len(d) for _, d, _ in rows)
    return "\n".join(f"{k:<{width}}  {d:<{dwidth}}  {doc}" for k, d, doc in rows)
