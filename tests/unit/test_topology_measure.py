"""System measurements, the topology drawing, answer checks and the DNS responder: pure, no sockets."""

from __future__ import annotations

import socket
import struct

import pytest
from agenkit.interfaces import Message

from chaosagenkit.report.topology import topology_html, topology_svg
from chaosagenkit.topology import measure
from chaosagenkit.topology.answers import every_part_answers
from chaosagenkit.topology.dns import parse_query, respond


def _window(rows):
    """rows: (t, latency_ms, error or None)."""
    return measure.window_from_columns(
        {"t": [r[0] for r in rows], "latency_ms": [r[1] for r in rows], "error": [r[2] for r in rows]}
    )


def test_blast_radius_counts_failed_wrong_and_slow_requests_per_client():
    a = _window([(1.0, 5, "X"), (2.0, 5, "X")])
    b = _window([(1.0, 5, None), (2.0, 150, None), (3.0, 5, None), (4.0, 5, None)])
    radius = measure.blast_radius({"a": a, "b": b}, latency_bound_ms=100)
    assert radius["affected_fraction"] == round(3 / 6, 4)
    assert radius["by_client"] == {"a": 1.0, "b": 0.25}
    assert radius["affected_a"] == 1.0 and radius["affected_b"] == 0.25
    assert radius["suffered"] == ["a", "b"]
    assert measure.blast_radius({"b": b})["suffered"] == []  # no bound: slow is not affected


def test_the_first_failed_tier_is_the_failure_that_ended_first():
    # the caller's call starts first and ends last: the callee's failure came first
    caller = _window([(10.0, 50, "RemoteExecutionError")])
    callee = _window([(10.01, 5, "RuntimeError")])
    first = measure.first_failed({"entry": (0, caller), "to_leaf": (1, callee)}, since=9.0)
    assert first == {"tier": 1, "edge": "to_leaf", "after_s": 1.015}
    assert measure.first_failed({"entry": (0, _window([(10.0, 5, None)]))})["tier"] == -1


def test_in_flight_calls_are_those_that_spanned_the_moment():
    window = _window(
        [(1.0, 600, None), (1.2, 500, "ConnectionClosedError"), (1.6, 10, None), (0.1, 10, None)]
    )
    assert measure.in_flight(window, at=1.5) == {
        "in_flight": 2,
        "completed": 1,
        "failed": 1,
        "errors": {"ConnectionClosedError": 1},
    }


def test_tier_success_adds_up_the_edges_of_each_tier():
    edges = [
        {"name": "entry", "tier": 0, "sent": 10, "ok": 10},
        {"name": "a", "tier": 1, "sent": 10, "ok": 5},
        {"name": "b", "tier": 1, "sent": 10, "ok": 10, "wrong_answers": 1},
        {"name": "idle", "tier": 2},
    ]
    assert measure.tier_success(edges) == [
        {"tier": 0, "edges": ["entry"], "sent": 10, "ok": 10, "success_ratio": 1.0},
        {"tier": 1, "edges": ["a", "b"], "sent": 20, "ok": 14, "success_ratio": 0.7},
    ]


def test_every_part_of_a_parallel_answer_must_echo_the_request():
    request = Message(role="user", content="req-1", metadata={"request_id": "c:1"})
    good = Message(
        role="agent",
        content="[to_a]: req-1\n[to_b]: req-1",
        metadata={"to_a.request_id": "c:1", "to_b.request_id": "c:1"},
    )
    assert every_part_answers(request, good)
    late = Message(role="agent", content="[to_a]: req-0", metadata={"to_a.request_id": "c:0"})
    assert not every_part_answers(request, late)
    assert not every_part_answers(request, Message(role="agent", content="", metadata={}))


