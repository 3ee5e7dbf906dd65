"""Real agenkit traffic through the real proxy daemon: what an agenkit user sees under each fault.

The tables record agenkit 0.92.2's observed behaviour (see docs/network.md,
"What agenkit does"). They are findings, not wishes: if agenkit changes,
these tests say so.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator

import pytest
from agenkit.adapters.python import RemoteAgent
from agenkit.adapters.python.errors import (
    AgentTimeoutError,
    ConnectionClosedError,
    InvalidMessageError,
    MalformedPayloadError,
    RemoteExecutionError,
)
from agenkit.adapters.python.errors import ConnectionError as AgenkitConnectionError
from agenkit.interfaces import Message

from chaosagenkit.control_client import ControlClient
from chaosagenkit.network import daemons
from tests.integration.agenkit_support import agenkit_server

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_network, pytest.mark.slow]


@pytest.fixture(scope="module")
def api() -> Iterator[ControlClient]:
    proc, ready = daemons.start_daemon(seed=5)
    yield ControlClient(ready["api"])
    daemons.stop_daemon(proc)


async def _through_proxy(
    api: ControlClient, transport: str, toxics: list[dict], requests: int, timeout_ms: int = 5000
) -> tuple[list, Exception | None]:
    """Serve echo, proxy it, warm a RemoteAgent up, add ``toxics``, send ``requests`` requests.

    Returns, per request, the answer's content or the exception raised, and
    what ``RemoteAgent.close()`` raised (None if nothing).
    """
    async with agenkit_server(transport) as upstream:
        proxy = await asyncio.to_thread(api.post, "/proxies", {"name": "agent", "upstream": upstream})
        try:
            agent = RemoteAgent("echo", endpoint=f"{transport}://{proxy['listen']}", timeout_ms=timeout_ms)
            warm = await agent.process(Message(role="user", content="warm-up"))
            assert warm.content == "warm-up"
            for toxic in toxics:
                await asyncio.to_thread(api.post, "/proxies/agent/toxics", toxic)
            outcomes = []
            for i in range(requests):
                try:
                    answer = await agent.process(Message(role="user", content=f"request {i}"))
                    outcomes.append(answer.content)
                except Exception as e:  # what the user sees is the point of the test
                    outcomes.append(e)
            try:
                await agent.close()
                closing = None
            except Exception as e:
                closing = e
            return outcomes, closing
        finally:
            await asyncio.to_thread(api.delete, "/proxies/agent")


def outcomes_of(api, transport, toxics, requests=2, **kwargs):
    return asyncio.run(_through_proxy(api, transport, toxics, requests, **kwargs))[0]


def malformed(kind: str, stream: str = "downstream") -> dict:
    return {"type": "malformed_frame", "stream": stream, "attributes": {"kind": kind}}


# (transport, stream, kind) -> (first request's error, words, second request on the same RemoteAgent)
MALFORMED_FINDINGS = [
    (
        "tcp",
        "downstream",
        "invalid_json",
        MalformedPayloadError,
        "Failed to decode JSON",
        MalformedPayloadError,
    ),
    (
        "tcp",
        "downstream",
        "invalid_utf8",
        MalformedPayloadError,
        "Failed to decode UTF-8",
        MalformedPayloadError,
    ),
    (
        "tcp",
        "downstream",
        "truncated",
        ConnectionClosedError,
        "Connection closed while expecting",
        ConnectionClosedError,
    ),
    # the refused prefix leaves the envelope in the stream: the next read takes JSON text as a length
    (
        "tcp",
        "downstream",
        "oversized_length",
        MalformedPayloadError,
        "Message size 10485761 exceeds maximum",
        MalformedPayloadError,
    ),
    (
        "tcp",
        "downstream",
        "wrong_type",
        InvalidMessageError,
        "Expected 'response' but got 'request'",
        InvalidMessageError,
    ),
    (
        "tcp",
        "downstream",
        "missing_fields",
        InvalidMessageError,
        "Missing 'payload' field",
        InvalidMessageError,
    ),
    # the server answers a request it cannot decode with an error envelope, then hangs up
    ("tcp", "upstream", "invalid_json", RemoteExecutionError, "Internal server error", ConnectionClosedError),
    ("tcp", "upstream", "truncated", ConnectionClosedError, "Connection closed", ConnectionClosedError),
    # LocalAgent does not enforce the 10 MiB maximum when reading: it waits for 10 MiB forever
    ("tcp", "upstream", "oversized_length", AgentTimeoutError, "timed out", AgentTimeoutError),
    (
        "tcp",
        "upstream",
        "wrong_type",
        RemoteExecutionError,
        "Expected 'request' but got 'response'",
        RemoteExecutionError,
    ),
    (
        "http",
        "downstream",
        "invalid_json",
        MalformedPayloadError,
        "Failed to decode JSON",
        MalformedPayloadError,
    ),
    (
        "http",
        "downstream",
        "invalid_utf8",
        MalformedPayloadError,
        "Failed to decode UTF-8",
        MalformedPayloadError,
    ),
    (
        "http",
        "downstream",
        "truncated",
        AgenkitConnectionError,
        "peer closed connection",
        AgenkitConnectionError,
    ),
    (
        "http",
        "downstream",
        "oversized_length",
        AgenkitConnectionError,
        "peer closed connection",
        AgenkitConnectionError,
    ),
    (
        "http",
        "downstream",
        "wrong_type",
        InvalidMessageError,
        "Expected 'response' but got 'request'",
        InvalidMessageError,
    ),
    (
        "http",
        "downstream",
        "missing_fields",
        InvalidMessageError,
        "Missing 'payload' field",
        InvalidMessageError,
    ),
    # HTTPAgentServer answers an undecodable body with 500 (not 400)
    ("http", "upstream", "invalid_json", AgenkitConnectionError, "HTTP error 500", AgenkitConnectionError),
    ("http", "upstream", "missing_fields", AgenkitConnectionError, "HTTP error 400", AgenkitConnectionError),
]


@pytest.mark.parametrize(
    "transport,stream,kind,error,words,then",
    MALFORMED_FINDINGS,
    ids=["-".join(f[:3]) for f in MALFORMED_FINDINGS],
)
def test_each_malformed_kind_gives_the_agenkit_error_a_user_sees(
    api, transport, stream, kind, error, words, then
):
    first, second = outcomes_of(api, transport, [malformed(kind, stream)], timeout_ms=1500)
    assert isinstance(first, error), repr(first)
    assert words in str(first)
    assert isinstance(second, then), repr(second)


def test_over_http_a_request_of_the_wrong_type_is_processed_anyway(api):
    # Finding: HTTPAgentServer does not look at the envelope's type (LocalAgent refuses it).
    assert outcomes_of(api, "http", [malformed("wrong_type", "upstream")]) == ["request 0", "request 1"]


@pytest.mark.parametrize("transport", ["tcp", "http"])
def test_latency_is_added_to_every_round_trip(api, transport):
    async def scenario():
        async with agenkit_server(transport) as upstream:
            proxy = await asyncio.to_thread(api.post, "/proxies", {"name": "agent", "upstream": upstream})
            agent = RemoteAgent("echo", endpoint=f"{transport}://{proxy['listen']}")
            try:

                async def median_round_trip() -> float:
                    times = []
                    for _ in range(5):
                        started = time.perf_counter()
                        await agent.process(Message(role="user", content="t"))
                        times.append(time.perf_counter() - started)
                    return statistics.median(times)

                baseline = await median_round_trip()
                await asyncio.to_thread(
                    api.post, "/proxies/agent/toxics", {"type": "latency", "attributes": {"latency": 300}}
                )
                slowed = await median_round_trip()
                return slowed - baseline
            finally:
                await agent.close()
                await asyncio.to_thread(api.delete, "/proxies/agent")

    added = asyncio.run(scenario())
    assert 0.29 <= added < 1.0, added  # wide: a 2-core machine under test load


DROP_FINDINGS = [
    (
        # on a connection already open, reset_peer closes it (FIN), as Toxiproxy does
        "reset",
        {"type": "reset_peer", "attributes": {"timeout": 0}},
        ConnectionClosedError,
        "Connection closed",
    ),
    ("cut", {"type": "limit_data", "attributes": {"bytes": 10}}, ConnectionClosedError, "Connection closed"),
    ("timeout", {"type": "timeout", "attributes": {"timeout": 0}}, AgentTimeoutError, "timed out"),
    ("drop", {"type": "drop_frame"}, AgentTimeoutError, "timed out"),
]


@pytest.mark.parametrize("what,toxic,error,words", DROP_FINDINGS, ids=[f[0] for f in DROP_FINDINGS])
def test_connection_faults_surface_as_agenkit_errors(api, what, toxic, error, words):
    first, second = outcomes_of(api, "tcp", [toxic], timeout_ms=1000)
    assert isinstance(first, error), repr(first)
    assert words in str(first)
    if what in ("reset", "cut"):
        # Finding: RemoteAgent never reconnects: the broken connection fails every later request
        assert isinstance(second, AgenkitConnectionError | ConnectionClosedError), repr(second)


def test_closing_a_remote_agent_after_a_reset_raises(api):
    # Finding: RemoteAgent.close() lets the socket's ConnectionResetError escape, so a
    # caller's clean-up (finally: await agent.close()) fails too. reset_peer resets (RST)
    # a connection opened while it is on (an open one it closes with FIN, as Toxiproxy).
    async def scenario():
        async with agenkit_server("tcp") as upstream:
            proxy = await asyncio.to_thread(api.post, "/proxies", {"name": "agent", "upstream": upstream})
            try:
                await asyncio.to_thread(
                    api.post, "/proxies/agent/toxics", {"type": "reset_peer", "attributes": {"timeout": 0}}
                )
                agent = RemoteAgent("echo", endpoint=f"tcp://{proxy['listen']}", timeout_ms=1000)
                with pytest.raises(Exception):  # noqa: B017  # what it is, is the other test's business
                    await agent.process(Message(role="user", content="reset"))
                try:
                    await agent.close()
                except Exception as e:
                    return e
                return None
            finally:
                await asyncio.to_thread(api.delete, "/proxies/agent")

    closing = asyncio.run(scenario())
    assert isinstance(closing, ConnectionResetError), repr(closing)


def test_a_disabled_proxy_breaks_live_agents_for_good_and_refuses_new_ones(api):
    broken = (AgenkitConnectionError, ConnectionClosedError)

    async def scenario():
        async with agenkit_server("tcp") as upstream:
            proxy = await asyncio.to_thread(api.post, "/proxies", {"name": "agent", "upstream": upstream})
            endpoint = f"tcp://{proxy['listen']}"
            agent = RemoteAgent("echo", endpoint=endpoint, timeout_ms=2000)
            fresh = RemoteAgent("echo", endpoint=endpoint, timeout_ms=2000)
            try:
                await agent.process(Message(role="user", content="before"))
                await asyncio.to_thread(api.post, "/proxies/agent", {"enabled": False})
                with pytest.raises(broken):
                    await agent.process(Message(role="user", content="while down"))
                with pytest.raises(AgenkitConnectionError, match="Failed to connect"):
                    await fresh.process(Message(role="user", content="new client"))
                await asyncio.to_thread(api.post, "/proxies/agent", {"enabled": True})
                with pytest.raises(broken):
                    await agent.process(Message(role="user", content="after"))  # no reconnect, ever
                assert (await fresh.process(Message(role="user", content="again"))).content == "again"
            finally:
                for client in (agent, fresh):
                    try:
                        await client.close()
                    except OSError:
                        pass  # close() after a broken connection raises (see above)
                await asyncio.to_thread(api.delete, "/proxies/agent")

    asyncio.run(scenario())


def test_a_duplicated_response_is_handed_to_the_next_request(api):
    # Finding: RemoteAgent does not match a response's id to its request.
    outcomes = outcomes_of(api, "tcp", [{"type": "duplicate_frame", "toxicity": 1.0}], requests=2)
    assert outcomes == ["request 0", "request 0"]


def test_delay_frame_slows_only_chosen_messages_and_they_still_arrive(api):
    started = time.perf_counter()
    outcomes = outcomes_of(api, "tcp", [{"type": "delay_frame", "attributes": {"delay": 400}}], requests=2)
    assert outcomes == ["request 0", "request 1"]
    assert time.perf_counter() - started >= 0.8
