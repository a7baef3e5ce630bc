"""The one retry helper (:mod:`study.tracking.retry`), against a counted sequence of failures."""

from __future__ import annotations

import itertools
import time

import pytest

from study.tracking.retry import retry


class Busy(Exception):
    pass


def flaky(failures: int, calls: list):
    """A call that raises Busy ``failures`` times, then returns its number of calls."""

    def call() -> int:
        calls.append(time.monotonic())
        if len(calls) <= failures:
            raise Busy(f"busy {len(calls)}")
        return len(calls)

    return call


def transient(exc: BaseException) -> bool:
    return isinstance(exc, Busy)


def test_a_call_is_made_again_after_each_delay_until_it_succeeds():
    calls: list[float] = []
    assert retry(flaky(2, calls), transient=transient, delays=(0.05, 0.1, 5.0)) == 3
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and sum(gaps) < 2.0  # the 5 s were not waited


def test_every_attempt_failing_raises_the_last_error_or_what_give_up_makes_of_it():
    calls: list[float] = []
    with pytest.raises(Busy, match="busy 3"):
        retry(flaky(9, calls), transient=transient, delays=(0, 0))
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(RuntimeError, match=r"gave up after 2: busy 2") as info:
        retry(flaky(9, calls), transient=transient, delays=(0,),
              give_up=lambda exc, n: RuntimeError(f"gave up after {n}: {exc}"))
    assert isinstance(info.value.__cause__, Busy)
    calls.clear()
    with pytest.raises(Busy):  # no delays: one attempt
        retry(flaky(1, calls), transient=transient, delays=())
    assert len(calls) == 1


def test_an_error_that_is_not_transient_is_raised_at_once():
    calls = []

    def broken():
        calls.append(1)
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        retry(broken, transient=transient, delays=(0, 0), give_up=lambda e, n: RuntimeError())
    assert calls == [1]


def test_a_lookup_before_a_retry_can_make_it_unnecessary_and_its_busy_error_is_no_end():
    calls: list[float] = []
    assert retry(flaky(9, calls), transient=transient, delays=(0, 0),
                 before_retry=lambda: "found") == "found"
    assert len(calls) == 1
    calls.clear()
    lookups = []

    def busy_lookup():
        lookups.append(1)
        raise Busy("lookup busy")

    assert retry(flaky(2, calls), transient=transient, delays=(0, 0),
                 before_retry=busy_lookup) == 3
    assert len(calls) == 3 and len(lookups) == 2
    calls.clear()
    with pytest.raises(ValueError):  # a lookup's own real error ends it
        retry(flaky(2, calls), transient=transient, delays=(0,),
              before_retry=lambda: (_ for _ in ()).throw(ValueError("no")))
