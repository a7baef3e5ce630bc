"""How a broken config rule is worded: ``<dotted key> must …; got <bad value>``.

Rules checked by hand raise :class:`Rule` (a key path and the text after the key); pydantic's own
errors are translated by :func:`first_error`. The config module puts the file name and the full
dotted key in front.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from study.core.constraints import num, show


class Rule(Exception):
    """A rule broken at ``sub`` (a key path relative to the validated field)."""

    def __init__(self, sub: tuple, msg: str, unknown: bool = False) -> None:
        super().__init__(msg)
        self.sub, self.msg, self.unknown = sub, msg, unknown

    def pydantic(self) -> PydanticCustomError:
        """The rule as an error a pydantic validator raises; :func:`first_error` unpacks it."""
        kind = "config_unknown" if self.unknown else "config_rule"
        return PydanticCustomError(kind, "{msg}", {"msg": self.msg, "sub": self.sub})


def did_you_mean(key: str, allowed: Sequence[str]) -> str:
    """The closest allowed key, or the whole list when none is close."""
    match = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    match = match or [a for a in allowed if len(key) >= 3 and a.startswith(key)][:1]
    if match:
        return f"(did you mean {match[0]!r}?)"
    return f"(allowed: {', '.join(allowed)})"


_PLAIN = {  # pydantic error types → the rule, without the value
    "int_type": "must be an integer", "int_from_float": "must be an integer",
    "int_parsing": "must be an integer", "string_type": "must be text",
    "finite_number": "must be a finite number", "list_type": "must be a list",
    "tuple_type": "must be a list", "dict_type": "must be a mapping of keys to values",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
}
_BOUNDS = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="),
           "less_than": ("lt", "<"), "less_than_equal": ("le", "<=")}


def _number_text(value: Any) -> str:
    quoted = isinstance(value, str) and re.fullmatch(r"\s*[-+]?[\d.]+(e[-+]?\d+)?\s*", value,
                                                     re.I)
    return "must be a number" + f"; got {show(value)}" + (" (a quoted number is text)"
                                                          if quoted else "")


def _bool_text(value: Any) -> str:
    yaml11 = isinstance(value, str) and value.lower() in ("yes", "no", "on", "off", "y", "n")
    return "must be true or false" + f"; got {show(value)}" + (
        " (only true/false are booleans)" if yaml11 else "")


def _literal_text(ctx: Mapping, value: Any) -> str:
    allowed = re.findall(r"'([^']*)'", str(ctx["expected"]))
    close = difflib.get_close_matches(value, allowed, n=1, cutoff=0.6) \
        if isinstance(value, str) else []
    return f"must be one of {ctx['expected']}; got {show(value)}" + \
        (f" (did you mean {close[0]!r}?)" if close else "")


_WORDED = {  # pydantic error types whose words depend on the value or the context
    "float_type": lambda ctx, value: _number_text(value),
    "float_parsing": lambda ctx, value: _number_text(value),
    "bool_type": lambda ctx, value: _bool_text(value),
    "bool_parsing": lambda ctx, value: _bool_text(value),
    "literal_error": _literal_text,
    "too_short": lambda ctx, value: f"must have at least {ctx.get('min_length', 1)} item(s); "
                                    f"got {show(value)}",
    "string_too_short": lambda ctx, value: f"must have at least {ctx.get('min_length', 1)} "
                                           f"item(s); got {show(value)}",
    "string_too_long": lambda ctx, value: f"must be at most {ctx['max_length']} characters; "
                                          f"got {show(value)}",
}


def rule_text(err: Mapping) -> str:
    """A pydantic error → 'must …; got …' (without the key)."""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind in ("config_rule", "config_unknown"):
        return ctx["msg"]
    if kind == "missing":
        return "is required"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind in _PLAIN:
        return f"{_PLAIN[kind]}; got {show(value)}"
    if kind in _WORDED:
        return _WORDED[kind](ctx, value)
    if kind in _BOUNDS:
        key, op = _BOUNDS[kind]
        return f"must be {op} {num(ctx[key])}; got {show(value)}"
    return f"{err['msg']}; got {show(value)}"


def dotted(loc: Sequence) -> str:
    """A key path as a config's reader writes it: ``search.objectives[0].tol``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def first_error(exc: ValidationError, root: type[BaseModel] | None = None
                ) -> tuple[tuple, str, bool]:
    """(key path, rule text, unknown?) of the error to show first: typos explain the rest.
    ``root`` is the model that was validated: an unknown key's suggestions are the fields of the
    model at its path."""
    errors = exc.errors()
    errors.sort(key=lambda e: e["type"] not in ("extra_forbidden", "config_unknown"))
    err = errors[0]
    loc = tuple(err["loc"]) + tuple((err.get("ctx") or {}).get("sub", ()))
    if err["type"] == "extra_forbidden":
        model = _model_at(root, loc[:-1])
        allowed = list(model.model_fields) if model else []
        return loc, did_you_mean(str(loc[-1]), allowed), True
    return loc, rule_text(err), err["type"] == "config_unknown"


def _model_at(root: type[BaseModel] | None, loc: Sequence) -> type[BaseModel] | None:
    model: type[BaseModel] | None = root
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
