"""study.config.yamlio: YAML 1.2 numbers and booleans, file:line:col errors, bounded depth and alias
expansion, and a dump that reads back."""

from __future__ import annotations

import itertools
import math

import pytest

from study.config.yamlio import dump_yaml, parse_yaml
from study.errors import ConfigError


def test_yaml_12_numbers_and_booleans():
    got = parse_yaml("a: 1e-5\nb: 1E5\nc: .5e-3\nd: 010\ne: 0x1f\nf: 0o17\ng: -2\nh: +1.5\n"
                     "i: true\nj: False\nk: yes\nl: off\nm: 2001-12-14\nn: ~\no: 1_000\n", "t")
    assert got == {"a": 1e-5, "b": 1e5, "c": 0.0005, "d": 10, "e": 31, "f": 15, "g": -2,
                   "h": 1.5, "i": True, "j": False, "k": "yes", "l": "off", "m": "2001-12-14",
                   "n": None, "o": "1_000"}
    assert type(got["b"]) is float and type(got["d"]) is int
    assert math.isnan(parse_yaml("a: .nan", "t")["a"]) and parse_yaml("a: -.inf", "t")["a"] < 0


@pytest.mark.parametrize("text", ["1e-5", "1E5", ".5e-3", "-2.5e+3", "+1.5", "7.", "-0.0"])
def test_floats_read_as_python_reads_them(text):
    value = parse_yaml(f"a: {text}", "t")["a"]
    assert type(value) is float and value == float(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("name: t\n\tdata: 1\n", "c.yaml:2:1: found character '\\t' that cannot start any token "
                             "(indent with spaces, not tabs)"),
    ("name: t\nsearch: {space: [1, 2\n", "c.yaml:3:1: expected ',' or ']', but got "
                                         "'<stream end>' (while parsing a flow sequence)"),
    ("name: !!python/object/apply:os.system ['true']\n",
     "c.yaml:1:7: could not determine a constructor for the tag "
     "'tag:yaml.org,2002:python/object/apply:os.system' (only plain YAML is read: no !!python "
     "tags)"),
    ("search:\n  space:\n    lr: 1\n    lr: 2\n", "c.yaml:4:5: duplicate key 'lr'"),
    ("name: 't\n", "c.yaml:2:1: found unexpected end of stream (while scanning a quoted "
                   "scalar)"),
    ("a: !!bool yes\n", "c.yaml:1:4: only true and false are booleans; got 'yes'"),
    ("a: !!int x1\n", "c.yaml:1:4: not an integer: 'x1'"),
    ("a: !!float x\n", "c.yaml:1:4: not a number: 'x'"),
])
def test_malformed_yaml_is_one_file_line_col_line(text, expected):
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, "c.yaml")
    assert str(caught.value) == expected


def test_empty_text_is_none():
    assert parse_yaml("", "t") is None and parse_yaml("# only a comment\n", "t") is None


@pytest.mark.parametrize("text", ["1e5", "010", "0x1f", "0o17", "1_000", ".inf", ".nan", "true",
                                  "False", "yes", "off", "2001-12-14", "~", "null", "-2", ""])
def test_dump_reads_back_text_that_looks_like_another_type(text):
    assert parse_yaml(dump_yaml({"a": text}), "t") == {"a": text}


def test_dump_reads_back_plain_data():
    data = {"lr": 1e-5, "epochs": 1000, "ok": True, "none": None, "tols": [0.1, 0.01],
            "space": {"init_m": {"low": -1.0, "high": 1.0, "log": False}}, "text": "θ₀"}
    text = dump_yaml(data)
    assert parse_yaml(text, "t") == data
    assert "θ₀" in text  # unicode kept as written, not escaped


def _alias_bomb(levels: int, fan: int = 9) -> str:
    """The "billion laughs" document: each level lists the previous one ``fan`` times."""
    names = [f"l{i}" for i in range(levels + 1)]
    lines = [f"{names[0]}: &{names[0]} [{', '.join(['lol'] * fan)}]"]
    lines += [f"{n}: &{n} [{', '.join([f'*{p}'] * fan)}]" for p, n in itertools.pairwise(names)]
    return "\n".join(lines) + "\n"


def _expanded(value) -> int:
    if isinstance(value, dict):
        return 1 + sum(1 + _expanded(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_expanded(v) for v in value)
    return 1


@pytest.mark.parametrize("depth", [65, 600, 100_000])
def test_deep_nesting_is_one_error_at_once(depth):
    text = "a: " + "[" * depth + "]" * depth
    with pytest.raises(ConfigError, match=r"^c\.yaml:1:\d+: nested deeper than 64 levels$"):
        parse_yaml(text, "c.yaml")
    assert parse_yaml("a: " + "[" * 63 + "]" * 63, "c.yaml")  # the limit itself is read


def test_an_alias_bomb_is_refused_before_it_is_expanded():
    with pytest.raises(ConfigError, match=r"^c\.yaml:1:1: aliases expand the document past "
                                          r"100,000 values \(an alias bomb\?\)$"):
        parse_yaml(_alias_bomb(9), "c.yaml")


def test_aliases_that_expand_to_a_small_document_are_read():
    text = _alias_bomb(3)  # 9**4 values: a big but honest document
    got = parse_yaml(text, "c.yaml")
    assert len(got["l3"]) == 9 and got["l3"][0][0][0] == ["lol"] * 9
    assert _expanded(got) < 100_000
