"""``--set dotted.key=value`` overrides, applied to a config's raw tree before validation.

The value is read as YAML (``search.space.lr={low: 1e-6, high: 1e-3}`` sets a mapping); numeric
parts of the key index lists (``search.objectives.0.direction=maximize``); mappings missing on the
way are created, list items are not.
"""

from __future__ import annotations

from typing import Any

from study.config.messages import dotted
from study.config.yamlio import parse_yaml
from study.core.constraints import show
from study.errors import ConfigError


def override_path(text: str) -> tuple:
    """``search.objectives.0.tol=…`` → ``("search", "objectives", 0, "tol")``."""
    key = text.partition("=")[0].strip()
    return tuple(int(p) if p.isdigit() else p for p in key.split("."))


def apply_override(raw: dict, text: str, source: str) -> None:
    """Set one ``dotted.key=value`` in the raw tree, creating missing mappings on the way."""
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
    path = override_path(text)
    *parents, last = path
    node: Any = raw
    for i, part in enumerate(parents):
        slot = _slot(node, part, path[:i], where)
        if isinstance(node, dict) and node.get(slot) is None:
            node[slot] = {}
        node = node[slot]
    node[_slot(node, last, path[:-1], where)] = parsed


def _slot(node: Any, part: str | int, above: tuple, where: str) -> str | int:
    """Where ``part`` goes in ``node`` (reached by ``above``): a list index that exists or a
    mapping key."""
    if isinstance(node, list) and isinstance(part, int) and part < len(node):
        return part
    if isinstance(node, dict):
        return str(part)
    if isinstance(node, list):
        raise ConfigError(f"{where}: {dotted(above)} has {len(node)} item(s), numbered from 0; "
                          f"got {show(part)}")
    raise ConfigError(f"{where}: {dotted(above) or 'the config'} is not a mapping; "
                      f"got {show(node)}")
