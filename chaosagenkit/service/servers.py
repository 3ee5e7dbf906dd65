"""agenkit's own servers, one per transport, started for the chaos host.

``start_agent_server(agent, endpoint)`` serves ``agent`` with the server
agenkit ships for the endpoint's scheme and returns a ``ServedAgent``: the
bound port, the outermost object agenkit's server calls (what
``GET /middleware`` describes) and ``stop()``.

| scheme | agenkit server |
| --- | --- |
| tcp, unix, ws | ``LocalAgent(agent, endpoint=...)`` |
| http | ``HTTPAgentServer(agent, host, port)`` (its default middleware unless turned off) |
| h2c | ``HTTPAgentServer(..., enable_http2=True)``: HTTP/1.1 on the wire (see ``TRANSPORT_NOTES``) |
| grpc | ``GRPCServer(agent, "HOST:PORT")`` (``agenkit.adapters.python.grpc_server``) |

Nothing here changes how a request is served: every request goes through
agenkit's server code. The one addition is ``_GRPCServer``, agenkit's
``GRPCServer`` with a ``start`` that keeps the port gRPC bound (agenkit's
``start`` drops it, and port 0 needs it) and turns off gRPC's default
``SO_REUSEPORT`` (a restarted host must fail to bind a port another process
holds, not silently share it); its servicer methods are agenkit's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chaosagenkit.service.endpoint import Endpoint

__all__ = ["ServedAgent", "start_agent_server"]


@dataclass
class ServedAgent:
    """A running agenkit server: its bound port (0 for unix), what it calls, and how to stop it."""

    server: Any
    served: Any  # the outermost object agenkit's server calls (its default middleware, if any)
    port: int

    async def stop(self) -> None:
        await self.server.stop()


async def start_agent_server(
    agent: Any, endpoint: Endpoint, http_default_middleware: bool = True
) -> ServedAgent:
    """Serve ``agent`` on ``endpoint`` with agenkit's server for its scheme; OSError if it cannot bind."""
    if endpoint.scheme in ("http", "h2c"):
        return await _start_http(agent, endpoint, http_default_middleware)
    if endpoint.scheme == "grpc":
        return await _start_grpc(agent, endpoint)
    return await _start_local(agent, endpoint)


async def _start_local(agent: Any, endpoint: Endpoint) -> ServedAgent:
    from agenkit.adapters.python import LocalAgent

    server = LocalAgent(agent, endpoint=endpoint.url())
    await server.start()
    listener = server._server or server._ws_server
    return ServedAgent(server, agent, _bound_port(listener.sockets if listener else (), endpoint.port))


async def _start_http(agent: Any, endpoint: Endpoint, default_middleware: bool) -> ServedAgent:
    from agenkit.adapters.python.http_server import HTTPAgentServer

    server = HTTPAgentServer(
        agent,
        host=endpoint.host,
        port=endpoint.port,
        enable_http2=endpoint.scheme == "h2c",
        enable_default_middleware=default_middleware,
    )
    await server.start()
    site_server = server.site._server if server.site is not None else None
    sockets = site_server.sockets if site_server is not None else ()
    return ServedAgent(server, server.agent, _bound_port(sockets, endpoint.port))


async def _start_grpc(agent: Any, endpoint: Endpoint) -> ServedAgent:
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    server = _grpc_server_class()(agent, f"{host}:{endpoint.port}")
    await server.start()
    return ServedAgent(server, agent, server.bound_port)


def _bound_port(sockets: Any, requested: int) -> int:
    for bound in sockets or ():
        name = bound.getsockname()
        if isinstance(name, tuple):
            return int(name[1])
    return requested


_GRPC_SERVER: type | None = None


def _grpc_server_class() -> type:
    """``_GRPCServer``, defined on first use: importing grpc and agenkit's proto is slow."""
    global _GRPC_SERVER
    if _GRPC_SERVER is not None:
        return _GRPC_SERVER
    from agenkit.adapters.python.grpc_server import GRPCServer
    from grpc import aio
    from proto import agent_pb2_grpc

    class _GRPCServer(GRPCServer):
        """agenkit's GRPCServer; ``start`` keeps the bound port and binds without SO_REUSEPORT."""

        bound_port = 0
        _running: bool  # agenkit's GRPCServer sets it (agenkit is untyped to mypy)

        async def start(self) -> None:
            if self._running:
                raise RuntimeError("Server is already running")
            self._server = aio.server(options=[("grpc.so_reuseport", 0)])
            agent_pb2_grpc.add_AgentServiceServicer_to_server(self, self._server)
            try:
                self.bound_port = self._server.add_insecure_port(self._address)
            except RuntimeError as e:  # grpc's "Failed to bind": the same error the other servers raise
                self._server = None
                raise OSError(f"cannot bind gRPC server to {self._address}: {e}") from e
            await self._server.start()
            self._running = True

    _GRPC_SERVER = _GRPCServer
    return _GRPC_SERVER
