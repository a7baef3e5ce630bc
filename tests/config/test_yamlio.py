"""study.config.yamlio: YAML 1.2 numbers and booleans, file:line:col errors, and a dump that reads back."""

from __future__ import annotations

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
