"""The counting probes of the chaos host: faults injected and requests seen."""

from __future__ import annotations

import asyncio

import pytest
from agenkit.adapters.python import RemoteAgent
from agenkit.interfaces import Message

from chaosagenkit.sandbox import SANDBOX
from chaosagenkit.service import actions, hosts, probes

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_service]


@pytest.fixture
def host():
    ref = hosts.start_server("counted", endpoint="tcp://127.0.0.1:0")
    yield ref
    hosts.stop_started_servers()
    SANDBOX.reset()


def call(endpoint: str, count: int) -> int:
    """Send ``count`` requests with a real RemoteAgent; return how many failed."""

    async def run() -> int:
        agent = RemoteAgent("echo", endpoint=endpoint, timeout_ms=5000)
        failed = 0
        try:
            for i in range(count):
                try:
                    await agent.process(
                        Message(role="user", content=f"c{i}", metadata={"request_id": str(i)})
                    )
                except Exception:
                    failed += 1
        finally:
            await agent.close()
        return failed

    return asyncio.run(run())


def test_faults_injected_and_requests_seen_count_what_reached_the_host(host):
    assert probes.requests_seen("counted") == 0
    actions.inject_fail_first("counted", count=3, duration_s=60)
    failed = call(host.endpoint, 5)
    assert failed == 3
    assert probes.requests_seen("counted") == 5
    assert probes.faults_injected("counted") == 3
    assert probes.faults_injected("counted", kind="fail_first") == 3
    assert probes.faults_injected("counted", kind="delay") == 0
