"""In-process helpers for proxy tests: a proxy daemon core and plain TCP servers on 127.0.0.1.

Used with ``asyncio.run`` inside synchronous tests, so each test owns its
event loop and can check that nothing (task, socket) is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socketserver
import threading
from collections.abc import AsyncIterator, Iterator

from chaosagenkit.network.proxy import Proxy
from chaosagenkit.network.server import ProxyServer
from tests.polling import wait_for_async as wait_for  # the proxy tests' name for it


async def echo_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


class _ThreadedEcho(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass  # the peer reset: nothing to echo to


@contextlib.contextmanager
def threaded_echo_server() -> Iterator[tuple[str, int]]:
    """A plain TCP echo server in threads, for synchronous tests (a real daemon in front)."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _ThreadedEcho)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address
    finally:
        server.shutdown()
        server.server_close()


@contextlib.asynccontextmanager
async def tcp_server(handler=echo_handler) -> AsyncIterator[tuple[str, int]]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[:2]
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def proxy_to(
    upstream: tuple[str, int], *, seed: int = 1, name: str = "p", default_ttl_s: float = 300.0
) -> AsyncIterator[tuple[ProxyServer, Proxy]]:
    server = ProxyServer(seed=seed, default_ttl_s=default_ttl_s)
    proxy = await server.create_proxy(
        {"name": name, "listen": "127.0.0.1:0", "upstream": f"{upstream[0]}:{upstream[1]}"}
    )
    try:
        yield server, proxy
    finally:
        await server.close()


async def connect(proxy: Proxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(proxy.listen_host, proxy.listen_port)


def open_sockets() -> int:
    """Sockets this process holds (other fds come and go with the event loop's own needs)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass  # closed while listing
    return count


def other_tasks() -> set[asyncio.Task]:
    return asyncio.all_tasks() - {asyncio.current_task()}
