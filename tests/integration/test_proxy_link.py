"""The proxy core through real sockets: bytes intact, toxics live, closes and resets, no leaks."""

from __future__ import annotations

import array
import asyncio
import fcntl
import hashlib
import random
import termios
import time

import pytest

from chaosagenkit.network.server import ProxyServer
from tests.integration.proxy_support import (
    connect,
    open_sockets,
    other_tasks,
    proxy_to,
    tcp_server,
    wait_for,
)

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_network]

try:  # the daemon runs on uvloop when it is installed: the core must behave the same there
    import uvloop

    LOOPS = {"asyncio": asyncio.run, "uvloop": uvloop.run}
except ImportError:
    LOOPS = {"asyncio": asyncio.run}


async def round_trip(reader, writer, payload: bytes) -> bytes:
    writer.write(payload)
    await writer.drain()
    return await reader.readexactly(len(payload))


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_random_payloads_cross_the_proxy_unchanged(loop):
    async def scenario():
        rng = random.Random(2024)
        async with tcp_server() as upstream, proxy_to(upstream) as (_, proxy):

            async def client(size: int) -> tuple[str, str]:
                payload = rng.randbytes(size)
                reader, writer = await connect(proxy)
                echoed = await round_trip(reader, writer, payload)
                writer.close()
                await writer.wait_closed()
                return hashlib.sha256(payload).hexdigest(), hashlib.sha256(echoed).hexdigest()

            sizes = [0, 1, 3, 4096, 65535, 65537, 1_000_003] + [rng.randint(1, 300_000) for _ in range(20)]
            results = await asyncio.gather(*(client(size) for size in sizes))
            for sent, echoed in results:
                assert sent == echoed
            await wait_for(lambda: not proxy.connections, what="connections to be forgotten")
            assert proxy.upstream_stats.received == proxy.upstream_stats.sent == sum(sizes)
            assert proxy.connections_total == len(sizes)

    LOOPS[loop](scenario())


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_five_hundred_concurrent_connections_through_one_proxy(loop):
    async def scenario():
        async with tcp_server() as upstream, proxy_to(upstream) as (_, proxy):
            connections = await asyncio.gather(*(connect(proxy) for _ in range(500)))
            await wait_for(lambda: len(proxy.connections) == 500, what="500 live connections")
            answers = await asyncio.gather(
                *(round_trip(r, w, f"client {i}".encode()) for i, (r, w) in enumerate(connections))
            )
            assert answers == [f"client {i}".encode() for i in range(500)]
            for _, writer in connections:
                writer.close()
            await asyncio.gather(*(w.wait_closed() for _, w in connections))
            await wait_for(lambda: not proxy.connections, what="all connections closed")

    LOOPS[loop](scenario())


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_a_close_on_either_side_reaches_the_other(loop):
    async def scenario():
        server_saw_eof = asyncio.Event()
        server_writers = []

        async def handler(reader, writer):
            server_writers.append(writer)
            if await reader.read() == b"":
                server_saw_eof.set()
            writer.close()

        async with tcp_server(handler) as upstream, proxy_to(upstream) as (_, proxy):
            reader, writer = await connect(proxy)
            writer.close()
            await asyncio.wait_for(server_saw_eof.wait(), 10)

            reader, writer = await connect(proxy)
            await wait_for(lambda: len(server_writers) == 2, what="second upstream connection")
            server_writers[1].close()
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()
            await wait_for(lambda: not proxy.connections, what="connections forgotten")

    LOOPS[loop](scenario())


def test_toxics_apply_to_live_connections_and_go_away_when_removed():
    async def scenario():
        async with tcp_server() as upstream, proxy_to(upstream) as (server, proxy):
            reader, writer = await connect(proxy)
            assert await round_trip(reader, writer, b"warm-up") == b"warm-up"
            await server.create_toxic(
                "p", {"type": "latency", "name": "slow", "attributes": {"latency": 300}}
            )
            started = time.monotonic()
            assert await round_trip(reader, writer, b"slow") == b"slow"
            assert time.monotonic() - started >= 0.29
            await server.delete_toxic("p", "slow")
            started = time.monotonic()
            assert await round_trip(reader, writer, b"fast") == b"fast"
            assert time.monotonic() - started < 0.29
            assert proxy.toxic_history["slow"].acted >= 1
            writer.close()

    asyncio.run(scenario())


