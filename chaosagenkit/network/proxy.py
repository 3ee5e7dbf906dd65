"""A named proxy: one listener, its live connections, and the toxics that apply to them.

Each accepted client connection gets a connection to the upstream and two
links (upstream = client to server, downstream = server to client), each
carrying the toxics of its direction in the order they were added. Adding,
updating or removing a toxic applies to live connections at once, as in
Toxiproxy. Disabling the proxy closes its listener and every connection;
enabling it listens again on the same address. A connection is forgotten
(and its sockets and timers released) once both of its sockets are closed.
Either side may be a unix socket (``address``): toxics are bytes and apply
the same.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from chaosagenkit.faults.framing import FrameReader
from chaosagenkit.faults.toxics.base import ConnectionContext, Toxic, ToxicTally
from chaosagenkit.network.address import (
    Address,
    TcpAddress,
    UnixAddress,
    check_unix_listen_path,
    format_address,
)
from chaosagenkit.network.link import PROCESS_BUDGET, BufferBudget, Link, LinkStats
from chaosagenkit.seeds import derive_seed

__all__ = ["STREAMS", "Proxy", "ProxyConnection", "ToxicSpec", "format_address"]

logger = logging.getLogger("chaosagenkit.proxy")

STREAMS = ("upstream", "downstream")
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


@dataclass
class ToxicSpec:
    """A toxic as the API knows it (Toxiproxy's toxic JSON) and its shared counters."""

    name: str
    type: str
    stream: str
    toxicity: float
    toxic: Toxic
    tally: ToxicTally = field(default_factory=ToxicTally)
    duration_s: float | None = None  # ours: the daemon removes the toxic after this long

    def as_json(self) -> dict:
        body = {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": self.toxic.config.to_attributes(),
        }
        if self.duration_s is not None:
            body["duration_s"] = self.duration_s
        return body


class Proxy:
    """One listener forwarding to one upstream, with toxics."""

    def __init__(
        self,
        name: str,
        listen: Address,
        upstream: Address,
        seed: Callable[[], int],
        budget: BufferBudget = PROCESS_BUDGET,
    ) -> None:
        self.name = name
        self.budget = budget  # what all links together may hold
        self.listen_address = listen  # a TCP port 0 becomes the bound port, kept for restarts
        self.upstream_address = upstream
        self.enabled = False
        self.toxics: dict[str, ToxicSpec] = {}
        self.toxic_history: dict[str, ToxicTally] = {}  # counters outlive removed toxics
        self.connections: set[ProxyConnection] = set()
        self.connections_total = 0
        self.upstream_stats = LinkStats()
        self.downstream_stats = LinkStats()
        self._seed = seed
        self._numbering = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def listen(self) -> str:
        return str(self.listen_address)

    @property
    def upstream(self) -> str:
        return str(self.upstream_address)

    # TCP views of the addresses (None for a unix socket)
    @property
    def listen_host(self) -> str | None:
        return self.listen_address.host if isinstance(self.listen_address, TcpAddress) else None

    @property
    def listen_port(self) -> int | None:
        return self.listen_address.port if isinstance(self.listen_address, TcpAddress) else None

    # -- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        """Listen (port 0 binds an ephemeral port, kept for later restarts)."""
        if self._server is None:
            self._server = await self._listen(self.listen_address)
        self.enabled = True

    async def move(self, listen: Address, upstream: Address) -> None:
        """New addresses; live connections are closed (as Toxiproxy restarts the proxy).

        A new listener is bound before the old one closes, so an address that
        is taken raises ``OSError`` with nothing changed.
        """
        new_server = None
        if self._server is not None and listen != self.listen_address:
            new_server = await self._listen(listen)
        self.upstream_address = upstream
        for connection in list(self.connections):
            connection.close()
        if new_server is not None:
            old, self._server = self._server, new_server
            old.close()
            await old.wait_closed()
        elif self._server is None:
            self.listen_address = listen

    async def _listen(self, address: Address) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        if isinstance(address, UnixAddress):
            check_unix_listen_path(address.path)
            server = await loop.create_unix_server(lambda: _ClientSide(self), address.path, backlog=1024)
            self.listen_address = address
            return server
        server = await loop.create_server(
            lambda: _ClientSide(self), address.host, address.port, reuse_address=True, backlog=1024
        )
        self.listen_address = TcpAddress(address.host, server.sockets[0].getsockname()[1])
        return server

    async def stop(self) -> None:
        """Stop listening and close every connection (the proxy is 'down')."""
        self.enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        for connection in list(self.connections):
            connection.close()
        if server is not None:
            await server.wait_closed()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def restart_numbering(self) -> None:
        """Number connections from 0 again (a new seed restarts the decision streams)."""
        self._numbering = 0

    # -- toxics ---------------------------------------------------------------------
    def add_toxic(self, spec: ToxicSpec) -> None:
        self.toxics[spec.name] = spec
        self.toxic_history[spec.name] = spec.tally
        for connection in list(self.connections):
            connection.add_toxic(spec)

    def update_toxic(self, name: str, toxic: Toxic, toxicity: float) -> ToxicSpec:
        spec = self.toxics[name]
        changed = toxicity != spec.toxicity
        spec.toxic, spec.toxicity = toxic, toxicity
        for connection in list(self.connections):
            connection.update_toxic(spec, changed)
        return spec

    def remove_toxic(self, name: str) -> ToxicSpec:
        spec = self.toxics.pop(name)
        for connection in list(self.connections):
            connection.remove_toxic(spec)
        return spec

    def stats_json(self) -> dict:
        return {
            "connections_total": self.connections_total,
            "connections_active": len(self.connections),
            "upstream": {"received": self.upstream_stats.received, "sent": self.upstream_stats.sent},
            "downstream": {
                "received": self.downstream_stats.received,
                "sent": self.downstream_stats.sent,
            },
            "toxics": {
                name: {**tally.as_json(), "present": name in self.toxics}
                for name, tally in self.toxic_history.items()
            },
        }

    def as_json(self, *, with_stats: bool = True) -> dict:
        """Toxiproxy's proxy JSON, plus our ``stats``."""
        body = {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": self.toxics_json(),
        }
        if with_stats:
            body["stats"] = self.stats_json()
        return body

    def toxics_json(self) -> list[dict]:
        """The toxics as Toxiproxy lists them: upstream ones first, each stream in the order added."""
        ordered = sorted(self.toxics.values(), key=lambda spec: STREAMS.index(spec.stream))
        return [spec.as_json() for spec in ordered]

    # -- connections ----------------------------------------------------------------
    def _accepted(self, client: _ClientSide) -> ProxyConnection:
        number = self._numbering
        self._numbering += 1
        self.connections_total += 1
        connection = ProxyConnection(self, number, client)
        self.connections.add(connection)
        task = asyncio.get_running_loop().create_task(connection.open())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return connection

    def toxic_rng(self, number: int, spec: ToxicSpec) -> random.Random:
        """The decision stream of one toxic on one connection, derived from the seed."""
        key = f"{self.name}/{number}/{spec.stream}/{spec.name}"
        return random.Random(derive_seed(self._seed(), key))


class ProxyConnection:
    """A client connection, its upstream connection and the two links between them."""

    def __init__(self, proxy: Proxy, number: int, client: _ClientSide) -> None:
        self.proxy = proxy
        self.number = number
        self.client = client
        self.server: _ServerSide | None = None
        self.context = ConnectionContext(number)
        self.upstream: Link | None = None
        self.downstream: Link | None = None
        self._closing = False

    def link(self, stream: str) -> Link | None:
        """The link carrying ``stream``; None while the upstream connection is being opened."""
        return self.upstream if stream == "upstream" else self.downstream

    async def open(self) -> None:
        proxy = self.proxy
        loop = asyncio.get_running_loop()
        upstream = proxy.upstream_address
        try:
            if isinstance(upstream, UnixAddress):
                server_transport, server = await loop.create_unix_connection(
                    lambda: _ServerSide(self), upstream.path
                )
            else:
                server_transport, server = await loop.create_connection(
                    lambda: _ServerSide(self), upstream.host, upstream.port
                )
        except OSError as e:
            logger.info("proxy %s: cannot reach upstream %s: %s", proxy.name, proxy.upstream, e)
            if self.client.early:
                # as Toxiproxy (and the kernel): closing a socket with unread data resets it
                self.reset()
            self.close()
            return
        self.server = server
        if self._closing or server.lost or self.client.lost:
            self.close()
            return
        client_transport = self.client.transport
        self.upstream = Link(
            self, "upstream", client_transport, server_transport, proxy.upstream_stats, proxy.budget
        )
        self.downstream = Link(
            self, "downstream", server_transport, client_transport, proxy.downstream_stats, proxy.budget
        )
        for spec in list(proxy.toxics.values()):
            self.add_toxic(spec)
        self.context.established = True  # toxics added from now on join an open connection
        self.client.attach(self.upstream, self.downstream)
        server.attach(self.downstream, self.upstream)
        # each link owns its source's reading from now on: it resumes it unless its
        # destination or its memory limits say otherwise (never unconditionally)
        self.upstream.start_reading()
        self.downstream.start_reading()

    def add_toxic(self, spec: ToxicSpec) -> None:
        if self.upstream is None or self.downstream is None:
            return  # not connected yet: open() applies every toxic
        self.link(spec.stream).add_toxic(
            spec.name,
            spec.toxic,
            spec.toxicity,
            self.proxy.toxic_rng(self.number, spec),
            spec.tally,
            self.context,
        )
        if self.context.wants_framing:
            # one observer per direction records, from what is really sent, the facts a
            # frame toxic on the other direction needs (HEAD requests, upgrades, gRPC paths)
            for link in (self.upstream, self.downstream):
                if link.tap is None:
                    link.tap = FrameReader(context=self.context.framing, record=True).feed
                    link.refresh()

    # A connection still opening its upstream has no links yet; open() applies the
    # toxics current when it finishes, so updates and removals skip it.
    def update_toxic(self, spec: ToxicSpec, toxicity_changed: bool) -> None:
        link = self.link(spec.stream)
        if link is not None:
            link.update_toxic(spec.name, spec.toxic, spec.toxicity, toxicity_changed)

    def remove_toxic(self, spec: ToxicSpec) -> None:
        link = self.link(spec.stream)
        if link is not None:
            link.remove_toxic(spec.name)

    # -- endings ----------------------------------------------------------------------
    def link_finished(self, link: Link) -> None:
        """A link delivered its end of stream: close its destination (after flushing)."""
        link.dest.close()

    def side_lost(self, side: _Side) -> None:
        if side.out_link is not None:
            side.out_link.source_ended()
        if side.in_link is not None:
            side.in_link.close()
        elif side is self.client and self.server is None:
            self._closing = True  # closed while connecting upstream
        self._forget_if_done()

    def reset(self) -> None:
        """Abort both sockets with RST."""
        for side in (self.client, self.server):
            if side is None or side.transport is None or side.transport.is_closing():
                continue
            sock = side.transport.get_extra_info("socket")
            try:
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            except OSError:
                pass  # already gone: nothing to reset
            side.transport.abort()
        for link in (self.upstream, self.downstream):
            if link is not None:
                link.close()

    def close(self) -> None:
        """Close both sockets gracefully (proxy disabled or deleted)."""
        self._closing = True
        for link in (self.upstream, self.downstream):
            if link is not None:
                link.close()
        for side in (self.client, self.server):
            if side is not None and side.transport is not None:
                side.transport.close()
        self._forget_if_done()

    def _forget_if_done(self) -> None:
        client_gone = self.client.lost
        server_gone = self.server is None or self.server.lost
        if client_gone and server_gone:
            for link in (self.upstream, self.downstream):
                if link is not None:
                    link.close()
            self.proxy.connections.discard(self)


class _Side(asyncio.Protocol):
    """One socket of a proxied connection; feeds the link whose source it is."""

    def __init__(self) -> None:
        self.connection: ProxyConnection | None = None
        self.transport: asyncio.Transport | None = None
        self.out_link: Link | None = None  # the link reading this side
        self.in_link: Link | None = None  # the link writing to this side
        self.early: list[bytes] = []
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.pause_reading()  # type: ignore[attr-defined]  # until both links exist

    def data_received(self, data: bytes) -> None:
        # Reading is paused until both links exist, but uvloop starts reading only
        # after connection_made (so the pause there does nothing): keep the first
        # chunk for the link and pause now, or a client could fill memory while
        # the upstream connection is being opened.
        if self.out_link is None:
            self.early.append(data)
            self.transport.pause_reading()  # type: ignore[union-attr]
        else:
            self.out_link.feed(data)

    def attach(self, out_link: Link, in_link: Link) -> None:
        """Wire the links; from now on the loop hands data straight to the link."""
        self.out_link, self.in_link = out_link, in_link
        for data in self.early:
            out_link.feed(data)
        self.early.clear()
        self.data_received = out_link.feed  # type: ignore[method-assign]  # one call less per chunk

    def eof_received(self) -> bool:
        link = self.out_link
        if link is not None:
            link.source_ended()
        return True  # we decide when to close (after the toxics drain)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.connection is not None:
            self.connection.side_lost(self)

    def pause_writing(self) -> None:
        link = self.in_link
        if link is not None:
            link.pause_source()

    def resume_writing(self) -> None:
        link = self.in_link
        if link is not None:
            link.resume_source()


class _ClientSide(_Side):
    def __init__(self, proxy: Proxy) -> None:
        super().__init__()
        self.proxy = proxy

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.connection = self.proxy._accepted(self)


class _ServerSide(_Side):
    def __init__(self, connection: ProxyConnection) -> None:
        super().__init__()
        self.connection = connection
