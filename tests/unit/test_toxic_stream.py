"""Toxiproxy's stream toxics, table-driven without sockets (h11's SIMPLE_CASES style).

Each case: toxic type, Toxiproxy attributes, events in, instructions out.
Times are seconds on the toxic's monotonic clock.
"""

from __future__ import annotations

import itertools
import random

import pytest

from chaosagenkit.faults.toxics import build_toxic
from chaosagenkit.faults.toxics.base import Close, ConnectionContext, Deliver, ToxicTally, Wake
from chaosagenkit.faults.toxics.slicer import MAX_PIECES, slice_offsets
from tests.unit.network.driver import Run, delivered, run

pytestmark = [pytest.mark.chaos_network]

SIMPLE_CASES = [
    # (id, type, attributes, events, expected output, times acted)
    (
        "noop passes everything",
        "noop",
        {},
        [(0.0, "data", b"ab"), (1.0, "data", b"c"), (2.0, "end")],
        [("deliver", 0.0, b"ab"), ("deliver", 1.0, b"c"), ("close", 2.0)],
        0,
    ),
    (
        "latency delays each chunk",
        "latency",
        {"latency": 100},
        [(0.0, "data", b"a"), (0.05, "data", b"b"), (0.06, "end")],
        [("deliver", 0.1, b"a"), ("deliver", 0.15, b"b"), ("close", 0.15)],
        2,
    ),
    (
        "latency 0 acts on nothing",
        "latency",
        {"latency": 0},
        [(0.0, "data", b"a")],
        [("deliver", 0.0, b"a")],
        0,
    ),
    (
        "slow_close holds the FIN only",
        "slow_close",
        {"delay": 500},
        [(0.0, "data", b"a"), (1.0, "end")],
        [("deliver", 0.0, b"a"), ("close", 1.5)],
        1,
    ),
    # Toxiproxy's timeout.go waits on a fresh time.After(timeout) in every loop turn:
    # each dropped chunk restarts the countdown
    (
        "timeout drops data and closes a timeout after the last chunk",
        "timeout",
        {"timeout": 200},
        [(0.0, "data", b"lost"), (0.1, "data", b"lost too")],
        [("close", 0.3)],
        3,
    ),
    (
        "timeout without data closes a timeout after it started",
        "timeout",
        {"timeout": 200},
        [],
        [("close", 0.2)],
        1,
    ),
    (
        "timeout kept open by a client that keeps sending",
        "timeout",
        {"timeout": 200},
        [(0.15, "data", b"a"), (0.3, "data", b"b"), (0.45, "data", b"c"), (0.6, "data", b"d")],
        [("close", 0.8)],
        5,
    ),
    (
        "timeout 0 holds silently until the stream ends",
        "timeout",
        {"timeout": 0},
        [(0.0, "data", b"lost"), (50.0, "end")],
        [("close", 50.0)],
        1,
    ),
    (
        "timeout removed closes the connection (Toxiproxy's cleanup)",
        "timeout",
        {"timeout": 0},
        [(0.0, "data", b"lost"), (3.0, "remove")],
        [("close", 3.0)],
        1,
    ),
    (
        "timeout removed before its deadline closes at removal",
        "timeout",
        {"timeout": 1000},
        [(0.5, "remove")],
        [("close", 0.5)],
        0,
    ),
    (
        "timeout ends with the stream",
        "timeout",
        {"timeout": 1000},
        [(0.0, "data", b"lost"), (0.5, "end")],
        [("close", 0.5)],
        1,
    ),
    (
        "reset_peer resets after its timeout from the first data",
        "reset_peer",
        {"timeout": 300},
        [(1.0, "data", b"dropped"), (1.1, "data", b"dropped")],
        [("reset", 1.3)],
        1,
    ),
    ("reset_peer 0 resets at once", "reset_peer", {"timeout": 0}, [(1.0, "data", b"x")], [("reset", 1.0)], 1),
    (
        "reset_peer never armed closes normally",
        "reset_peer",
        {"timeout": 10},
        [(1.0, "end")],
        [("close", 1.0)],
        0,
    ),
    (
        "reset_peer removed before firing does not reset",
        "reset_peer",
        {"timeout": 1000},
        [(0.0, "data", b"x"), (0.5, "remove"), (2.0, "end")],
        [("close", 2.0)],
        0,
    ),
    (
        "limit_data cuts at the limit and closes",
        "limit_data",
        {"bytes": 5},
        [(0.0, "data", b"abc"), (0.1, "data", b"defg"), (0.2, "data", b"late")],
        [("deliver", 0.0, b"abc"), ("deliver", 0.1, b"de"), ("close", 0.1)],
        1,
    ),
    (
        "limit_data exactly at the limit closes",
        "limit_data",
        {"bytes": 3},
        [(0.0, "data", b"abc")],
        [("deliver", 0.0, b"abc"), ("close", 0.0)],
        1,
    ),
    (
        "limit_data 0 closes on the first data",
        "limit_data",
        {"bytes": 0},
        [(0.0, "data", b"abc")],
        [("close", 0.0)],
        1,
    ),
    (
        "limit_data under the limit ends normally",
        "limit_data",
        {"bytes": 100},
        [(0.0, "data", b"abc"), (0.5, "end")],
        [("deliver", 0.0, b"abc"), ("close", 0.5)],
        0,
    ),
    (
        "bandwidth spreads bytes at the rate",
        "bandwidth",
        {"rate": 1},  # 1000 bytes/s
        [(0.0, "data", b"x" * 50), (0.0, "data", b"y" * 50)],
        [("deliver", 0.05, b"x" * 50), ("deliver", 0.1, b"y" * 50)],
        2,
    ),
    (
        "bandwidth slices into 100 ms worth",
        "bandwidth",
        {"rate": 1},
        [(0.0, "data", b"z" * 250)],
        [("deliver", 0.1, b"z" * 100), ("deliver", 0.2, b"z" * 100), ("deliver", 0.25, b"z" * 50)],
        1,
    ),
    (
        "bandwidth catches up after idle time",
        "bandwidth",
        {"rate": 1},
        [(0.0, "data", b"x" * 10), (5.0, "data", b"y" * 10)],
        [("deliver", 0.01, b"x" * 10), ("deliver", 5.01, b"y" * 10)],
        2,
    ),
    (
        "bandwidth 0 is unlimited",
        "bandwidth",
        {"rate": 0},
        [(0.0, "data", b"x" * 10)],
        [("deliver", 0.0, b"x" * 10)],
        0,
    ),
    (
        "slicer without variation slices evenly",
        "slicer",
        {"average_size": 2, "size_variation": 0, "delay": 1000},
        [(0.0, "data", b"abcdefgh")],
        [
            ("deliver", 0.0, b"ab"),
            ("deliver", 0.001, b"cd"),
            ("deliver", 0.002, b"ef"),
            ("deliver", 0.003, b"gh"),
        ],
        1,
    ),
    (
        "slicer leaves small chunks whole",
        "slicer",
        {"average_size": 10, "size_variation": 2},
        [(0.0, "data", b"abc")],
        [("deliver", 0.0, b"abc")],
        0,
    ),
]


