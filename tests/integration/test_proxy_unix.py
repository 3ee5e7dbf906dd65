"""Unix sockets on either side of a proxy (our extension of Toxiproxy's JSON), every byte toxic over them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator

import pytest

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.network.api import ERRORS
from chaosagenkit.network.server import AddressInUse, ProxyServer
from tests.integration.proxy_support import echo_handler, tcp_server, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_network]


@contextlib.asynccontextmanager
async def unix_server(path: str, handler=echo_handler) -> AsyncIterator[str]:
    server = await asyncio.start_unix_server(handler, path)
    try:
        yield path
    finally:
        server.close()
        await server.wait_closed()


async def open_to(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if address.startswith("unix:"):
        return await asyncio.open_unix_connection(address.removeprefix("unix:"))
    host, port = address.rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


async def round_trip(address: str, payload: bytes) -> bytes:
    reader, writer = await open_to(address)
    try:
        writer.write(payload)
        return await asyncio.wait_for(reader.readexactly(len(payload)), 10)
    finally:
        writer.close()


@pytest.mark.parametrize("listen_kind", ["tcp", "unix"])
@pytest.mark.parametrize("upstream_kind", ["tcp", "unix"])
def test_every_combination_of_tcp_and_unix_carries_bytes(tmp_path, listen_kind, upstream_kind):
    async def scenario():
        async with contextlib.AsyncExitStack() as stack:
            if upstream_kind == "unix":
                upstream = "unix:" + await stack.enter_async_context(unix_server(str(tmp_path / "up.sock")))
            else:
                host, port = await stack.enter_async_context(tcp_server())
                upstream = f"{host}:{port}"
            listen = f"unix:{tmp_path / 'proxy.sock'}" if listen_kind == "unix" else "127.0.0.1:0"
            server = ProxyServer(seed=1)
            stack.push_async_callback(server.close)
            proxy = await server.create_proxy({"name": "p", "listen": listen, "upstream": upstream})
            body = proxy.as_json()
            assert body["upstream"] == upstream
            assert (
                body["listen"] == listen if listen_kind == "unix" else body["listen"].startswith("127.0.0.1:")
            )
            payload = os.urandom(300_000)
            assert await round_trip(proxy.listen, payload) == payload
            await server.delete_proxy("p")
            assert not (tmp_path / "proxy.sock").exists(), "the socket file goes with the listener"

    asyncio.run(scenario())


def test_a_unix_listener_never_takes_a_path_in_use(tmp_path):
    async def scenario():
        server = ProxyServer(seed=1)
        try:
            async with unix_server(str(tmp_path / "live.sock")) as live:
                with pytest.raises(AddressInUse, match="another process listens") as caught:
                    await server.create_proxy(
                        {"name": "p", "listen": f"unix:{live}", "upstream": f"unix:{live}"}
                    )
                assert ERRORS[type(caught.value)] == 409
                assert await round_trip(f"unix:{live}", b"still mine") == b"still mine"
            regular = tmp_path / "file"
            regular.write_text("data")
            with pytest.raises(AddressInUse, match="not a socket"):
                await server.create_proxy(
                    {"name": "p", "listen": f"unix:{regular}", "upstream": "127.0.0.1:9"}
                )
            assert regular.read_text() == "data"
            stale = socket.socket(socket.AF_UNIX)  # a socket file nothing listens on
            stale.bind(str(tmp_path / "stale.sock"))
            stale.close()
            proxy = await server.create_proxy(
                {"name": "p", "listen": f"unix:{tmp_path / 'stale.sock'}", "upstream": "127.0.0.1:9"}
            )
            assert proxy.listen == f"unix:{tmp_path / 'stale.sock'}"
            assert server.proxies.keys() == {"p"}
        finally:
            await server.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "value,message",
    [
        ("unix:relative.sock", "must be unix:/ABSOLUTE/PATH"),
        ("unix:", "must be unix:/ABSOLUTE/PATH"),
        ("unix:/" + "a" * 200, "at most 107 bytes"),
    ],
)
def test_bad_unix_addresses_are_one_line_errors_that_change_nothing(value, message):
    async def scenario():
        server = ProxyServer(seed=1)
        try:
            for field in ("listen", "upstream"):
                body = {"name": "p", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9", field: value}
                with pytest.raises(ConfigurationError, match=message):
                    await server.create_proxy(body)
            assert not server.proxies
        finally:
            await server.close()

    asyncio.run(scenario())


def test_a_proxy_moves_between_tcp_and_unix(tmp_path):
    async def scenario():
        async with unix_server(str(tmp_path / "up.sock")) as path:
            server = ProxyServer(seed=1)
            try:
                proxy = await server.create_proxy({"name": "p", "upstream": f"unix:{path}"})
                assert await round_trip(proxy.listen, b"on tcp") == b"on tcp"
                listen = f"unix:{tmp_path / 'moved.sock'}"
                await server.update_proxy("p", {"listen": listen})
                assert proxy.listen == listen
                assert await round_trip(listen, b"on unix") == b"on unix"
                await server.update_proxy("p", {"enabled": False})
                assert not (tmp_path / "moved.sock").exists()
                await server.update_proxy("p", {"enabled": True})
                assert await round_trip(listen, b"up again") == b"up again"
            finally:
                await server.close()

    asyncio.run(scenario())


# Every byte toxic over unix sockets on both sides: (type, attributes, stream, check)
async def _intact(reader, writer, payload, proxy) -> None:
    writer.write(payload)
    assert await asyncio.wait_for(reader.readexactly(len(payload)), 10) == payload


def _late(min_s: float):
    async def check(reader, writer, payload, proxy) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await _intact(reader, writer, payload, proxy)
        assert loop.time() - start >= min_s

    return check


async def _nothing_back(reader, writer, payload, proxy) -> None:
    writer.write(payload)
    tally = proxy.toxic_history["timeout_downstream"]
    await wait_for(lambda: tally.acted > 0, what="the toxic to swallow the data")
    proxy.remove_toxic("timeout_downstream")  # closes the connection, as Toxiproxy's Cleanup
    assert await asyncio.wait_for(reader.read(), 10) == b"", "dropped data is never delivered late"


def _cut_after(count: int):
    async def check(reader, writer, payload, proxy) -> None:
        writer.write(payload)
        assert await asyncio.wait_for(reader.read(), 10) == payload[:count]

    return check


async def _broken(reader, writer, payload, proxy) -> None:
    writer.write(payload)
    # a unix socket has no RST: the peer of an aborted connection sees the end of the stream,
    # or ECONNRESET when it had unread data
    with contextlib.suppress(ConnectionResetError):
        assert await asyncio.wait_for(reader.read(), 10) == b""


async def _close_held(reader, writer, payload, proxy) -> None:
    loop = asyncio.get_running_loop()
    writer.write(payload)
    await asyncio.wait_for(reader.readexactly(len(payload)), 10)
    start = loop.time()
    writer.write_eof()  # the echo server closes on EOF; the toxic holds that close 300 ms
    assert await asyncio.wait_for(reader.read(), 10) == b""
    assert loop.time() - start >= 0.3


BYTE_TOXICS = [
    ("noop", {}, "downstream", _intact),
    ("latency", {"latency": 300}, "downstream", _late(0.3)),
    ("bandwidth", {"rate": 50}, "downstream", _late(0.3)),  # 20 KB at 50 KB/s
    ("slicer", {"average_size": 7, "size_variation": 3, "delay": 10}, "downstream", _intact),
    ("slow_close", {"delay": 300}, "downstream", _close_held),
    ("timeout", {"timeout": 0}, "downstream", _nothing_back),
    ("reset_peer", {"timeout": 0}, "upstream", _broken),
    ("limit_data", {"bytes": 5}, "downstream", _cut_after(5)),
    ("packet_loss", {"loss_rate": 0.3, "rto": 50}, "downstream", _intact),
    ("packet_loss", {"loss_rate": 1, "max_retries": 0}, "downstream", _broken),
]


@pytest.mark.parametrize(
    "type_name,attributes,stream,check",
    BYTE_TOXICS,
    ids=[f"{t}-{i}" for i, (t, *_) in enumerate(BYTE_TOXICS)],
)
def test_every_byte_toxic_acts_over_unix_sockets(tmp_path, type_name, attributes, stream, check):
    async def scenario():
        async with unix_server(str(tmp_path / "up.sock")) as path:
            server = ProxyServer(seed=1)
            try:
                proxy = await server.create_proxy(
                    {"name": "p", "listen": f"unix:{tmp_path / 'p.sock'}", "upstream": f"unix:{path}"}
                )
                await server.create_toxic(
                    "p", {"type": type_name, "stream": stream, "attributes": attributes}
                )
                reader, writer = await open_to(proxy.listen)
                await check(reader, writer, bytes(range(256)) * 80, proxy)  # 20 KB
                writer.close()
                acted = proxy.toxic_history[f"{type_name}_{stream}"].acted
                assert (acted == 0) == (type_name == "noop")
            finally:
                await server.close()

    asyncio.run(scenario())