SYSTEM = {
    "name": "shop",
    "hosts": [
        {"name": "front", "tier": 1, "kind": "fallback", "requests": 30},
        {"name": "primary", "tier": 2, "kind": "agent", "requests": 20},
        {"name": "backup<b>", "tier": 2, "kind": "agent", "reachable": False},
    ],
    "edges": [
        {"name": "entry", "from": "clients", "to": "front", "tier": 0, "sent": 30, "ok": 30, "success_ratio": 1.0},
        {"name": "to_primary", "from": "front", "to": "primary", "tier": 1, "sent": 30, "ok": 20, "success_ratio": 0.6667},
        {"name": "to_backup", "from": "front", "to": "backup<b>", "tier": 1, "sent": 0, "ok": 0, "success_ratio": None},
    ],
    "tiers": [{"tier": 0, "sent": 30, "success_ratio": 1.0}, {"tier": 1, "sent": 30, "success_ratio": 0.6667}],
}  # fmt: skip


def test_the_drawing_places_faults_on_their_host_or_edge_and_escapes_names():
    timeline = [
        {"t": 1.0, "event": "inject", "target": "primary", "kind": "failure_rate"},
        {"t": 2.0, "event": "inject", "target": "to_backup", "kind": "latency"},
        {"t": 3.0, "event": "clear", "target": "primary"},
    ]
    svg = topology_svg(SYSTEM, timeline)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "⚡ failure_rate" in svg  # on the host it was placed on
    assert 'stroke-dasharray="6 3"' in svg  # the faulted edge (to_backup) is dashed
    assert "backup&lt;b&gt;" in svg and "backup<b>" not in svg
    assert "2. to_primary: front -&gt; primary, 67% of 30" in svg and "tier 1 · 67% ok" in svg
    assert "#cf222e" in svg  # a faulted host is outlined in red
    block = topology_html({"systems": [SYSTEM]}, timeline)
    assert block.startswith("<h3>Topology</h3>") and "tier 0: 100% of 30" in block
    assert "<td>to_backup</td><td>front → backup&lt;b&gt;</td>" in block and "<td>latency</td>" in block
    assert topology_html({}, timeline) == "" and topology_html(None, []) == ""


def _query(name: str, qtype: int = 1) -> bytes:
    out = struct.pack(">HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00" + struct.pack(">HH", qtype, 1)


@pytest.mark.parametrize(
    ("name", "qtype", "faults", "decision", "rcode", "answers"),
    [
        ("backend.chaos.test", 1, {}, "answered", 0, 1),
        ("BACKEND.chaos.test", 1, {}, "answered", 0, 1),
        ("backend.chaos.test", 28, {}, "empty", 0, 0),
        ("backend.chaos.test", 1, {"backend.chaos.test": {"mode": "nxdomain", "expires_at": 2e9}}, "nxdomain", 3, 0),
        ("backend.chaos.test", 1, {"backend.chaos.test": {"mode": "servfail", "expires_at": 2e9}}, "servfail", 2, 0),
        ("backend.chaos.test", 1, {"backend.chaos.test": {"mode": "silent", "expires_at": 2e9}}, "silent", None, None),
        ("backend.chaos.test", 1, {"backend.chaos.test": {"mode": "nxdomain", "expires_at": 1.0}}, "answered", 0, 1),
        ("example.com", 1, {}, "refused", 5, 0),  # never forwarded anywhere
    ],
)  # fmt: skip
def test_the_dns_responder_answers_its_zone_only_with_faults_that_expire(
    name, qtype, faults, decision, rcode, answers
):
    answer, decided = respond(_query(name, qtype), "chaos.test", "127.0.0.1", faults, now=1_000_000.0)
    assert decided == decision
    if rcode is None:
        assert answer is None
        return
    ident, flags, _qd, ancount = struct.unpack(">HHHH", answer[:8])
    assert ident == 0xBEEF and flags & 0x8000 and flags & 0xF == rcode and ancount == answers
    if answers:
        assert answer[-4:] == socket.inet_aton("127.0.0.1")


def test_the_dns_responder_ignores_what_is_not_one_question():
    assert parse_query(b"\x00" * 5) is None
    response = respond(_query("a.chaos.test"), "chaos.test", "127.0.0.1", {}, 0.0)[0]
    assert parse_query(response) is None  # a response is not a query