@pytest.mark.parametrize(
    "type_name,attributes,events,expected,acted",
    [case[1:] for case in SIMPLE_CASES],
    ids=[case[0] for case in SIMPLE_CASES],
)
def test_simple_cases(type_name, attributes, events, expected, acted):
    driver = Run(build_toxic(type_name, attributes))
    for t, kind, *args in events:
        if kind == "data":
            driver.feed(t, *args)
        else:
            getattr(driver, kind)(t, *args)
    assert driver.finish() == expected
    assert driver.acted == acted


def test_latency_jitter_stays_within_bounds_and_keeps_order():
    toxic = build_toxic("latency", {"latency": 100, "jitter": 50})
    chunks = [bytes([i]) for i in range(200)]
    out = run(toxic, [(i * 0.001, "data", chunk) for i, chunk in enumerate(chunks)], seed=7)
    assert delivered(out) == b"".join(chunks)
    times = [item[1] for item in out]
    assert times == sorted(times)
    extra = [item[1] - i * 0.001 for i, item in enumerate(out)]
    assert min(extra) >= 0.05 - 1e-9
    assert max(extra) <= 0.15 + 0.2  # order can only push a chunk behind its predecessor


def test_latency_jitter_is_the_same_for_the_same_seed():
    toxic = build_toxic("latency", {"latency": 100, "jitter": 50})
    events = [(i * 0.01, "data", b"x") for i in range(50)]
    assert run(toxic, events, seed=3) == run(toxic, events, seed=3)
    assert run(toxic, events, seed=3) != run(toxic, events, seed=4)


@pytest.mark.parametrize(
    "new_timeout,expected",
    [(2000, [("close", 2.5)]), (200, [("close", 0.7)]), (0, [])],
    ids=["longer", "shorter", "never"],
)
def test_a_timeout_update_restarts_the_countdown_from_the_update(new_timeout, expected):
    # Toxiproxy restarts the toxic on an update: a fresh time.After(new timeout)
    driver = Run(build_toxic("timeout", {"timeout": 1000}))
    driver.update(0.5, build_toxic("timeout", {"timeout": new_timeout}))
    assert driver.finish() == expected, "the countdown counts from the update, the old deadline is gone"


def test_a_timeout_asks_for_one_wake_up_at_a_time_however_many_chunks_arrive():
    driver = Run(build_toxic("timeout", {"timeout": 100}))
    for i in range(1000):
        driver.feed(i * 0.001, b"x")
    assert len(driver.wakes) == 1
    assert driver.finish() == [("close", 1.099)]


