"""The proxy's memory is bounded by design: clients that write and never read cannot grow it.

A real ``chaosagenkit proxy`` process (uvloop when installed, as users run
it) carries 20 clients that write as fast as they can and never read,
through an echo upstream, behind each toxic that holds data. Its peak
resident memory (``VmHWM``, kept by the kernel, so a short spike between
two samples is not missed) must stay under ``RSS_BOUND_MIB``.

Each case runs two rounds against one daemon, to catch orders of events:

1. the toxics exist before the clients connect, and the upstream does not
   accept for a while (its accept queue is full), so the clients' data
   reaches the proxy while it is still connecting upstream;
2. the clients are linked first and the toxics are added while data flows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Callable

import aiohttp
import pytest

from chaosagenkit.network import daemons as process
from tests.integration.proxy_support import echo_handler
from tests.polling import wait_for_async as wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_network, pytest.mark.slow]

CLIENTS = 20
#: The stated bound: the idle daemon is about 45 MiB; buffers add at most the
#: process-wide budget (64 MiB) plus, per direction of each connection, its floor
#: and one read (see docs/network.md, "Memory").
RSS_BOUND_MIB = 256
#: A round ends when the clients pushed this much in total, or after LOAD_WINDOW_S.
PUSH_TARGET = CLIENTS * 64 * 1024 * 1024
LOAD_WINDOW_S = 1.5


def agenkit_frames(size: int, count: int) -> bytes:
    """``count`` agenkit tcp frames (4-byte length + JSON envelope) of about ``size`` bytes."""
    frames = []
    for index in range(count):
        body = json.dumps(
            {"version": "1.0", "type": "request", "id": f"r{index}", "payload": {"pad": "x" * size}}
        ).encode()
        frames.append(len(body).to_bytes(4, "big") + body)
    return b"".join(frames)


BLOB = agenkit_frames(200 * 1024, 5)

# (type, attributes) of each toxic that holds data, added on both streams
HOLDING_TOXICS = [
    ("bandwidth", {"rate": 100}),
    ("latency", {"latency": 60_000}),
    ("slicer", {"average_size": 1, "size_variation": 0, "delay": 1000}),
    ("slicer", {"average_size": 1, "size_variation": 0, "delay": 0}),
    ("timeout", {"timeout": 0}),
    ("packet_loss", {"loss_rate": 0.5, "rto": 1000}),
    ("malformed_frame", {"kind": "invalid_json"}),
    ("drop_frame", {}),
    ("delay_frame", {"delay": 60_000}),
    ("duplicate_frame", {"copies": 100}),
    ("reorder_frames", {"window": 60_000}),
]


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


async def until(predicate: Callable[[], bool], window_s: float) -> None:
    """Return when ``predicate`` holds or ``window_s`` has passed (a load window, not a sync)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + window_s
    while not predicate() and loop.time() < deadline:
        await asyncio.sleep(0.02)


class Upstream:
    """An echo server on a raw listening socket whose accepting can be held back.

    With a backlog of 0 and one connection left in the accept queue, the
    kernel drops further SYNs: the proxy's upstream connections hang until
    the queue has room (their SYN is retransmitted after 1 s, 3 s, ...).
    ``serve`` gives it room for all of them and accepts.
    """

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.listener.setblocking(False)
        self.address = self.listener.getsockname()
        self.accepted = 0
        self._filler: socket.socket | None = None
        self._tasks: set[asyncio.Task] = set()

    async def hold(self) -> None:
        """Fill the accept queue so that the next connections hang."""
        self._filler = socket.socket()
        self._filler.setblocking(False)
        await asyncio.get_running_loop().sock_connect(self._filler, self.address)

    def serve(self) -> None:
        self.listener.listen(128)  # a listening socket takes a new backlog
        self._spawn(self._accept_loop())

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            sock, _ = await loop.sock_accept(self.listener)
            if self._filler is not None and sock.getpeername() == self._filler.getsockname():
                sock.close()  # the filler: not a proxied connection
                continue
            self.accepted += 1
            self._spawn(self._echo(sock))

    async def _echo(self, sock: socket.socket) -> None:
        await echo_handler(*await asyncio.open_connection(sock=sock))

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._filler is not None:
            self._filler.close()
        self.listener.close()


