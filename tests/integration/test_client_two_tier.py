"""Two tiers: a served relay calls a backend through its own agenkit middleware.

caller (no middleware) -> chaos host "relay" (chaosagenkit.targets:relay, with
retry + circuit breaker) -> chaos host "backend" (echo). Faults go on the
backend; the relay's middleware is read through the relay host's
GET /middleware with the probes' ``server=`` argument.
"""

from __future__ import annotations

import json

import pytest

from chaosagenkit.client import actions, probes
from tests.integration.test_client_support import (
    chaos_host,
    clean_clients,
    clear,
    inject,
    register,
)

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_middleware, pytest.mark.slow]

RELAY_MIDDLEWARE = [
    {"type": "retry", "max_retries": 2, "initial_delay": 0.01, "no_retry_on": ["CircuitBreakerError"]},
    {"type": "circuit_breaker", "failure_threshold": 4, "recovery_timeout_ms": 200, "success_threshold": 1},
]


@pytest.fixture(scope="module")
def hosts():
    with chaos_host("backend") as backend:
        env = {
            "CHAOSAGENKIT_RELAY_ENDPOINT": backend.endpoint,
            "CHAOSAGENKIT_RELAY_MIDDLEWARE": json.dumps(RELAY_MIDDLEWARE),
            "CHAOSAGENKIT_RELAY_TIMEOUT_MS": "2000",
        }
        with chaos_host("relay", agent="chaosagenkit.targets:relay", env=env) as relay:
            yield backend, relay


def test_backend_faults_show_in_the_relays_own_middleware(hosts, clean_clients):
    backend, relay = hosts
    register(backend, relay)
    actions.create_client("caller", server="relay")

    healthy = probes.send_requests("caller", count=5)
    assert healthy["ok"] == 5 and healthy["wrong_answers"] == 0  # content and request_id survive the relay
    chain = probes.middleware_metrics(server="relay")
    assert [entry["kind"] for entry in chain] == ["retry", "circuit_breaker"]
    assert probes.circuit_state(server="relay") == "closed"
    assert probes.retry_count(server="relay") == 0

    inject(backend, {"kind": "failure_rate", "rate": 1.0})
    failing = probes.send_requests("caller", count=4)
    # request 1: 2 attempts fail; request 2: 2 more open the relay's breaker; then rejected fast
    assert failing["ok"] == 0 and failing["errors"] == {"RemoteExecutionError": 4}
    assert probes.circuit_state(server="relay") == "open"
    relay_breaker = probes.circuit_metrics(server="relay")
    assert relay_breaker["failed_requests"] == 4 and relay_breaker["rejected_requests"] >= 2
    assert probes.retry_count(server="relay") == 2
    assert probes.retry_metrics(server="relay")["failed_after_retries"] == 4

    clear(backend)
    assert (
        probes.time_to_recover("caller", after_event="clear", target="backend", consecutive=3, timeout_s=20)
        >= 0
    )
    assert probes.circuit_state(server="relay") == "closed"
    with pytest.raises(Exception, match="circuit_state: 'client' give exactly one of 'client' or 'server'"):
        probes.circuit_state(client="caller", server="relay")
    with pytest.raises(Exception, match="server 'relay' has no caching middleware #0"):
        probes.cache_metrics(server="relay")
