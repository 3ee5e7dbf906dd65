"""agenkit servers for proxy tests, in this process (LocalAgent over tcp://, HTTPAgentServer).

The proxy itself runs as a real daemon process; only the agent is served here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from agenkit.adapters.python import LocalAgent
from agenkit.adapters.python.http_server import HTTPAgentServer

from chaosagenkit.targets import echo


@contextlib.asynccontextmanager
async def agenkit_server(transport: str) -> AsyncIterator[str]:
    """Serve the echo target; yield its HOST:PORT."""
    if transport == "tcp":
        server = LocalAgent(echo(), endpoint="tcp://127.0.0.1:0")
        await server.start()
        port = server._server.sockets[0].getsockname()[1]
    else:
        server = HTTPAgentServer(echo(), host="127.0.0.1", port=0, enable_default_middleware=False)
        await server.start()
        port = server.site._server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop()
