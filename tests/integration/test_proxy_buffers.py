"""What the proxy holds, through real sockets: limits per link and in total, whatever the order.

In-process (the daemon's own memory is measured in ``test_proxy_memory``):
these tests look at what the links and the budget count, on both event
loops the daemon may run on.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest

from chaosagenkit.network.link import ITEM_OVERHEAD, LINK_HIGH_WATER, PRESSURE_FLOOR, BufferBudget
from tests.integration.proxy_support import connect, proxy_to, tcp_server, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_network]

try:  # the daemon runs on uvloop when it is installed: the core must behave the same there
    import uvloop

    LOOPS = {"asyncio": asyncio.run, "uvloop": uvloop.run}
except ImportError:
    LOOPS = {"asyncio": asyncio.run}

#: One read of a socket by the event loop (asyncio and uvloop read up to 256 KiB).
ONE_READ = 256 * 1024


async def push(writer: asyncio.StreamWriter, total: int) -> int:
    """Write up to ``total`` bytes; return what was accepted before the writes blocked for 0.5 s."""
    sent = 0
    chunk = b"x" * 65536
    with contextlib.suppress(TimeoutError, ConnectionError):
        while sent < total:
            writer.write(chunk)
            await asyncio.wait_for(writer.drain(), 0.5)
            sent += len(chunk)
    return sent


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_a_client_writing_while_the_upstream_connects_is_not_read_without_limit(loop):
    """uvloop starts reading after ``connection_made``: the proxy must pause on the first chunk."""

    async def scenario():
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        listener.setblocking(False)
        filler = socket.socket()
        filler.setblocking(False)
        await asyncio.get_running_loop().sock_connect(filler, listener.getsockname())  # queue full
        try:
            async with proxy_to(listener.getsockname()) as (_, proxy):
                _reader, writer = await connect(proxy)
                await push(writer, 256 * 1024 * 1024)
                (connection,) = proxy.connections
                assert connection.upstream is None, "the upstream connection must still hang"
                early = sum(len(chunk) for chunk in connection.client.early)
                assert early <= ONE_READ, f"{early} bytes read while connecting upstream"
                writer.transport.abort()
        finally:
            filler.close()
            listener.close()

    LOOPS[loop](scenario())


class _Silent(asyncio.Protocol):
    def __init__(self, transports: list[asyncio.Transport]) -> None:
        self.transports = transports

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.pause_reading()
        self.transports.append(transport)

    def data_received(self, data: bytes) -> None:
        self.transport.pause_reading()  # uvloop starts reading after connection_made


@contextlib.asynccontextmanager
async def silent_server():
    """An upstream that accepts and never reads."""
    transports: list[asyncio.Transport] = []
    server = await asyncio.get_running_loop().create_server(lambda: _Silent(transports), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[:2]
    finally:
        server.close()
        for transport in transports:
            transport.abort()
        await server.wait_closed()


@pytest.mark.parametrize("loop", sorted(LOOPS))
@pytest.mark.parametrize(
    "toxic",
    [
        {"type": "latency", "attributes": {"latency": 60_000}},
        {"type": "bandwidth", "attributes": {"rate": 1}},
        {"type": "slicer", "attributes": {"average_size": 1, "size_variation": 0, "delay": 0}},
        {"type": "slicer", "attributes": {"average_size": 1, "size_variation": 0, "delay": 100_000}},
        {"type": "duplicate_frame", "attributes": {"copies": 100}},
    ],
    ids=["latency", "bandwidth", "slicer-0", "slicer-delay", "duplicate"],
)
def test_a_link_stops_reading_at_its_limit_behind_a_holding_toxic(loop, toxic):
    async def scenario():
        async with silent_server() as upstream, proxy_to(upstream) as (server, proxy):
            await server.create_toxic("p", {**toxic, "stream": "upstream"})
            _reader, writer = await connect(proxy)
            await wait_for(lambda: any(c.upstream for c in proxy.connections), what="the link")
            body = b'{"type": "request", "pad": "' + b" " * 65500 + b'"}'
            writer.write((len(body).to_bytes(4, "big") + body) * 4)  # agenkit frames of 64 KiB
            await push(writer, 256 * 1024 * 1024)
            (connection,) = proxy.connections
            held = connection.upstream.held()
            assert held <= LINK_HIGH_WATER + ONE_READ * (ITEM_OVERHEAD + 1), f"the link holds {held} bytes"
            assert proxy.upstream_stats.received < 64 * 1024 * 1024
            writer.transport.abort()

    LOOPS[loop](scenario())


def test_under_total_pressure_big_holders_stop_and_small_messages_still_flow():
    async def scenario():
        budget = BufferBudget(high=1024 * 1024, low=768 * 1024)
        async with (
            tcp_server() as upstream,
            proxy_to(upstream, name="flood") as (flood_server, flood),
            proxy_to(upstream, name="small") as (small_server, small),
        ):
            flood.budget = small.budget = budget
            await flood_server.create_toxic(
                "flood", {"type": "latency", "stream": "upstream", "attributes": {"latency": 60_000}}
            )
            await small_server.create_toxic("small", {"type": "noop", "stream": "upstream"})
            writers = []
            for _ in range(4):
                _reader, writer = await connect(flood)
                writers.append(writer)
            await asyncio.gather(*(push(writer, 64 * 1024 * 1024) for writer in writers))
            assert budget.pressure, "the flood must exceed the total"
            links = 4 * 2
            bound = budget.high + links * (PRESSURE_FLOOR + ONE_READ + ITEM_OVERHEAD * 64)
            assert budget.held <= bound, f"held {budget.held} > {bound}"
            reader, writer = await connect(small)  # a link holding little keeps flowing
            writer.write(b"ping")
            assert await asyncio.wait_for(reader.readexactly(4), 10) == b"ping"
            writers.append(writer)
            for writer in writers:
                writer.transport.abort()
        assert budget.held == 0 and not budget.pressure, "closed links give their bytes back"

    asyncio.run(scenario())


@pytest.mark.parametrize("toxicity", [0.0, 1.0])
@pytest.mark.parametrize(
    "payload",
    [b"HELLO world\n", b"hello world\n", bytes(range(1, 256)), b"GET /index"],
    ids=["upper", "lower", "binary", "http-prefix"],
)
def test_frame_toxics_give_back_bytes_that_are_no_frame(payload, toxicity):
    async def scenario():
        async with tcp_server() as upstream, proxy_to(upstream) as (server, proxy):
            for stream in ("upstream", "downstream"):
                await server.create_toxic(
                    "p",
                    {"type": "drop_frame", "name": f"drop_{stream}", "stream": stream, "toxicity": toxicity},
                )
            reader, writer = await connect(proxy)
            writer.write(payload)
            assert await asyncio.wait_for(reader.readexactly(len(payload)), 10) == payload
            writer.close()

    asyncio.run(scenario())
