"""ChaosAgent in-process, wrapped by real agenkit middleware, with no server and no socket."""

from __future__ import annotations

import asyncio

import pytest
from agenkit.adapters.python.errors import AgentTimeoutError
from agenkit.adapters.python.errors import ConnectionError as AgenkitConnectionError
from agenkit.interfaces import Message
from agenkit.middleware import (
    CircuitBreakerConfig,
    CircuitBreakerDecorator,
    RetryConfig,
    RetryDecorator,
)

from chaosagenkit.faults.service import Decision
from chaosagenkit.middleware_view import describe_chain
from chaosagenkit.service.chaos_agent import (
    PADDING_KEY,
    ChaosAgent,
    InjectedFailure,
    LatencyRecorder,
)
from chaosagenkit.targets import EchoAgent

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_service, pytest.mark.chaos_middleware]


def request(i: int = 0) -> Message:
    return Message(role="user", content=f"c{i}", metadata={"request_id": f"r{i}"})


def test_it_is_a_transparent_agenkit_decorator():
    chaos = ChaosAgent(EchoAgent(), seed=1)
    assert chaos.name == "echo" and isinstance(chaos._agent, EchoAgent)
    assert not hasattr(chaos, "metrics")  # middleware_view must not mistake it for agenkit's
    reply = asyncio.run(chaos.process(request()))
    assert (reply.content, reply.metadata["request_id"]) == ("c0", "r0")
    assert chaos.stats["requests"] == 1 and chaos.stats["latency_ms"]["count"] == 1


@pytest.mark.parametrize(
    "error,exc_type",
    [("exception", InjectedFailure), ("connection", AgenkitConnectionError), ("timeout", AgentTimeoutError)],
)
def test_error_kinds_raise_agenkits_own_exception_types(error, exc_type):
    chaos = ChaosAgent(EchoAgent(), seed=1)
    (fault,) = chaos.add_faults({"kind": "fail_first", "count": 1, "error": error})
    with pytest.raises(exc_type, match=f"chaosagenkit injected {error} failure \\(fault {fault.id}"):
        asyncio.run(chaos.process(request()))
    assert asyncio.run(chaos.process(request(1))).content == "c1"


def test_agenkit_retry_rides_over_fail_first():
    chaos = ChaosAgent(EchoAgent(), seed=1)
    chaos.add_faults({"kind": "fail_first", "count": 2})
    retrying = RetryDecorator(chaos, RetryConfig(max_retries=3, initial_delay=0.001, max_delay=0.002))
    reply = asyncio.run(retrying.process(request(7)))
    assert reply.metadata["request_id"] == "r7"
    assert chaos.stats["injected"] == {"fail_first": 2} and chaos.stats["requests"] == 3
    (retry,) = describe_chain(retrying)  # ChaosAgent itself is not listed as middleware
    assert retry["kind"] == "retry"


def test_agenkit_circuit_breaker_opens_under_total_failure():
    chaos = ChaosAgent(EchoAgent(), seed=1)
    chaos.add_faults({"kind": "failure_rate", "rate": 1.0})
    breaker = CircuitBreakerDecorator(
        chaos, CircuitBreakerConfig(failure_threshold=3, recovery_timeout_ms=60_000)
    )

    async def hammer() -> list[BaseException]:
        errors = []
        for i in range(6):
            try:
                await breaker.process(request(i))
            except Exception as e:
                errors.append(e)
        return errors

    errors = asyncio.run(hammer())
    assert len(errors) == 6
    assert chaos.stats["requests"] == 3  # the breaker stopped calling after 3 failures
    assert describe_chain(breaker)[0]["state"] == "open"


def test_large_response_pads_and_keeps_the_answer():
    chaos = ChaosAgent(EchoAgent(), seed=1)
    chaos.add_faults({"kind": "large_response", "size_bytes": 1000})
    reply = asyncio.run(chaos.process(request(3)))
    assert len(reply.metadata[PADDING_KEY]) == 1000
    assert (reply.content, reply.metadata["request_id"]) == ("c3", "r3")


def test_removing_a_delay_fault_releases_waiting_requests():
    chaos = ChaosAgent(EchoAgent(), seed=1)
    (fault,) = chaos.add_faults({"kind": "delay", "delay_ms": 600_000})

    async def scenario() -> Message:
        waiting = asyncio.create_task(chaos.process(request()))
        while not chaos._delayed:  # wait until the request is held
            await asyncio.sleep(0)
        chaos.remove_fault(fault.id)
        return await asyncio.wait_for(waiting, timeout=30)

    assert asyncio.run(scenario()).content == "c0"
    assert chaos._delayed == {}


def test_crash_calls_the_crash_hook_and_never_the_agent():
    # A fake crash hook: the real one would os._exit the test runner. The
    # integration tests crash real hosts.
    crashes: list[Decision] = []

    def record(decision: Decision) -> None:
        crashes.append(decision)
        raise SystemExit(70)

    chaos = ChaosAgent(EchoAgent(), seed=1, crash=record)
    chaos.add_faults({"kind": "crash", "when": "after_requests", "after_requests": 1})
    asyncio.run(chaos.process(request(0)))
    with pytest.raises(SystemExit):
        asyncio.run(chaos.process(request(1)))
    assert [d.request for d in crashes] == [2] and crashes[0].error_fault == "f1"


def test_expiry_uses_the_injected_clock():
    now = [1000.0]
    chaos = ChaosAgent(EchoAgent(), seed=1, clock=lambda: now[0])
    chaos.add_faults({"kind": "failure_rate", "rate": 1.0, "duration_s": 5})
    with pytest.raises(InjectedFailure):
        asyncio.run(chaos.process(request()))
    now[0] = 1005.0
    assert asyncio.run(chaos.process(request())).content == "c0"
    assert chaos.active_faults() == []


def test_latency_summary():
    recorder = LatencyRecorder(window=100)
    assert recorder.summary() == {"count": 0, "window": 0, "p50": None, "p95": None, "p99": None, "max": None}
    for ms in range(1, 201):
        recorder.record(float(ms))
    summary = recorder.summary()
    assert summary["count"] == 200 and summary["window"] == 100 and summary["max"] == 200
    assert summary["p50"] == 150.5 and summary["p99"] == 199.01  # chaosagenkit.stats.percentile
