"""study.config.overrides: ``--set dotted.key=value`` on a raw config tree. How an override's value
fails validation, naming the override, is checked end to end in config/test_model.py."""

from __future__ import annotations

import pytest

from study.config.overrides import apply_override, override_path
from study.errors import ConfigError


@pytest.mark.parametrize(("raw", "text", "after"), [
    ({"a": {"b": 1}}, "a.b=2", {"a": {"b": 2}}),
    ({}, "x.y.z=[1, {k: v}]", {"x": {"y": {"z": [1, {"k": "v"}]}}}),  # mappings made on the way
    ({"a": None}, "a.b=1", {"a": {"b": 1}}),  # an empty section is a mapping to fill
    ({"l": [1, 2]}, "l.1=3", {"l": [1, 3]}),
    ({"l": [{"a": 1}]}, "l.0.a=1e-3", {"l": [{"a": 0.001}]}),  # the value is YAML 1.2
    ({"d": {}}, "d.0=x", {"d": {"0": "x"}}),  # a number names a key in a mapping
    ({}, " k = v", {"k": "v"}),
    ({"k": 1}, "k=", {"k": None}),
])
def test_override_sets_the_value(raw, text, after):
    apply_override(raw, text, "c.yaml")
    assert raw == after


@pytest.mark.parametrize(("raw", "text", "message"), [
    ({}, "foo", "c.yaml: --set foo: expected KEY=VALUE with a dotted key, e.g. "
                "search.n_trials=50"),
    ({}, "a..b=1", "c.yaml: --set a..b=1: expected KEY=VALUE with a dotted key"),
    ({}, "a=[1", "c.yaml: --set a=[1: value:1:3: expected ',' or ']', but got '<stream end>'"),
    ({"a": 1}, "a.b=1", "c.yaml: --set a.b=1: a is not a mapping; got 1"),
    ({"l": [1]}, "l.1=2", "c.yaml: --set l.1=2: l has 1 item(s), numbered from 0; got 1"),
    ({"l": [1]}, "l.x=2", "c.yaml: --set l.x=2: l has 1 item(s), numbered from 0; got 'x'"),
])
def test_bad_override_is_one_line(raw, text, message):
    with pytest.raises(ConfigError) as caught:
        apply_override(raw, text, "c.yaml")
    assert str(caught.value).startswith(message)


def test_override_path_numbers_list_items():
    assert override_path(" search.objectives.0.tol = 3") == ("search", "objectives", 0, "tol")
