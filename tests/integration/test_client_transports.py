"""One client over every transport the chaos host serves, and the error type each reports."""

from __future__ import annotations

import pytest

from chaosagenkit.client import actions, probes
from chaosagenkit.client.registry import get_client
from chaosagenkit.service.hosts import start_server, stop_started_servers
from tests.integration.test_client_support import clean_clients, clear, inject

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_middleware, pytest.mark.slow]

# What the caller sees when the served agent raises (agenkit 0.92.2): over the framed
# transports and grpc an error envelope -> RemoteExecutionError (agenkit wraps it a second time:
# its generic handler catches its own RemoteExecutionError); over http and h2c HTTPAgentServer
# answers 500 and agenkit's HTTPTransport raises its ConnectionError.
TRANSPORTS = [
    ("tcp", "tcp://127.0.0.1:0", "RemoteExecutionError", ("RemoteExecutionError", "RemoteExecutionError")),
    ("http", "http://127.0.0.1:0", "ConnectionError", ("ConnectionError",)),
    ("ws", "ws://127.0.0.1:0", "RemoteExecutionError", ("RemoteExecutionError", "RemoteExecutionError")),
    (
        "unix",
        "unix://{tmp}/agent.sock",
        "RemoteExecutionError",
        ("RemoteExecutionError", "RemoteExecutionError"),
    ),
    ("h2c", "h2c://127.0.0.1:0", "ConnectionError", ("ConnectionError",)),
    # GRPCServer answers an error Response; GRPCTransport hands RemoteAgent an error envelope.
    ("grpc", "grpc://127.0.0.1:0", "RemoteExecutionError", ("RemoteExecutionError", "RemoteExecutionError")),
]


@pytest.mark.parametrize("transport,endpoint,error,chain", TRANSPORTS, ids=[t[0] for t in TRANSPORTS])
def test_client_over_each_transport(transport, endpoint, error, chain, clean_clients, tmp_path):
    ref = start_server("target", endpoint=endpoint.format(tmp=tmp_path))
    try:
        assert ref.endpoint.startswith(f"{transport}://")
        actions.create_client("caller", server="target", connections=2)
        healthy = probes.send_requests("caller", count=10, concurrency=2)
        assert healthy["ok"] == 10 and healthy["wrong_answers"] == 0
        inject(ref, {"kind": "failure_rate", "rate": 1.0})
        failing = probes.send_requests("caller", count=3)
        assert failing["errors"] == {error: 3}
        assert probes.error_count("caller", error) == 3
        clear(ref)
        assert probes.send_requests("caller", count=3)["ok"] == 3
        assert get_client("caller").recorder.select().chains[10] == chain
    finally:
        stop_started_servers()