class Flood:
    """Clients that write ``BLOB`` over and over and never read."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.sent = 0
        self.sockets: list[socket.socket] = []
        self._tasks: list[asyncio.Task] = []

    async def start(self, count: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(count):
            sock = socket.socket()
            sock.setblocking(False)
            await loop.sock_connect(sock, self.address)
            self.sockets.append(sock)
        self._tasks = [loop.create_task(self._push(sock)) for sock in self.sockets]

    async def _push(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        view = memoryview(BLOB)
        with contextlib.suppress(OSError):
            while True:
                for offset in range(0, len(view), 65536):
                    piece = view[offset : offset + 65536]
                    await loop.sock_sendall(sock, piece)
                    self.sent += len(piece)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for sock in self.sockets:
            sock.close()


async def add_toxics(http: aiohttp.ClientSession, api: str, toxic: str, attributes: dict) -> None:
    for stream in ("upstream", "downstream"):
        body = {"type": toxic, "name": f"t_{stream}", "stream": stream, "attributes": attributes}
        async with http.post(f"{api}/proxies/p/toxics", json=body) as response:
            assert response.status == 200, await response.text()


async def remove_toxics(http: aiohttp.ClientSession, api: str) -> None:
    for stream in ("upstream", "downstream"):
        async with http.delete(f"{api}/proxies/p/toxics/t_{stream}") as response:
            assert response.status == 204, await response.text()


async def flood_rounds(api: str, toxic: str, attributes: dict) -> None:
    async with aiohttp.ClientSession() as http:
        # round 1: toxics first, and the upstream does not accept while the clients push
        upstream = Upstream()
        body = {"name": "p", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{upstream.address[1]}"}
        async with http.post(f"{api}/proxies", json=body) as response:
            assert response.status == 201, await response.text()
            host, port = (await response.json())["listen"].rsplit(":", 1)
        flood = Flood((host, int(port)))
        try:
            await add_toxics(http, api, toxic, attributes)
            await upstream.hold()
            await flood.start(CLIENTS)
            await until(lambda: flood.sent >= PUSH_TARGET, LOAD_WINDOW_S)
            upstream.serve()
            await wait_for(lambda: upstream.accepted == CLIENTS, 30, "the upstream to accept every client")
            pushed = flood.sent
            await until(lambda: flood.sent >= pushed + PUSH_TARGET, LOAD_WINDOW_S)
        finally:
            await flood.close()
        # round 2: clients linked first, toxics added while they push
        await remove_toxics(http, api)
        flood = Flood((host, int(port)))
        try:
            await flood.start(CLIENTS)
            await wait_for(lambda: upstream.accepted == 2 * CLIENTS, 30, "the second clients to be linked")
            await add_toxics(http, api, toxic, attributes)
            await until(lambda: flood.sent >= PUSH_TARGET, LOAD_WINDOW_S)
        finally:
            await flood.close()
            await upstream.close()


@pytest.mark.parametrize(
    "toxic,attributes", HOLDING_TOXICS, ids=[f"{t}-{i}" for i, (t, _) in enumerate(HOLDING_TOXICS)]
)
def test_clients_that_never_read_cannot_grow_the_proxy_beyond_its_bound(toxic, attributes):
    daemon, ready = process.start_daemon(seed=1)
    try:
        asyncio.run(flood_rounds(ready["api"], toxic, attributes))
        peak = peak_rss_mib(daemon.pid)
        print(f"{toxic} {attributes}: peak RSS {peak:.0f} MiB")
        assert daemon.poll() is None, "the proxy died"
        assert peak < RSS_BOUND_MIB, f"peak RSS {peak:.0f} MiB >= bound {RSS_BOUND_MIB} MiB ({toxic})"
    finally:
        process.stop_daemon(daemon)
