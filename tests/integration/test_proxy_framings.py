"""Frame toxics on every agenkit transport, through real sockets, with agenkit's own servers and clients.

Each case serves the echo target over one transport (``LocalAgent``,
``HTTPAgentServer``, ``GRPCServer``), puts the proxy in front (a unix
listener for unix://), adds one frame toxic and calls twice with
``RemoteAgent``. The expectations are what agenkit 0.92.2 was seen to do
(docs/network.md tables them); a case that changes means agenkit changed.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path

import pytest
from agenkit.adapters.python import RemoteAgent
from agenkit.interfaces import Message

from chaosagenkit.network.server import ProxyServer
from tests.integration.agenkit_support import TRANSPORTS, agenkit_server, endpoint

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_network]

TIMEOUT_MS = 1500
GRPC_BUG = "'NoneType' object has no attribute 'type'"  # agenkit's GRPCTransport on a failed call


async def calls(transport: str, toxic: dict | None) -> tuple[list[str], int | None]:
    """Two calls through the proxy: each "ok <content>" or "<error class>: <message>"; and
    how many times the toxic acted."""
    with tempfile.TemporaryDirectory(prefix="cak-") as folder:
        async with agenkit_server(transport) as upstream:
            server = ProxyServer(seed=1)
            try:
                listen = f"unix:{Path(folder) / 'proxy.sock'}" if transport == "unix" else "127.0.0.1:0"
                proxy = await server.create_proxy({"name": "p", "listen": listen, "upstream": upstream})
                if toxic is not None:
                    await server.create_toxic("p", {"name": "t", **toxic})
                agent = RemoteAgent("echo", endpoint=endpoint(transport, proxy.listen), timeout_ms=TIMEOUT_MS)
                outcomes = []
                for text in ("first", "second"):
                    try:
                        reply = await asyncio.wait_for(agent.process(Message(role="user", content=text)), 10)
                        outcomes.append(f"ok {reply.content}")
                    except Exception as e:  # what agenkit raises is the observation
                        outcomes.append(f"{type(e).__name__}: {e}")
                try:
                    await asyncio.wait_for(agent.close(), 5)
                except Exception:
                    logging.getLogger(__name__).debug("close after a fault failed", exc_info=True)
                acted = proxy.toxic_history["t"].acted if toxic is not None else None
                return outcomes, acted
            finally:
                await server.close()


def malformed(kind: str, stream: str = "downstream") -> dict:
    return {"type": "malformed_frame", "stream": stream, "attributes": {"kind": kind}}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_transport_passes_through_frame_toxics_that_do_not_fire(transport):
    async def scenario():
        for toxic in (None, {"type": "drop_frame", "stream": "downstream", "toxicity": 0.0}):
            outcomes, acted = await calls(transport, toxic)
            assert outcomes == ["ok first", "ok second"]
            assert acted in (None, 0)

    asyncio.run(scenario())


# (transport, toxic, what the FIRST call raises (class, part of its message))
CASES = [
    ("tcp", malformed("invalid_json"), "MalformedPayloadError", "Failed to decode JSON"),
    ("tcp", malformed("wrong_length"), "MalformedPayloadError", "Failed to decode JSON"),
    ("tcp", malformed("oversized_length"), "MalformedPayloadError", "exceeds maximum"),
    ("unix", malformed("invalid_utf8"), "MalformedPayloadError", "Failed to decode UTF-8"),
    ("unix", malformed("truncated"), "ConnectionClosedError", "more bytes"),
    ("unix", malformed("missing_fields", "upstream"), "RemoteExecutionError", "Internal"),
    ("ws", malformed("invalid_json"), "MalformedPayloadError", "Failed to decode JSON"),
    ("ws", malformed("wrong_type"), "InvalidMessageError", "Expected 'response' but got 'request'"),
    ("ws", malformed("truncated"), "ConnectionClosedError", "no close frame"),
    ("ws", malformed("oversized_length"), "ConnectionClosedError", "1009"),
    ("ws", malformed("broken_header"), "ConnectionClosedError", "1002"),
    ("ws", malformed("broken_header", "upstream"), "ConnectionClosedError", "1002"),
    ("ws", malformed("wrong_compressed_flag"), "MalformedPayloadError", "UTF-8"),
    ("http", malformed("broken_header"), "ConnectionError", "illegal header line"),
    ("http", malformed("invalid_json", "upstream"), "ConnectionError", "HTTP error 500"),
    ("h2c", malformed("invalid_json"), "MalformedPayloadError", "Failed to decode JSON"),
    ("h2c", malformed("truncated"), "ConnectionError", "peer closed connection"),
    ("h2c", malformed("broken_header", "upstream"), "ConnectionError", "HTTP error 400"),
    ("grpc", malformed("invalid_protobuf", "upstream"), "RemoteExecutionError", "DecodeError"),
    ("grpc", malformed("wrong_compressed_flag"), "RemoteExecutionError", "Compression bit set"),
    ("grpc", malformed("oversized_length"), "RemoteExecutionError", "larger than max"),
    ("grpc", malformed("oversized_length", "upstream"), "RemoteExecutionError", "larger than max"),
    ("grpc", malformed("invalid_protobuf"), "ConnectionError", GRPC_BUG),
    ("grpc", malformed("broken_header"), "ConnectionError", GRPC_BUG),
    ("tcp", {"type": "drop_frame", "stream": "downstream"}, "AgentTimeoutError", "timed out"),
    ("ws", {"type": "drop_frame", "stream": "upstream"}, "AgentTimeoutError", "timed out"),
    ("h2c", {"type": "drop_frame", "stream": "downstream"}, "AgentTimeoutError", "timed out"),
    ("grpc", {"type": "drop_frame", "stream": "upstream"}, "AgentTimeoutError", "timed out"),
    ("grpc", {"type": "drop_frame", "stream": "downstream"}, "ConnectionError", GRPC_BUG),
    ("grpc", {"type": "duplicate_frame", "stream": "downstream"}, "AgentTimeoutError", "timed out"),
]


@pytest.mark.parametrize(
    "transport,toxic,error,message",
    CASES,
    ids=[f"{t}-{x['type']}-{x.get('attributes', {}).get('kind', '')}-{x['stream']}" for t, x, *_ in CASES],
)
def test_each_fault_reaches_agenkit_on_each_transport(transport, toxic, error, message):
    outcomes, acted = asyncio.run(calls(transport, toxic))
    assert acted and acted > 0, "the fault reached the traffic"
    assert outcomes[0].startswith(f"{error}: ") and message in outcomes[0], outcomes


@pytest.mark.parametrize("transport", ["tcp", "unix", "ws", "http", "h2c"])
def test_a_duplicated_response_is_the_next_calls_answer(transport):
    outcomes, acted = asyncio.run(calls(transport, {"type": "duplicate_frame", "stream": "downstream"}))
    assert outcomes == ["ok first", "ok first"] and acted >= 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_delayed_message_arrives_intact(transport):
    toxic = {"type": "delay_frame", "stream": "downstream", "attributes": {"delay": 100}}
    outcomes, acted = asyncio.run(calls(transport, toxic))
    assert outcomes == ["ok first", "ok second"] and acted == 2
