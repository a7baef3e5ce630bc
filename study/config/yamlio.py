"""YAML in and out with YAML 1.2 core-schema scalars; errors as ``file:line:col: message``.

Reading (``_Loader``, a PyYAML SafeLoader):

- ``1e-5``, ``1E5``, ``.5e-3`` are floats (PyYAML alone reads them as strings);
- ``010`` is the integer 10 (not octal 8); ``0o10`` and ``0x1f`` are octal and hex;
- only ``true``/``false`` are booleans: ``yes``/``no``/``on``/``off`` stay text, so a boolean key
  given ``yes`` is refused with "must be true or false" (YAML 1.1's yes/no booleans surprise people
  in the other direction: a sampler named ``off`` would have become ``False``);
- dates stay text; a duplicate key, a ``!!python/…`` tag, a tab used as indentation or an unclosed
  bracket is an error shown as ``file:line:col: message``;
- nesting deeper than :data:`MAX_DEPTH` levels, or aliases that would expand the document past
  :data:`MAX_VALUES` values (an "alias bomb"), is refused while the document is composed, before
  anything is built from it.

Writing (:func:`dump_yaml`) quotes any text that reading would take for a number or a boolean, so
what is written reads back the same.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from study.errors import ConfigError

_INT, _FLOAT, _BOOL = (f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool"))

# A study config is four or five levels deep and has a few hundred values; these limits are far
# above any real config and far below what exhausts Python's stack or the machine's memory.
MAX_DEPTH = 64
MAX_VALUES = 100_000


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars, no duplicate keys and bounded depth and
    alias expansion (see module doc)."""

    _depth = 0

    def compose_node(self, parent, index):
        if self._depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None and _expanded_size(node, {}) > MAX_VALUES:
            raise yaml.composer.ComposerError(
                None, None, f"aliases expand the document past {MAX_VALUES:,} values "
                "(an alias bomb?)", node.start_mark)
        return node

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
                    raise _error(key_node, f"duplicate key {key!r}")
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Number of values in ``node`` once every alias is expanded; each distinct node is sized
    once (``sizes`` memoises by identity), so the cost is that of the unexpanded document."""
    if id(node) not in sizes:
        children: list = []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        sizes[id(node)] = 1 + sum(_expanded_size(child, sizes) for child in children)
    return sizes[id(node)]


def _error(node: yaml.Node, problem: str) -> yaml.constructor.ConstructorError:
    return yaml.constructor.ConstructorError(None, None, problem, node.start_mark)


def _construct_int(loader: _Loader, node: yaml.Node) -> int:
    text = loader.construct_scalar(node).replace("_", "")
    try:
        if re.fullmatch(r"0o[0-7]+", text):
            return int(text[2:], 8)
        if re.fullmatch(r"0x[0-9a-fA-F]+", text):
            return int(text[2:], 16)
        return int(text, 10)
    except ValueError:
        raise _error(node, f"not an integer: {text!r}") from None


def _construct_float(loader: _Loader, node: yaml.Node) -> float:
    text = loader.construct_scalar(node)
    special = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}
    if text.lower() in special:
        return special[text.lower()]
    try:
        return float(text)
    except ValueError:
        raise _error(node, f"not a number: {text!r}") from None


def _construct_bool(loader: _Loader, node: yaml.Node) -> bool:
    text = loader.construct_scalar(node)
    if text.lower() not in ("true", "false"):
        raise _error(node, f"only true and false are booleans; got {text!r}")
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


# The dumper quotes a string exactly when the loader's resolvers would read it as another type.
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


def dump_yaml(data: Any) -> str:
    """Plain data → YAML text that :func:`parse_yaml` reads back to the same data."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=None, width=100)


def _one_line(text: str) -> str:
    return " ".join(text.split())
