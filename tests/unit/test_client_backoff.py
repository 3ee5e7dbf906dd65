"""The backoff between a request's attempts, from an attempt log (pure: no sockets, no clock)."""

from __future__ import annotations

import pytest

from chaosagenkit.client.measure import backoff_gaps, min_backoff_growth


class Request:
    """A request object: attempts of one request share its identity."""


A, B = Request(), Request()


@pytest.mark.parametrize(
    "attempts,expected",
    [
        ([], []),
        ([(A, 0.0, 0.001, None)], []),  # answered at once: no backoff
        ([(A, 0.0, 0.001, "E"), (A, 0.051, 0.052, None)], [[50.0]]),
        (  # exponential: 50 ms, then 100 ms
            [(A, 0.0, 0.001, "E"), (A, 0.051, 0.052, "E"), (A, 0.152, 0.153, None)],
            [[50.0, 100.0]],
        ),
        (  # two requests interleaved (concurrency): told apart by identity
            [(A, 0.0, 0.001, "E"), (B, 0.0, 0.002, "E"), (A, 0.011, 0.012, None), (B, 0.032, 0.033, None)],
            [[10.0], [30.0]],
        ),
        ([(A, 0.2, 0.3, None), (A, 0.0, 0.1, "E")], [[100.0]]),  # ordered by start time
    ],
)
def test_backoff_gaps(attempts, expected):
    assert backoff_gaps(attempts) == expected


@pytest.mark.parametrize(
    "gaps,expected",
    [
        ([], None),
        ([[50.0]], None),  # one pause: nothing to compare
        ([[50.0, 100.0]], 2.0),  # exponential, multiplier 2
        ([[75.0, 75.0, 75.0]], 1.0),  # constant backoff
        ([[50.0, 100.0, 100.0]], 1.0),  # capped by max_delay
        ([[10.0, 30.0], [40.0, 50.0]], 1.25),  # the smallest over every request
    ],
)
def test_min_backoff_growth(gaps, expected):
    assert min_backoff_growth(gaps) == expected