def test_a_timeout_drawn_inactive_still_closes_when_removed_as_toxiproxys_cleanup_does():
    toxic = build_toxic("timeout", {"timeout": 0})
    driver = Run(toxic)
    # what the link does for a connection where toxicity drew the toxic inactive: only cleanup runs
    assert toxic.cleanup(driver.state, 1.0) == [Close(1.0)]
    assert toxic.removed(driver.state, 1.0) == [], "drawn inactive by an update: no close"


def test_limit_data_keeps_its_count_across_an_update():
    driver = Run(build_toxic("limit_data", {"bytes": 4}))
    driver.feed(0.0, b"abc")
    driver.update(0.1, build_toxic("limit_data", {"bytes": 5}))
    driver.feed(0.2, b"defg")
    assert driver.finish() == [("deliver", 0.0, b"abc"), ("deliver", 0.2, b"de"), ("close", 0.2)]


@pytest.mark.parametrize("length", [0, 1, 7, 100, 4096, 65536])
@pytest.mark.parametrize("average,variation", [(1, 0), (3, 2), (10, 5), (100, 99)])
def test_slicer_pieces_cover_the_chunk_without_gaps(length, average, variation):
    bounds = slice_offsets(length, average, variation, random.Random(length))
    assert bounds[0] == 0 and bounds[-1] == length
    sizes = [b - a for a, b in itertools.pairwise(bounds)]
    assert all(size > 0 for size in sizes) or length == 0
    if length > average + variation:
        assert max(sizes) <= average + variation


def test_slicer_delivers_every_byte_in_order():
    toxic = build_toxic("slicer", {"average_size": 5, "size_variation": 3, "delay": 10})
    payload = bytes(range(256)) * 4
    out = run(toxic, [(0.0, "data", payload)], seed=11)
    assert delivered(out) == payload
    assert len(out) > 50


def test_a_one_byte_slicer_cuts_a_bounded_number_of_pieces_per_call():
    toxic = build_toxic("slicer", {"average_size": 1, "size_variation": 0, "delay": 0})
    state = toxic.new_state(random.Random(1), ConnectionContext(), ToxicTally())
    out = toxic.feed(state, b"x" * 100_000, 0.0)
    pieces = [item for item in out if isinstance(item, Deliver)]
    assert len(pieces) == MAX_PIECES and all(len(p.data) == 1 for p in pieces)
    assert [item for item in out if isinstance(item, Wake)] == [Wake(0.0)], "the rest comes on the next turn"
    assert toxic.held_bytes(state) == 100_000 - MAX_PIECES


@pytest.mark.parametrize("average,variation,delay", [(1, 0, 0), (5, 3, 10), (100, 99, 0)])
def test_the_lazy_slicer_cuts_as_slice_offsets_describes_and_closes_after_the_last_piece(
    average, variation, delay
):
    payload = bytes(range(256)) * 20
    toxic = build_toxic("slicer", {"average_size": average, "size_variation": variation, "delay": delay})
    out = run(toxic, [(0.0, "data", payload), (0.0, "end")], seed=3)
    assert out[-1][0] == "close" and out[-1][1] >= out[-2][1]
    bounds = slice_offsets(len(payload), average, variation, random.Random(3))
    assert [len(item[2]) for item in out[:-1]] == [b - a for a, b in itertools.pairwise(bounds)]
    assert delivered(out) == payload


def test_a_removed_slicer_delivers_what_it_has_not_cut_whole():
    toxic = build_toxic("slicer", {"average_size": 1, "size_variation": 0, "delay": 1000})
    out = run(toxic, [(0.0, "data", b"abcdef"), (0.0025, "remove")])
    assert out == [
        ("deliver", 0.0, b"a"),
        ("deliver", 0.001, b"b"),
        ("deliver", 0.002, b"c"),
        ("deliver", 0.0025, b"def"),
    ]


def test_the_next_chunk_waits_for_the_delay_after_the_last_piece():
    toxic = build_toxic("slicer", {"average_size": 1, "size_variation": 0, "delay": 1000})
    out = run(toxic, [(0.0, "data", b"ab"), (0.0, "data", b"cd")])
    assert [item[1] for item in out] == [0.0, 0.001, 0.002, 0.003]


@pytest.mark.parametrize(("established", "expected"), [(False, "reset"), (True, "close")])
def test_reset_peer_closes_instead_when_it_joins_an_open_connection(established, expected):
    """As Toxiproxy: SO_LINGER 0 only on connections opened with the toxic there; others get a FIN."""
    toxic = build_toxic("reset_peer", {"timeout": 100})
    context = ConnectionContext()
    context.established = established
    state = toxic.new_state(random.Random(0), context, ToxicTally())
    assert toxic.start(state, 0.0) == []
    assert toxic.feed(state, b"dropped", 1.0) == [Wake(1.1)]
    [instruction] = toxic.tick(state, 1.1)
    assert type(instruction).__name__.lower() == expected
    assert instruction.at == 1.1
