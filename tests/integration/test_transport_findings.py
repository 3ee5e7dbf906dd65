"""What agenkit 0.92.2 does differently per transport (docs/FINDINGS-transports.md), pinned.

Each test reproduces one finding with agenkit's own servers and RemoteAgent;
if agenkit changes, the test fails and the findings must be updated.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from agenkit.adapters.python import RemoteAgent
from agenkit.adapters.python.errors import ConnectionClosedError, RemoteExecutionError
from agenkit.adapters.python.errors import ConnectionError as AgenkitConnectionError
from agenkit.interfaces import Message

from chaosagenkit.client import actions, probes
from chaosagenkit.service import hosts as process
from tests.integration.test_client_support import clean_clients, clear, inject

pytestmark = [pytest.mark.chaos, pytest.mark.slow]


@pytest.fixture
def host(clean_clients, request):
    """A chaos host serving echo on the transport given by the test's param, as "target"."""
    ref = process.start_or_register({"name": "target", "transport": request.param, "seed": 2})
    yield ref
    process.stop_started_servers()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_t1_h2c_sends_http_1_1():
    async def first_bytes() -> bytes:
        seen: list[bytes] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(await reader.read(32))
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(AgenkitConnectionError):
                await RemoteAgent("x", endpoint=f"h2c://127.0.0.1:{port}").process(
                    Message(role="user", content="a")
                )
        finally:
            server.close()
            await server.wait_closed()
        return seen[0]

    assert asyncio.run(first_bytes()).startswith(b"HEAD /health HTTP/1.1\r\n")  # HTTP/2: b"PRI * HTTP/2.0"


@pytest.mark.parametrize("host", ["h2c"], indirect=True)
def test_t1_h2c_server_refuses_http2(host):
    import httpx

    async def prior_knowledge() -> None:
        async with httpx.AsyncClient(http1=False, http2=True) as client:
            await client.get(host.endpoint.replace("h2c://", "http://") + "/health")

    with pytest.raises(httpx.TransportError):  # aiohttp closes the connection: no HTTP/2 answer
        asyncio.run(prior_knowledge())


def test_t2_a_fresh_ws_caller_waits_15_s_for_a_host_that_is_down_whatever_its_timeout():
    agent = RemoteAgent("echo", endpoint=f"ws://127.0.0.1:{free_port()}", timeout_ms=500)
    started = time.monotonic()
    with pytest.raises(AgenkitConnectionError, match="after 5 attempts"):
        asyncio.run(agent.process(Message(role="user", content="a")))
    assert time.monotonic() - started >= 15.0  # 1 + 2 + 4 + 8 s of backoff, never cut by timeout_ms


def test_t3_a_refused_grpc_connection_is_a_remote_execution_error():
    agent = RemoteAgent("echo", endpoint=f"grpc://127.0.0.1:{free_port()}", timeout_ms=5000)
    with pytest.raises(RemoteExecutionError, match="failed to connect to all addresses"):
        asyncio.run(agent.process(Message(role="user", content="a")))


@pytest.mark.parametrize("host", ["grpc"], indirect=True)
def test_t6_grpc_turns_json_looking_content_into_json_and_metadata_into_strings(host):
    async def echo() -> Message:
        agent = RemoteAgent("echo", endpoint=host.endpoint, timeout_ms=5000)
        try:
            return await agent.process(Message(role="user", content="123", metadata={"request_id": "r1"}))
        finally:
            await agent.close()

    answer = asyncio.run(echo())
    assert answer.content == 123  # sent as the string "123"
    assert answer.metadata == {"request_id": "r1", "echo": "True"}  # the echo target answers True


@pytest.mark.parametrize("host", ["http", "h2c", "tcp"], indirect=True)
def test_t7_over_http_a_stream_call_breaks_the_next_process_call(host):
    async def stream_then_process() -> tuple[BaseException, BaseException | None]:
        agent = RemoteAgent("echo", endpoint=host.endpoint, timeout_ms=5000)
        try:
            with pytest.raises(RemoteExecutionError) as streamed:  # the echo target cannot stream
                async for _chunk in agent.stream(Message(role="user", content="a")):
                    pass
            try:
                await agent.process(Message(role="user", content="b", metadata={"request_id": "b"}))
            except Exception as e:
                return streamed.value, e
            return streamed.value, None
        finally:
            try:
                await agent.close()
            except Exception:
                pass

    stream_error, next_error = asyncio.run(stream_then_process())
    if host.endpoint.startswith(("http://", "h2c://")):
        assert "Unknown error" in str(stream_error)  # HTTPAgentServer's error shape, unread by RemoteAgent
        assert isinstance(next_error, ConnectionClosedError) and "Stream ended" in str(next_error)
    else:
        assert "does not support streaming" in str(stream_error)
        assert next_error is None


@pytest.mark.parametrize(
    "host,late_answers_shift",
    [("ws", True), ("grpc", False), ("h2c", False)],
    indirect=["host"],
)
def test_t8_a_timed_out_requests_late_answer(host, late_answers_shift):
    actions.create_client("caller", server="target", timeout_ms=150)
    assert probes.send_requests("caller", count=1)["ok"] == 1  # connected
    inject(host, {"kind": "delay", "delay_ms": 2000})
    assert probes.send_requests("caller", count=2)["errors"] == {"AgentTimeoutError": 2}
    clear(host)  # releases the held requests: their answers are sent now
    later = probes.send_requests("caller", count=4)
    assert later["ok"] == 4
    assert later["wrong_answers"] == (4 if late_answers_shift else 0)
