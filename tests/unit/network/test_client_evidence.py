"""Evidence that a toxic reached the traffic, from the run's clients (a proxy without counters)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from chaosagenkit.client.recorder import Recorder
from chaosagenkit.network.operations import impacted_by_client_evidence
from chaosagenkit.sandbox import SANDBOX, ProxyRef

pytestmark = [pytest.mark.chaos_network]


@dataclass
class Caller:
    """What the evidence reads of a client harness: its endpoint and its recorder."""

    endpoint: str
    recorder: Recorder = field(default_factory=Recorder)


@pytest.fixture
def sandbox():
    SANDBOX.reset()
    SANDBOX.proxies["p"] = ProxyRef(name="p", daemon="d", listen="127.0.0.1:4000", upstream="127.0.0.1:9")
    yield SANDBOX
    SANDBOX.reset()


def inject_at(t: float) -> None:
    entry = SANDBOX.record_event("inject", "p", kind="latency", fault_id="slow")
    entry["t"] = t


def test_a_request_slower_than_all_before_the_toxic_is_evidence(sandbox):
    caller = sandbox.clients["c"] = Caller("tcp://127.0.0.1:4000")
    for t in (1.0, 2.0):
        caller.recorder.record_answer(t, 5.0, False, 0)
    inject_at(3.0)
    caller.recorder.record_answer(4.0, 4.0, False, 0)
    assert impacted_by_client_evidence("p", "slow") is False  # no slower than before
    caller.recorder.record_answer(5.0, 500.0, False, 0)
    assert impacted_by_client_evidence("p", "slow") is True


def test_a_failed_request_while_the_toxic_was_on_is_evidence(sandbox):
    caller = sandbox.clients["c"] = Caller("http://127.0.0.1:4000")
    inject_at(1.0)
    caller.recorder.record(2.0, 1.0, TimeoutError(), False, 0)
    assert impacted_by_client_evidence("p", "slow") is True


def test_traffic_that_bypassed_the_proxy_or_came_after_the_clear_is_no_evidence(sandbox):
    bypass = sandbox.clients["bypass"] = Caller("tcp://127.0.0.1:5000")
    through = sandbox.clients["through"] = Caller("tcp://127.0.0.1:4000")
    inject_at(1.0)
    bypass.recorder.record(2.0, 1.0, TimeoutError(), False, 0)
    SANDBOX.record_event("clear", "p", fault_id="slow")["t"] = 3.0
    through.recorder.record(4.0, 1.0, TimeoutError(), False, 0)
    assert impacted_by_client_evidence("p", "slow") is False
    assert impacted_by_client_evidence("p", "never-injected") is False