def test_removing_a_latency_toxic_delivers_what_it_held_at_once():
    async def scenario():
        async with tcp_server() as upstream, proxy_to(upstream) as (server, proxy):
            reader, writer = await connect(proxy)
            await server.create_toxic("p", {"type": "latency", "attributes": {"latency": 60_000}})
            writer.write(b"held")
            await writer.drain()
            await wait_for(lambda: proxy.downstream_stats.received == 4, what="echo held by the toxic")
            await server.delete_toxic("p", "latency_downstream")
            assert await asyncio.wait_for(reader.readexactly(4), 10) == b"held"
            writer.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_reset_peer_resets_both_sides(loop):
    async def scenario():
        server_errors = []

        async def handler(reader, writer):
            try:
                while await reader.read(1024):
                    pass
            except ConnectionResetError as e:
                server_errors.append(e)
            writer.close()

        async with tcp_server(handler) as upstream, proxy_to(upstream) as (server, proxy):
            await server.create_toxic(
                "p", {"type": "reset_peer", "stream": "upstream", "attributes": {"timeout": 0}}
            )
            reader, writer = await connect(proxy)
            writer.write(b"anything")
            with pytest.raises(ConnectionResetError):
                await asyncio.wait_for(reader.read(1024), 10)
            await wait_for(lambda: server_errors, what="the server to see the reset")
            writer.close()

    LOOPS[loop](scenario())


