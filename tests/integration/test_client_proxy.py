"""A client through the real fault proxy (chaosagenkit proxy, Toxiproxy's API) sees its toxics."""

from __future__ import annotations

import pytest

from chaosagenkit.client import actions, probes
from chaosagenkit.control_client import ControlClient
from chaosagenkit.network import daemons as network
from chaosagenkit.sandbox import SANDBOX
from tests.integration.test_client_support import chaos_host, clean_clients

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_network, pytest.mark.chaos_middleware, pytest.mark.slow]


@pytest.fixture
def proxied(clean_clients):
    """target (echo) behind proxy "target_proxy"; yields the proxy's API client."""
    with chaos_host("target"):
        daemon = network.start_or_register_daemon({"name": "proxy"}, {})
        try:
            network.declare_proxy_from_spec({"name": "target_proxy", "upstream": "server:target"})
            yield ControlClient(daemon.url, daemon.token)
        finally:
            network.teardown()


def test_latency_toxic_shows_in_the_latency_percentiles(proxied):
    actions.create_client("caller", proxy="target_proxy")
    assert probes.send_requests("caller", count=5)["ok"] == 5
    assert probes.latency("caller", percentile=100) < 150.0
    proxied.post("/proxies/target_proxy/toxics",
                 {"type": "latency", "stream": "downstream", "attributes": {"latency": 150}})  # fmt: skip
    slowed = probes.send_requests("caller", count=5)
    assert slowed["ok"] == 5 and slowed["latency_ms"]["p50"] >= 150.0
    assert (
        probes.latency("caller", percentile=50, window_s=0) < 150.0 <= probes.latency("caller", percentile=60)
    )


def test_reset_connection_is_not_reopened_by_the_client(proxied):
    actions.create_client("caller", proxy="target_proxy")
    assert probes.send_requests("caller", count=3)["ok"] == 3
    proxied.post("/proxies/target_proxy/toxics", {"type": "reset_peer", "attributes": {"timeout": 0}})
    broken = probes.send_requests("caller", count=3)
    assert broken["ok"] == 0
    proxied.delete("/proxies/target_proxy/toxics/reset_peer_downstream")
    # the proxy passes traffic again, but agenkit's RemoteAgent keeps its dead connection
    assert probes.send_requests("caller", count=3)["ok"] == 0
    actions.create_client("fresh", proxy="target_proxy")
    assert probes.send_requests("fresh", count=3)["ok"] == 3
    assert SANDBOX.clients["caller"].endpoint == SANDBOX.clients["fresh"].endpoint
