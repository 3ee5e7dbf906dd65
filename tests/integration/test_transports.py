"""Every agenkit transport end to end: the chaos host serves, the client harness calls.

For each of the six schemes (tcp, unix, ws, http, h2c, grpc) a real
``chaosagenkit serve`` child serves the echo target with agenkit's own server
for that scheme, and a client of the harness (agenkit ``RemoteAgent`` under
agenkit middleware) calls it. Each fault kind must reach the traffic on each
transport; crash, restart (same address; for unix the same socket path) and
stop must work on each, and nothing is left behind. What the caller sees is
agenkit's behaviour per transport (docs/service.md, docs/FINDINGS-transports.md):
the tables below pin it down, so a change in agenkit shows up here.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from chaosagenkit.client import actions as client_actions
from chaosagenkit.client import probes as client_probes
from chaosagenkit.client import registry
from chaosagenkit.client.registry import get_client
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.sandbox import SANDBOX
from chaosagenkit.service import hosts as process
from chaosagenkit.service import probes as service_probes
from chaosagenkit.service.chaos_agent import CRASH_EXIT_CODE, PADDING_KEY
from tests.integration.test_client_support import clean_clients, clear, inject
from tests.integration.test_service_support import call, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_service, pytest.mark.slow]

TRANSPORTS = ("tcp", "unix", "ws", "http", "h2c", "grpc")

#: What the caller sees when the served agent raises (any error kind): agenkit's mapping.
AGENT_ERROR = {
    "tcp": "RemoteExecutionError",
    "unix": "RemoteExecutionError",
    "ws": "RemoteExecutionError",
    "http": "ConnectionError",  # HTTPAgentServer answers 500; HTTPTransport raises ConnectionError
    "h2c": "ConnectionError",
    "grpc": "RemoteExecutionError",  # GRPCServer answers RESPONSE_TYPE_ERROR
}
#: The request in flight when the host crashes.
CRASH_IN_FLIGHT = {
    "tcp": "ConnectionClosedError",
    "unix": "ConnectionClosedError",
    "ws": "ConnectionClosedError",
    "http": "ConnectionError",
    "h2c": "ConnectionError",
    "grpc": "RemoteExecutionError",  # GRPCTransport turns UNAVAILABLE into an error envelope
}
#: Does the SAME RemoteAgent get answers again once the host is back on its address?
RECOVERS_AFTER_RESTART = {
    "tcp": False,  # RemoteAgent never reconnects (FINDINGS F1)
    "unix": False,
    "ws": True,  # WebSocketTransport reconnects on the next send
    "http": True,  # httpx opens a new connection
    "h2c": True,
    "grpc": True,  # the gRPC channel reconnects (after its reconnect backoff)
}


@pytest.fixture
def run(clean_clients):
    """A clean sandbox with a run seed; every host and client is gone afterwards."""
    SANDBOX.seed = 77
    yield SANDBOX
    process.stop_started_servers()


def serve(transport: str, name: str = "target"):
    ref = process.start_or_register({"name": name, "transport": transport, "seed": 5})
    assert ref.endpoint.startswith(f"{transport}://")
    return ref


def error_names(client: str) -> dict[str, int]:
    return client_probes.outcomes_summary(client, last_batch=True)["errors"]


def listening(endpoint: str) -> bool:
    """True when something accepts connections at ``endpoint``'s address."""
    scheme, _, rest = endpoint.partition("://")
    if scheme == "unix":
        family, address = socket.AF_UNIX, rest
    else:
        host, _, port = rest.rpartition(":")
        family, address = socket.AF_INET, (host, int(port))
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(address)
        except OSError:
            return False
    return True


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_host_serves_and_every_request_fault_reaches_the_caller(run, transport):
    ref = serve(transport)
    health = process.client_for(ref).get("/health")
    assert health["transport"] == transport and health["endpoint"] == ref.endpoint
    assert service_probes.server_is_up("target") is True
    client_actions.create_client("caller", server="target", timeout_ms=5000)
    healthy = client_probes.send_requests("caller", count=10)
    assert (healthy["ok"], healthy["wrong_answers"]) == (10, 0)

    for kind in ("exception", "connection", "timeout"):
        inject(ref, {"kind": "fail_first", "count": 2, "error": kind})
        batch = client_probes.send_requests("caller", count=3)
        assert batch["ok"] == 1 and error_names("caller") == {AGENT_ERROR[transport]: 2}, kind
        clear(ref)
    assert service_probes.faults_injected("target", "fail_first") == 6

    inject(ref, {"kind": "delay", "delay_ms": 300})
    delayed = client_probes.send_requests("caller", count=2)
    assert delayed["ok"] == 2
    assert client_probes.latency("caller", percentile=50, last_batch=True) >= 290  # never shorter
    clear(ref)
    assert service_probes.faults_injected("target", "delay") == 2

    inject(ref, {"kind": "large_response", "size_bytes": 100_000})
    (padded,) = call(ref.endpoint, 1)
    assert padded.ok and padded.matches and len(padded.reply.metadata[PADDING_KEY]) == 100_000
    clear(ref)

    stats = service_probes.server_stats("target")
    assert stats["requests"] == 10 + 9 + 2 + 1
    assert service_probes.requests_seen("target") == stats["requests"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_crash_restart_and_stop_on_the_same_address(run, transport):
    ref = serve(transport)
    socket_dir = Path(ref.endpoint.removeprefix("unix://")).parent if transport == "unix" else None
    client_actions.create_client("caller", server="target", timeout_ms=2000)
    assert client_probes.send_requests("caller", count=3)["ok"] == 3

    inject(ref, {"kind": "crash", "when": "next_request"})
    crashed = client_probes.send_requests("caller", count=1)
    assert crashed["ok"] == 0 and error_names("caller") == {CRASH_IN_FLIGHT[transport]: 1}
    assert ref.process.wait(timeout=15) == CRASH_EXIT_CODE
    assert service_probes.server_is_up("target") is False
    assert not listening(ref.endpoint)

    new = process.restart_server("target")
    assert (new.endpoint, new.control_url) == (ref.endpoint, ref.control_url)
    assert service_probes.server_is_up("target") is True
    assert service_probes.requests_seen("target") == 0  # a new process
    fresh = client_actions.create_client("fresh", server="target")
    assert fresh["endpoint"] == ref.endpoint
    assert client_probes.send_requests("fresh", count=3)["ok"] == 3

    # The old client, whose connection the crash broke:
    if RECOVERS_AFTER_RESTART[transport]:
        wait_for(
            lambda: client_probes.send_requests("caller", count=1)["ok"] == 1,
            timeout_s=20,
            what=f"the old {transport} client to get an answer again",
        )
    else:
        assert client_probes.send_requests("caller", count=3)["ok"] == 0

    assert process.stop_server("target") == 0
    assert service_probes.server_is_up("target") is False
    assert not listening(ref.endpoint)
    process.stop_started_servers()
    if socket_dir is not None:
        assert not socket_dir.exists()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_crash_now_and_after_requests(run, transport):
    ref = serve(transport)
    client_actions.create_client("caller", server="target", timeout_ms=2000)
    inject(ref, {"kind": "crash", "when": "after_requests", "after_requests": 2})
    batch = client_probes.send_requests("caller", count=3)
    assert batch["ok"] == 2
    assert ref.process.wait(timeout=15) == CRASH_EXIT_CODE
    new = process.restart_server("target")
    process.client_for(new).post("/crash", {"when": "now"})
    assert new.process.wait(timeout=15) == CRASH_EXIT_CODE
    assert not listening(new.endpoint)


def test_a_client_over_unix_through_a_tcp_proxy_is_refused_in_one_line(run):
    from chaosagenkit.sandbox import ProxyRef

    SANDBOX.proxies["p"] = ProxyRef(name="p", daemon="d", listen="127.0.0.1:9", upstream="127.0.0.1:10")
    with pytest.raises(ConfigurationError, match=r"'proxy' 'p' listens on TCP .*unix:/PATH' for unix://"):
        registry.create_client("caller", proxy="p", transport="unix")
    with pytest.raises(ConfigurationError):
        get_client("caller")  # nothing was registered


def test_a_client_over_unix_goes_through_a_proxy_that_listens_beside_the_socket(run):
    from chaosagenkit.network import actions as network_actions
    from chaosagenkit.network import daemons
    from chaosagenkit.network import probes as network_probes

    ref = serve("unix")
    try:
        daemons.start_or_register_daemon({}, {})
        proxy = daemons.declare_proxy_from_spec({"name": "p", "upstream": "server:target"})
        socket_dir = Path(ref.endpoint.removeprefix("unix://")).parent
        assert proxy.listen == f"unix:{socket_dir / 'proxy-p.sock'}"
        client = client_actions.create_client("caller", proxy="p")
        assert client["endpoint"] == f"unix://{socket_dir / 'proxy-p.sock'}"
        assert client_probes.send_requests("caller", count=3)["ok"] == 3
        toxic = network_actions.inject_latency("p", latency_ms=1, duration_s=30)
        assert client_probes.send_requests("caller", count=2)["ok"] == 2
        assert network_probes.traffic_impacted("p", toxic["name"])  # the toxic met unix traffic
    finally:
        daemons.teardown()
