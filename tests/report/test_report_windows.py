"""Fault windows read from timelines: table-driven, one row per rule of the window contract."""

from __future__ import annotations

import pytest

from chaosagenkit.report.windows import fault_windows, usable_events


def ev(t: float, event: str, target: str = "target", **extra) -> dict:
    return {"t": t, "event": event, "target": target, **extra}


# (case, timeline, run end, expected windows as (target, kind, start, end, ended_by))
CASES = [
    (
        "inject cleared by id",
        [ev(10, "inject", kind="latency", id="f1"), ev(15, "clear", id="f1")],
        30,
        [("target", "latency", 10, 15, "cleared")],
    ),
    (
        "clear without id clears every fault on the target",
        [
            ev(10, "inject", kind="latency", id="f1"),
            ev(11, "inject", kind="failure_rate", id="f2"),
            ev(14, "clear"),
        ],
        30,
        [("target", "latency", 10, 14, "cleared"), ("target", "failure_rate", 11, 14, "cleared")],
    ),
    (
        "clear of another id leaves the fault in force",
        [ev(10, "inject", kind="latency", id="f1"), ev(12, "clear", id="f9")],
        30,
        [("target", "latency", 10, 30, "run ended")],
    ),
    (
        "clear on another target leaves the fault in force",
        [ev(10, "inject", kind="latency", id="f1"), ev(12, "clear", target="proxy")],
        30,
        [("target", "latency", 10, 30, "run ended")],
    ),
    (
        "duration_s ends the fault before the clear",
        [ev(10, "inject", kind="latency", id="f1", duration_s=3), ev(20, "clear", id="f1")],
        30,
        [("target", "latency", 10, 13, "expired")],
    ),
    (
        "clear before duration_s",
        [ev(10, "inject", kind="latency", id="f1", duration_s=30), ev(12, "clear")],
        60,
        [("target", "latency", 10, 12, "cleared")],
    ),
    (
        "duration_s without clear",
        [ev(10, "inject", kind="latency", duration_s=5)],
        60,
        [("target", "latency", 10, 15, "expired")],
    ),
    (
        "no clear, no duration: until the run ends",
        [ev(10, "inject", kind="latency")],
        42,
        [("target", "latency", 10, 42, "run ended")],
    ),
    (
        "same id injected again replaces the first",
        [
            ev(10, "inject", kind="latency", id="f1"),
            ev(14, "inject", kind="latency", id="f1"),
            ev(20, "clear"),
        ],
        30,
        [("target", "latency", 10, 14, "replaced"), ("target", "latency", 14, 20, "cleared")],
    ),
    (
        "disable until enable",
        [ev(5, "disable", target="proxy"), ev(9, "enable", target="proxy")],
        30,
        [("proxy", "disabled", 5, 9, "enabled")],
    ),
    (
        "crash until restart",
        [ev(5, "crash"), ev(8, "restart")],
        30,
        [("target", "crashed", 5, 8, "restarted")],
    ),
    (
        "crash until start",
        [ev(5, "crash"), ev(7, "start")],
        30,
        [("target", "crashed", 5, 7, "started")],
    ),
    (
        "a crash is not ended by clear",
        [ev(5, "crash"), ev(6, "clear")],
        30,
        [("target", "crashed", 5, 30, "run ended")],
    ),
    (
        "start and stop alone open nothing",
        [ev(1, "start"), ev(29, "stop")],
        30,
        [],
    ),
    (
        "events out of order are taken in time order",
        [ev(15, "clear", id="f1"), ev(10, "inject", kind="latency", id="f1")],
        30,
        [("target", "latency", 10, 15, "cleared")],
    ),
    (
        "unknown run end: open windows close at the last event",
        [ev(10, "inject", kind="latency"), ev(18, "inject", target="other", kind="latency", duration_s=1)],
        None,
        [("target", "latency", 10, 18, "run ended"), ("other", "latency", 18, 18, "run ended")],
    ),
    (
        "kind missing: named after the event",
        [ev(10, "inject"), ev(11, "clear")],
        30,
        [("target", "fault", 10, 11, "cleared")],
    ),
]


@pytest.mark.parametrize("case, timeline, run_end, expected", CASES, ids=[c[0] for c in CASES])
def test_fault_windows(case, timeline, run_end, expected):
    windows = fault_windows(timeline, run_end)
    got = [(w.target, w.kind, w.start, w.end, w.ended_by) for w in windows]
    assert got == expected


def test_window_keeps_id_and_detail_and_labels_itself():
    (window,) = fault_windows([ev(1, "inject", kind="latency", id="f1", detail={"latency_ms": 500})], 9)
    assert window.fault_id == "f1"
    assert window.detail == {"latency_ms": 500}
    assert window.label == "target: latency"


def test_entries_without_a_usable_time_are_left_out():
    timeline = [ev(1, "inject"), {"event": "inject", "target": "x"}, ev(float("nan"), "inject"), "junk",
                {"t": True, "event": "inject"}, {"t": 2, "event": 5}]  # fmt: skip
    assert usable_events(timeline) == [ev(1, "inject")]
    assert len(fault_windows(timeline, 5)) == 1


def test_a_disable_with_a_duration_ends_when_the_daemon_enables_the_proxy_again():
    # the daemon re-enables the proxy itself: the run's timeline records no "enable"
    windows = fault_windows([ev(5, "disable", target="proxy", kind="proxy_down", duration_s=2)], 30)
    assert [(w.start, w.end, w.ended_by) for w in windows] == [(5, 7, "expired")]
    enabled_early = fault_windows(
        [ev(5, "disable", target="proxy", duration_s=20), ev(6, "enable", target="proxy")], 30
    )
    assert [(w.end, w.ended_by) for w in enabled_early] == [(6, "enabled")]


def test_numbers_no_float_can_hold_are_no_time_and_no_duration():
    huge = 10**400
    assert usable_events([ev(huge, "inject"), ev(1, "inject")]) == [ev(1, "inject")]
    (window,) = fault_windows([ev(1, "inject", duration_s=huge)], 9)
    assert (window.end, window.ended_by) == (9, "run ended")
