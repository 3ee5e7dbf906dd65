"""agenkit behaviours the harness exposes as they are (it corrects none of them).

Each test pins what agenkit 0.92.2 does today, observed over real chaos
hosts; docs/client.md cites them. If agenkit changes, these tests fail and
the documentation must be updated with the new behaviour.
"""

from __future__ import annotations

import pytest

from chaosagenkit.client import actions, probes
from chaosagenkit.service.hosts import restart_server
from tests.integration.test_client_support import chaos_host, clean_clients, clear, inject

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_middleware, pytest.mark.slow]


def test_remote_agent_does_not_reconnect_after_the_host_restarts(clean_clients):
    with chaos_host("target"):
        actions.create_client("caller", server="target")
        assert probes.send_requests("caller", count=3)["ok"] == 3
        restart_server("target")  # same endpoint, new process: the old TCP connection is gone
        after = probes.send_requests("caller", count=5)
        assert after["ok"] == 0
        assert set(after["errors"]) <= {"ConnectionClosedError", "ConnectionError"}
        assert sum(after["errors"].values()) == 5
        # the host is fine: a new RemoteAgent on the same endpoint is answered
        actions.create_client("fresh", server="target")
        assert probes.send_requests("fresh", count=3)["ok"] == 3


def test_concurrent_first_requests_on_a_fresh_remote_agent_race_to_connect(clean_clients):
    # RemoteAgent._ensure_connected runs outside its lock: each concurrent first caller
    # opens a connection and overwrites the transport's reader/writer; the connection
    # the first request is still reading from is dropped under it.
    with chaos_host("target"):
        actions.create_client("burst", server="target")
        burst = probes.send_requests("burst", count=20, concurrency=10)
        assert burst["errors"] == {"ConnectionClosedError": 1} and burst["ok"] == 19
        # one request first (connected), then the same burst: no error
        actions.create_client("warm", server="target")
        assert probes.send_requests("warm", count=1)["ok"] == 1
        assert probes.send_requests("warm", count=20, concurrency=10)["errors"] == {}


def test_a_timed_out_request_leaves_its_late_answer_for_the_next_request(clean_clients):
    # RemoteAgent keeps the connection after asyncio.wait_for times out; the late
    # answer stays in the stream and is read by the next request on that connection.
    with chaos_host("target") as target:
        actions.create_client("caller", server="target", timeout_ms=150)
        inject(target, {"kind": "delay", "delay_ms": 2000})
        timed_out = probes.send_requests("caller", count=2)
        assert timed_out["errors"] == {"AgentTimeoutError": 2}
        clear(target)  # releases the held requests: their answers are now on the wire
        later = probes.send_requests("caller", count=4)
        assert later["ok"] == 4
        assert later["wrong_answers"] == 4  # each answer belongs to the request sent two before it
        assert probes.wrong_answers("caller") == 4
