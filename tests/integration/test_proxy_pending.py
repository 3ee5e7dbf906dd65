"""Toxic changes while a connection is still opening its upstream connection.

The upstream listens with a backlog of 0 and never accepts on its own: one
connection fits its accept queue, the next one's SYN is dropped, so the
proxy's upstream connect for that client hangs (no fake needed). A second
client, linked before, must see every toxic change at once, and the API
must answer as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest

from chaosagenkit.api import start_app
from chaosagenkit.network.api import application
from chaosagenkit.network.server import ProxyServer
from tests.integration.proxy_support import connect, other_tasks, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_network]

SLOW = {"type": "latency", "name": "slow", "attributes": {"latency": 60_000}}


async def echo(sock: socket.socket) -> None:
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def one_linked_one_pending() -> AsyncIterator[tuple[ProxyServer, str, tuple]]:
    """A proxy with client A linked to an echoing upstream and client B stuck connecting.

    Yields the daemon core, its API URL and A's (reader, writer). Errors the
    event loop reports (exceptions in callbacks, e.g. a toxic's expiry) fail the test.
    """
    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    listener.setblocking(False)
    upstream = listener.getsockname()
    filler = socket.socket()
    filler.setblocking(False)
    server = ProxyServer(seed=1)
    runner, port = await start_app(application(server), "127.0.0.1", 0)
    echo_task = None
    writers = []
    try:
        proxy = await server.create_proxy(
            {"name": "p", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{upstream[1]}"}
        )
        reader_a, writer_a = await connect(proxy)
        writers.append(writer_a)
        accepted, _ = await asyncio.wait_for(loop.sock_accept(listener), 10)
        echo_task = loop.create_task(echo(accepted))
        writer_a.write(b"linked")
        assert await asyncio.wait_for(reader_a.readexactly(6), 10) == b"linked"
        await asyncio.wait_for(loop.sock_connect(filler, upstream), 10)  # the accept queue is full now
        _, writer_b = await connect(proxy)
        writers.append(writer_b)
        await wait_for(lambda: len(proxy.connections) == 2, what="client B accepted by the proxy")
        assert [c.upstream for c in proxy.connections].count(None) == 1, "B's upstream connect must hang"
        yield server, f"http://127.0.0.1:{port}", (reader_a, writer_a)
        assert [c.upstream for c in proxy.connections].count(None) == 1, "B was still connecting throughout"
        assert reported == [], f"the event loop reported errors: {reported}"
    finally:
        for writer in writers:
            writer.close()
        filler.close()
        await server.close()
        if echo_task is not None:
            await asyncio.wait_for(echo_task, 10)
        listener.close()
        await runner.cleanup()
        loop.set_exception_handler(None)


async def answers_promptly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """True when an echo comes back well before the 60 s latency would release it."""
    writer.write(b"ping")
    try:
        return await asyncio.wait_for(reader.readexactly(4), 10) == b"ping"
    except TimeoutError:
        return False


def test_a_deleted_toxic_leaves_linked_connections_while_another_is_still_connecting():
    async def scenario():
        async with one_linked_one_pending() as (_server, url, (reader, writer)):
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{url}/proxies/p/toxics", json=SLOW) as response:
                    assert response.status == 200
                async with http.post(
                    f"{url}/proxies/p/toxics/slow", json={"attributes": {"jitter": 1}}
                ) as response:
                    assert response.status == 200, await response.text()
                async with http.delete(f"{url}/proxies/p/toxics/slow") as response:
                    assert response.status == 204, await response.text()
            assert await answers_promptly(reader, writer), "the deleted toxic still delays the linked client"
        assert not other_tasks(), "nothing is left running"

    asyncio.run(scenario())


def test_a_reset_reaches_linked_connections_while_another_is_still_connecting():
    async def scenario():
        async with one_linked_one_pending() as (_server, url, (reader, writer)):
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{url}/proxies/p/toxics", json=SLOW) as response:
                    assert response.status == 200
                async with http.post(f"{url}/reset") as response:
                    assert response.status == 204, await response.text()
            assert await answers_promptly(reader, writer), "the reset toxic still delays the linked client"

    asyncio.run(scenario())


def test_an_expired_toxic_leaves_linked_connections_while_another_is_still_connecting():
    async def scenario():
        async with one_linked_one_pending() as (server, _url, (reader, writer)):
            await server.create_toxic("p", {**SLOW, "duration_s": 0.2})
            proxy = server.proxies["p"]
            await wait_for(lambda: "slow" not in proxy.toxics, what="the toxic to expire")
            assert await answers_promptly(reader, writer), "the expired toxic still delays the linked client"

    asyncio.run(scenario())
