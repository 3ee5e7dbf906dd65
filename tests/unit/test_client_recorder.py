"""Outcome recording, percentile and window math, recovery detection, the export format."""

from __future__ import annotations

import time

import pytest

from chaosagenkit.client.measure import first_recovery
from chaosagenkit.client.recorder import Recorder, error_chain, latency_summary, percentile

PERCENTILES = [
    ([10.0], 50, 10.0),
    ([10.0], 99, 10.0),
    ([10.0, 20.0], 50, 15.0),
    ([10.0, 20.0], 0, 10.0),
    ([10.0, 20.0], 100, 20.0),
    ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
    ([1.0, 2.0, 3.0, 4.0, 5.0], 25, 2.0),
    (list(map(float, range(1, 101))), 95, 95.05),  # numpy.percentile(range(1,101), 95)
    (list(map(float, range(1, 101))), 99, 99.01),
]


@pytest.mark.parametrize("values,p,expected", PERCENTILES)
def test_percentile_interpolates_linearly_between_closest_ranks(values, p, expected):
    assert percentile(values, p) == pytest.approx(expected)


def test_percentile_rejects_nothing_and_out_of_range():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_latency_summary_of_nothing_is_null_not_zero():
    assert latency_summary([]) == {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    assert latency_summary([3.0, 1.0, 2.0]) == {"p50": 2.0, "p95": 2.9, "p99": 2.98, "max": 3.0, "mean": 2.0}


def failure() -> Exception:
    try:
        try:
            raise KeyError("inner")
        except KeyError as e:
            raise ConnectionResetError("middle") from e
    except ConnectionResetError as e:
        try:
            raise RuntimeError("outer") from e
        except RuntimeError as outer:
            return outer


def test_error_chain_names_the_outermost_error_then_its_causes():
    assert error_chain(failure()) == ("RuntimeError", "ConnectionResetError", "KeyError")


def test_summary_counts_errors_wrong_answers_and_success_ratio():
    recorder = Recorder()
    now = time.time()
    recorder.record(now, 10.0, None, False, source=1)
    recorder.record(now + 0.1, 20.0, None, True, source=1)  # answered, but not its own answer
    recorder.record(now + 0.2, 30.0, failure(), False, source=1)
    recorder.record(now + 0.3, 40.0, TimeoutError(), False, source=2)
    summary = recorder.select(source=1).summary()
    assert summary == {
        "sent": 3,
        "ok": 2,
        "errors": {"RuntimeError": 1},
        "success_ratio": round(1 / 3, 4),
        "wrong_answers": 1,
        "latency_ms": {"p50": 20.0, "p95": 29.0, "p99": 29.8, "max": 30.0, "mean": 20.0},
        "duration_s": 0.23,
    }
    everything = recorder.select()
    assert len(everything) == 4
    assert everything.chains[2] == ("RuntimeError", "ConnectionResetError", "KeyError")
    assert everything.chains[0] is None


def test_empty_summary_has_null_ratio():
    summary = Recorder().select().summary()
    assert summary["sent"] == 0 and summary["success_ratio"] is None and summary["duration_s"] == 0.0


def test_window_selects_by_send_time():
    recorder = Recorder()
    now = time.time()
    recorder.record(now - 100.0, 1.0, None, False, source=1)
    recorder.record(now - 5.0, 2.0, None, False, source=1)
    recorder.record(now - 1.0, 3.0, None, False, source=1)
    assert recorder.select(window_s=10.0).latency_ms == [2.0, 3.0]
    assert recorder.select(window_s=0).latency_ms == [1.0, 2.0, 3.0]
    assert recorder.select(since=now - 2.0).latency_ms == [3.0]
    # A window and a since bound: the later cutoff wins.
    assert recorder.select(window_s=10.0, since=now - 200.0).latency_ms == [2.0, 3.0]


def test_export_is_columnar_sorted_by_send_time_relative_to_t0():
    recorder = Recorder()
    t0 = 1000.0
    recorder.record(1002.5, 12.345, None, True, source=1)  # completed first, sent later
    recorder.record(1001.25, 7.0, TimeoutError(), False, source=1)
    assert recorder.export(t0) == {
        "t": [1.25, 2.5],
        "latency_ms": [7.0, 12.35],
        "ok": [0, 1],
        "error": ["TimeoutError", None],
        "wrong": [0, 1],
    }


def recorder_with(pattern: str, start: float = 100.0) -> Recorder:
    """Outcomes from a string: 's' success, 'e' error, 'w' wrong answer; 1 s apart."""
    recorder = Recorder()
    for i, c in enumerate(pattern):
        recorder.record(start + i, 1.0, RuntimeError() if c == "e" else None, c == "w", source=1)
    return recorder


@pytest.mark.parametrize(
    "pattern,consecutive,expected",
    [
        ("sssss", 5, 100.0),
        ("eesssss", 5, 102.0),
        ("ssessss", 5, None),
        ("ssesssss", 5, 103.0),
        ("sswsssss", 5, 103.0),  # a wrong answer breaks a streak like an error
        ("eeee", 1, None),
        ("es", 1, 101.0),
    ],
)
def test_first_recovery_is_the_first_of_n_consecutive_successes(pattern, consecutive, expected):
    assert first_recovery(recorder_with(pattern).select(), consecutive) == expected


def test_first_recovery_orders_by_send_time_not_completion():
    recorder = Recorder()
    # recorded (completed) out of order: the error was sent between the successes
    recorder.record(100.0, 1.0, None, False, source=1)
    recorder.record(102.0, 1.0, None, False, source=1)
    recorder.record(101.0, 5.0, RuntimeError(), False, source=1)
    recorder.record(103.0, 1.0, None, False, source=1)
    assert first_recovery(recorder.select(), 2) == 102.0


def test_select_from_a_start_row_skips_earlier_rows():
    recorder = Recorder()
    for i in range(6):
        recorder.record(100.0 + i, float(i), None, False, source=1 + i % 2)
    assert recorder.select(start=3).latency_ms == [3.0, 4.0, 5.0]
    assert recorder.select(source=1, start=3).latency_ms == [4.0]
    assert len(recorder.select(start=6)) == 0
