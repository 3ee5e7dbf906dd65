"""Background traffic: open and closed loop, skipped load, the duration bound, stopping."""

from __future__ import annotations

import pytest

from chaosagenkit.client import actions, probes, registry
from tests.integration.test_client_support import (
    clean_clients,
    echo_host,
    inject,
    target,
    wait_for,
)

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_middleware, pytest.mark.slow]


def test_traffic_stops_by_itself_when_its_duration_ends(target):
    actions.create_client("caller", server="target")
    actions.start_traffic("caller", rate_per_s=100, duration_s=0.3, concurrency=2)
    wait_for(lambda: not registry.get_client("caller").traffic.running, what="traffic to end by itself")
    summary = actions.stop_traffic("caller")
    assert summary["ended_by"] == "duration" and summary["running"] is False
    assert 1 <= summary["sent"] <= 31  # at most one request per 10 ms tick, plus the first
    assert summary["ok"] == summary["sent"]


def test_open_loop_counts_the_load_it_could_not_send_as_skipped(target):
    actions.create_client("caller", server="target")
    inject(target, {"kind": "delay", "delay_ms": 300})
    actions.start_traffic("caller", rate_per_s=50, duration_s=30, concurrency=1)
    wait_for(lambda: probes.traffic_summary("caller")["sent"] >= 2, what="two delayed requests")
    summary = actions.stop_traffic("caller")
    # one request in flight at a time, each held 300 ms, while 50 per second were due
    assert summary["mode"] == "open" and summary["skipped"] >= 10
    assert summary["latency_ms"]["p50"] >= 300.0


def test_closed_loop_sends_back_to_back(target):
    actions.create_client("caller", server="target", connections=3)
    started = actions.start_traffic("caller", rate_per_s=0, duration_s=30, concurrency=3)
    assert started["mode"] == "closed"
    wait_for(lambda: probes.traffic_summary("caller")["sent"] >= 200, what="200 requests")
    summary = actions.stop_traffic("caller", drain_s=5)
    assert summary["skipped"] == 0 and summary["errors"] == {} and summary["wrong_answers"] == 0
    assert summary["ok"] == summary["sent"] >= 200


def test_traffic_cannot_start_twice_and_close_stops_it(target):
    actions.create_client("caller", server="target")
    actions.start_traffic("caller", rate_per_s=20, duration_s=30, concurrency=1)
    with pytest.raises(
        Exception, match="start_traffic: 'client' client 'caller' already has traffic running"
    ):
        actions.start_traffic("caller", rate_per_s=20, duration_s=30, concurrency=1)
    wait_for(lambda: probes.outcomes_summary("caller")["sent"] >= 1, what="a first request")
    closed = actions.close_client("caller")
    assert closed["sent"] >= 1
    assert registry.get_client("caller").traffic.running is False
    with pytest.raises(Exception, match="send_requests: 'client' client 'caller' is closed"):
        probes.send_requests("caller")