def test_removing_a_timeout_toxic_closes_the_connection_as_toxiproxy_does():
    async def scenario():
        async with tcp_server() as upstream, proxy_to(upstream) as (server, proxy):
            reader, writer = await connect(proxy)
            await server.create_toxic(
                "p", {"type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}}
            )
            writer.write(b"swallowed")
            await writer.drain()
            await wait_for(lambda: proxy.upstream_stats.received == 9, what="data swallowed")
            assert proxy.upstream_stats.sent == 0
            await server.delete_toxic("p", "timeout_upstream")
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()

    asyncio.run(scenario())


def test_limit_data_cuts_the_stream_after_the_budget():
    async def scenario():
        async with tcp_server() as upstream, proxy_to(upstream) as (server, proxy):
            await server.create_toxic("p", {"type": "limit_data", "attributes": {"bytes": 10}})
            reader, writer = await connect(proxy)
            writer.write(b"0123456789abcdef")
            assert await asyncio.wait_for(reader.read(), 10) == b"0123456789"
            writer.close()

    asyncio.run(scenario())


def test_a_disabled_proxy_refuses_and_drops_connections_then_listens_again_on_the_same_port():
    async def scenario():
        async with tcp_server() as upstream, proxy_to(upstream) as (server, proxy):
            reader, writer = await connect(proxy)
            port = proxy.listen_port
            await server.update_proxy("p", {"enabled": False})
            assert await asyncio.wait_for(reader.read(), 10) == b""
            with pytest.raises(ConnectionRefusedError):
                await connect(proxy)
            await server.update_proxy("p", {"enabled": True})
            assert proxy.listen_port == port
            reader, writer = await connect(proxy)
            assert await round_trip(reader, writer, b"back") == b"back"
            writer.close()

    asyncio.run(scenario())


def test_an_unreachable_upstream_closes_the_client():
    async def scenario():
        async with tcp_server() as upstream:
            pass  # closed: nothing listens there any more
        async with proxy_to(upstream) as (_, proxy):
            reader, writer = await connect(proxy)
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()
            await wait_for(lambda: not proxy.connections, what="the failed connection to be forgotten")

    asyncio.run(scenario())


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_nothing_is_left_behind_after_heavy_use(loop):
    async def scenario():
        sockets_before = open_sockets()
        async with tcp_server() as upstream:
            server = ProxyServer(seed=3)
            proxy = await server.create_proxy({"name": "p", "upstream": f"{upstream[0]}:{upstream[1]}"})
            await server.create_toxic("p", {"type": "latency", "attributes": {"latency": 5, "jitter": 5}})
            await server.create_toxic(
                "p",
                {"type": "slicer", "stream": "upstream", "attributes": {"average_size": 100, "delay": 10}},
            )
            clients = [await connect(proxy) for _ in range(20)]
            await asyncio.gather(*(round_trip(r, w, b"z" * 5000) for r, w in clients))
            for _, writer in clients[:10]:
                writer.close()  # half of them closed by the client, half by the proxy's shutdown
            await server.close()
            for _, writer in clients[10:]:
                writer.close()
            await asyncio.gather(*(w.wait_closed() for _, w in clients), return_exceptions=True)
            assert not proxy.connections
        await wait_for(lambda: not other_tasks(), what="tasks to finish")
        await wait_for(lambda: open_sockets() <= sockets_before, what="sockets to close")

    LOOPS[loop](scenario())


def test_back_pressure_pauses_a_fast_sender_instead_of_buffering_everything():
    async def scenario():
        never = asyncio.Event()

        async def slow_reader(reader, writer):
            await never.wait()  # never reads: the proxy must stop reading the client
            writer.close()

        async with tcp_server(slow_reader) as upstream, proxy_to(upstream) as (_, proxy):
            _reader, writer = await connect(proxy)
            chunk = b"x" * 65536
            sent = 0
            with pytest.raises(TimeoutError):
                while True:
                    writer.write(chunk)
                    await asyncio.wait_for(writer.drain(), 2)
                    sent += len(chunk)
            assert proxy.upstream_stats.received < 64 * 1024 * 1024, "the proxy buffers without bound"
            writer.transport.abort()
            never.set()

    asyncio.run(scenario())


def test_chained_toxics_add_up_and_a_middle_one_can_leave():
    async def scenario():
        async with tcp_server() as upstream, proxy_to(upstream) as (server, proxy):
            reader, writer = await connect(proxy)
            await server.create_toxic("p", {"type": "latency", "name": "a", "attributes": {"latency": 150}})
            await server.create_toxic("p", {"type": "slicer", "name": "b", "attributes": {"average_size": 3}})
            await server.create_toxic("p", {"type": "latency", "name": "c", "attributes": {"latency": 100}})
            started = time.monotonic()
            assert await round_trip(reader, writer, b"0123456789" * 10) == b"0123456789" * 10
            assert time.monotonic() - started >= 0.249
            await server.delete_toxic("p", "a")
            started = time.monotonic()
            assert await round_trip(reader, writer, b"again") == b"again"
            elapsed = time.monotonic() - started
            assert 0.099 <= elapsed < 0.249
            writer.close()

    asyncio.run(scenario())


def test_raising_a_toxics_toxicity_applies_it_to_live_connections():
    async def scenario():
        async with tcp_server() as upstream, proxy_to(upstream) as (server, proxy):
            await server.create_toxic(
                "p", {"type": "latency", "name": "maybe", "toxicity": 0.0, "attributes": {"latency": 200}}
            )
            reader, writer = await connect(proxy)
            started = time.monotonic()
            await round_trip(reader, writer, b"x")
            assert time.monotonic() - started < 0.199, "toxicity 0 never applies"
            await server.update_toxic("p", "maybe", {"toxicity": 1.0})
            started = time.monotonic()
            await round_trip(reader, writer, b"y")
            assert time.monotonic() - started >= 0.199
            assert proxy.toxic_history["maybe"].connections == 1
            writer.close()

    asyncio.run(scenario())


def test_a_timeout_toxic_switched_on_later_counts_its_timeout_from_then():
    async def scenario():
        async with tcp_server() as upstream, proxy_to(upstream) as (server, proxy):
            await server.create_toxic(
                "p", {"type": "timeout", "name": "t", "toxicity": 0.0, "attributes": {"timeout": 300}}
            )
            reader, writer = await connect(proxy)
            assert await round_trip(reader, writer, b"fine") == b"fine"
            await server.update_toxic("p", "t", {"toxicity": 1.0})
            switched_on = time.monotonic()
            assert await asyncio.wait_for(reader.read(), 10) == b""
            assert time.monotonic() - switched_on >= 0.29, "closed at once instead of after the timeout"
            writer.close()

    asyncio.run(scenario())


def test_a_timeout_toxic_counts_from_the_last_chunk_so_a_client_that_keeps_sending_stays_connected():
    async def scenario():
        loop = asyncio.get_running_loop()
        async with tcp_server() as upstream, proxy_to(upstream) as (server, proxy):
            reader, writer = await connect(proxy)
            assert await round_trip(reader, writer, b"up") == b"up"
            await server.create_toxic(
                "p", {"type": "timeout", "stream": "upstream", "attributes": {"timeout": 1000}}
            )
            started = loop.time()
            received = proxy.upstream_stats.received
            # pacing, not synchronisation: chunks 50 ms apart for 1.5 s, beyond the 1 s timeout
            while loop.time() - started < 1.5:
                assert not reader.at_eof(), "closed although a chunk came less than the timeout ago"
                writer.write(b"x")
                await writer.drain()
                await wait_for(
                    lambda seen=received: proxy.upstream_stats.received > seen, what="the chunk to arrive"
                )
                received = proxy.upstream_stats.received
                last_chunk = loop.time()
                await asyncio.sleep(0.05)
            assert await asyncio.wait_for(reader.read(), 10) == b"", "the connection closes in the end"
            assert loop.time() - last_chunk >= 0.95, "closed before a full timeout after the last chunk"
            assert proxy.upstream_stats.sent == 2, "every chunk under the toxic was dropped"
            writer.close()

    asyncio.run(scenario())


def test_removing_a_timeout_toxic_closes_also_connections_where_toxicity_drew_it_inactive():
    async def scenario():
        async with tcp_server() as upstream, proxy_to(upstream) as (server, proxy):
            await server.create_toxic(
                "p", {"type": "timeout", "name": "t", "toxicity": 0.0, "attributes": {"timeout": 0}}
            )
            reader, writer = await connect(proxy)
            assert await round_trip(reader, writer, b"passes") == b"passes", "drawn inactive: data flows"
            await server.delete_toxic("p", "t")  # Toxiproxy's Cleanup runs on every link
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()

    asyncio.run(scenario())


def test_a_timeout_toxic_drawn_inactive_by_an_update_lets_data_flow_again_without_closing():
    async def scenario():
        async with tcp_server() as upstream, proxy_to(upstream) as (server, proxy):
            await server.create_toxic(
                "p", {"type": "timeout", "name": "t", "stream": "upstream", "attributes": {"timeout": 0}}
            )
            reader, writer = await connect(proxy)
            writer.write(b"lost")
            await writer.drain()
            await wait_for(lambda: proxy.upstream_stats.received == 4, what="data swallowed")
            await server.update_toxic("p", "t", {"toxicity": 0.0})  # Toxiproxy interrupts, then runs noop
            assert await round_trip(reader, writer, b"back") == b"back"
            assert proxy.upstream_stats.sent == 4 and not reader.at_eof()
            writer.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_reset_peer_added_to_an_open_connection_closes_it_as_toxiproxy_does(loop):
    """Toxiproxy sets SO_LINGER 0 only on connections opened with the toxic there: others see FIN."""

    async def scenario():
        async with tcp_server() as upstream, proxy_to(upstream) as (server, proxy):
            reader, writer = await connect(proxy)
            assert await round_trip(reader, writer, b"before") == b"before"
            await server.create_toxic("p", {"type": "reset_peer", "stream": "upstream"})
            writer.write(b"after")
            assert await asyncio.wait_for(reader.read(), 10) == b""  # FIN, not ConnectionResetError
            writer.close()
            fresh_reader, fresh_writer = await connect(proxy)  # opened with the toxic: RST
            fresh_writer.write(b"x")
            with pytest.raises(ConnectionResetError):
                await asyncio.wait_for(fresh_reader.read(), 10)
            fresh_writer.close()

    LOOPS[loop](scenario())


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_an_unreachable_upstream_resets_a_client_whose_data_arrived(loop):
    """As Toxiproxy (and the kernel): a client socket closed with unread data is reset.

    Whether the client's first bytes arrive before the upstream connection
    fails is a race on loopback; a test fake, the only one here, makes the
    upstream refuse only once they have arrived (read by the proxy or
    waiting in its socket).
    """

    async def scenario():
        async with tcp_server() as upstream:
            pass  # closed: nothing listens there any more
        async with proxy_to(upstream) as (_, proxy):
            running = asyncio.get_running_loop()

            def client_data_arrived() -> bool:
                for connection in proxy.connections:
                    if connection.client.early:
                        return True
                    sock = connection.client.transport.get_extra_info("socket")
                    pending = array.array("i", [0])
                    fcntl.ioctl(sock.fileno(), termios.FIONREAD, pending)
                    if pending[0]:
                        return True
                return False

            real_create_connection = running.create_connection

            async def refuse_once_the_client_wrote(factory, host, port, **kwargs):
                if port != upstream[1]:  # the test's own client connecting to the proxy
                    return await real_create_connection(factory, host, port, **kwargs)
                await wait_for(client_data_arrived, what="the client's bytes at the proxy")
                raise ConnectionRefusedError(111, "Connection refused")

            running.create_connection = refuse_once_the_client_wrote
            reader, writer = await connect(proxy)
            writer.write(b"hello at once")
            with pytest.raises(ConnectionResetError):
                await asyncio.wait_for(reader.read(), 10)
            writer.close()
            await wait_for(lambda: not proxy.connections, what="the failed connection to be forgotten")

    LOOPS[loop](scenario())
