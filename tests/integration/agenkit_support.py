"""agenkit servers for proxy tests, in this process, over each of agenkit's six transports.

tcp, unix and ws are served by ``LocalAgent``, http and h2c by
``HTTPAgentServer`` (``enable_http2=True`` for h2c), grpc by agenkit's
``GRPCServer``. ``agenkit_server`` yields the address a proxy forwards to
(``HOST:PORT`` or ``unix:/PATH``); ``endpoint`` is what a ``RemoteAgent``
calls for a proxy listening on ``listen``.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from agenkit.adapters.python import LocalAgent
from agenkit.adapters.python.http_server import HTTPAgentServer

from chaosagenkit.targets import echo

TRANSPORTS = ("tcp", "unix", "ws", "http", "h2c", "grpc")


def _free_port() -> int:
    # the ws and grpc servers take a fixed port; agenkit does not report an ephemeral one
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.asynccontextmanager
async def agenkit_server(transport: str) -> AsyncIterator[str]:
    """Serve the echo target over ``transport``; yield its address."""
    with tempfile.TemporaryDirectory(prefix="cak-") as folder:
        if transport in ("tcp", "ws"):
            port = 0 if transport == "tcp" else _free_port()
            server = LocalAgent(echo(), endpoint=f"{transport}://127.0.0.1:{port}")
            await server.start()
            if transport == "tcp":
                port = server._server.sockets[0].getsockname()[1]
            address = f"127.0.0.1:{port}"
        elif transport == "unix":
            path = str(Path(folder) / "agent.sock")
            server = LocalAgent(echo(), endpoint=f"unix://{path}")
            await server.start()
            address = f"unix:{path}"
        elif transport in ("http", "h2c"):
            server = HTTPAgentServer(
                echo(),
                host="127.0.0.1",
                port=0,
                enable_default_middleware=False,
                enable_http2=transport == "h2c",
            )
            await server.start()
            address = f"127.0.0.1:{server.site._server.sockets[0].getsockname()[1]}"
        elif transport == "grpc":
            from agenkit.adapters.python.grpc_server import GRPCServer

            port = _free_port()
            server = GRPCServer(echo(), f"127.0.0.1:{port}")
            await server.start()
            address = f"127.0.0.1:{port}"
        else:
            raise ValueError(transport)
        try:
            yield address
        finally:
            await server.stop()


def endpoint(transport: str, listen: str) -> str:
    """The agenkit endpoint of a proxy listening on ``listen`` for ``transport`` traffic."""
    if listen.startswith("unix:"):
        return "unix://" + listen.removeprefix("unix:")
    return f"{transport}://{listen}"
