"""Argument checks every activity shares (chaosagenkit.activity)."""

from __future__ import annotations

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosagenkit.activity import require_number, seed_or_none
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.service import actions


@pytest.mark.parametrize(
    "value,kwargs,message",
    [
        (10**400, {}, "'n' must be a number below 1e308, got an integer of 401 digits"),
        (
            -(10**400),
            {"integer": True},
            "'n' must be an integer below 1e308, got an integer of 401 digits",
        ),
        (
            10**5000,
            {"integer": True},
            "'n' must be an integer below 1e308, got an integer of about 5001 digits",
        ),
        (float("nan"), {}, "'n' must be a number, got nan"),
        (True, {}, "'n' must be a number, got True"),
        (2.5, {"integer": True}, "'n' must be an integer, got 2.5"),
    ],
    ids=["huge", "huge-negative", "5001-digits", "nan", "bool", "fraction"],  # no repr of 10**5000
)
def test_require_number_refuses_what_is_not_a_usable_number(value, kwargs, message):
    with pytest.raises(ConfigurationError) as caught:
        require_number(value, "n", **kwargs)
    assert str(caught.value) == message


def test_require_number_takes_large_integers_a_float_can_hold():
    require_number(10**300, "n", minimum=0, integer=True)


def test_an_activity_given_a_huge_integer_fails_in_one_line():
    with pytest.raises(ActivityFailed) as caught:
        actions.crash_server("nobody", when="after_requests", after_requests=10**400)
    assert str(caught.value) == (
        "crash_server: 'after_requests' must be an integer below 1e308, got an integer of 401 digits"
    )


@pytest.mark.parametrize(
    "value,seed", [(None, None), ("", None), (" ", None), (0, 0), (7, 7), ("7", 7), (7.0, 7)]
)
def test_seed_or_none_takes_integers_and_their_strings(value, seed):
    assert seed_or_none(value) == seed


@pytest.mark.parametrize(
    "value,message",
    [
        (1.9, "'seed' must be an integer, got 1.9"),
        (True, "'seed' must be an integer, got True"),
        ("1.9", "'seed' must be an integer, got '1.9'"),
        ("seven", "'seed' must be an integer, got 'seven'"),
        (-1, "'seed' must be >= 0, got -1"),
        (2**64, "'seed' must be an integer between 0 and 2**64 - 1, got an integer of 20 digits"),
        ([7], "'seed' must be an integer, got [7]"),
    ],
)
def test_seed_or_none_refuses_what_is_not_a_seed(value, message):
    with pytest.raises(ConfigurationError) as caught:
        seed_or_none(value)
    assert str(caught.value) == message
