"""study.config.messages: bad values shown short, key paths written as a reader writes them,
pydantic's errors worded as 'must …; got …', and the closest name offered for a typo."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator

from study.config.messages import Rule, did_you_mean, dotted, first_error
from study.core.constraints import num, show


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    low: Annotated[float, Strict(), Field(gt=0)] = 1.0


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inner: _Inner = _Inner()
    items: list[Annotated[int, Strict()]] = []


def _first(data: dict) -> tuple[tuple, str, bool]:
    with pytest.raises(ValidationError) as caught:
        _Outer.model_validate(data)
    return first_error(caught.value, _Outer)


@pytest.mark.parametrize(("value", "shown"), [
    (True, "true"), (None, "null"), ("x", "'x'"), ("k" * 61, "a 61-character string"),
    (1e-05, "1e-05"), (3, "3"), ([1, 2], "[1, 2]"), (list(range(40)), repr(list(range(40)))[:57]
                                                     + "..."),
])
def test_show(value, shown):
    assert show(value) == shown


def test_num_and_dotted():
    assert (num(0.0), num(1e-3), num(2), num(1e20)) == ("0", "0.001", "2", "1e+20")
    assert dotted(("search", "objectives", 0, "tol")) == "search.objectives[0].tol"
    assert dotted(()) == ""


def test_did_you_mean():
    assert did_you_mean("n_trails", ["n_trials", "seed"]) == "(did you mean 'n_trials'?)"
    assert did_you_mean("see", ["n_trials", "seed"]) == "(did you mean 'seed'?)"
    assert did_you_mean("zzz", ["n_trials", "seed"]) == "(allowed: n_trials, seed)"


def test_first_error_words_pydantic_errors():
    assert _first({"inner": {"low": 0}}) == (("inner", "low"), "must be > 0; got 0", False)
    assert _first({"items": [1, "2"]}) == (("items", 1), "must be an integer; got '2'", False)
    assert _first({"inner": {"low": "1e-3"}})[1] == ("must be a number; got '1e-3' (a quoted "
                                                     "number is text)")


def test_an_unknown_key_comes_first_with_the_fields_of_its_model():
    assert _first({"items": ["x"], "inner": {"lwo": 1}}) == (
        ("inner", "lwo"), "(did you mean 'low'?)", True)


def test_a_rule_raised_in_a_validator_keeps_its_key_path():
    class Checked(BaseModel):
        value: int

        @model_validator(mode="after")
        def _odd(self) -> Checked:
            raise Rule(("value", "deep"), "must be odd; got 2").pydantic()

    with pytest.raises(ValidationError) as caught:
        Checked(value=2)
    assert first_error(caught.value) == (("value", "deep"), "must be odd; got 2", False)
