"""Both control planes served in-process on 127.0.0.1, for tests that speak HTTP to them.

``served(plane, options)`` starts the fault proxy's API (a ``ProxyServer``)
or the chaos host's control API (a ``ChaosHost`` around the echo target,
its agent server not started: only the control API is under test) with the
given ``ControlOptions``, and yields a ``Plane``: its URL, a route that reads,
a request that changes something, and a way to see whether it changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from chaosagenkit.api import start_app
from chaosagenkit.control_options import ControlOptions
from chaosagenkit.network import api as proxy_api
from chaosagenkit.network.server import ProxyServer

PLANES = ["proxy", "host"]


@dataclass
class Plane:
    url: str
    port: int
    read_path: str  # a GET that answers 200
    change_path: str  # a POST that changes state (201)
    change_body: bytes
    changes: Callable[[], int]  # how many changes are in force
    app: Any
    target: Any  # the ProxyServer or the ChaosHost behind the API


@contextlib.asynccontextmanager
async def served(
    plane: str, options: ControlOptions | None = None, bind: str = "127.0.0.1", default_ttl_s: float = 300.0
) -> AsyncIterator[Plane]:
    options = options or ControlOptions()
    if plane == "proxy":
        server = ProxyServer(seed=1, token=options.token, default_ttl_s=default_ttl_s)
        app = proxy_api.application(server, options)
        runner, port = await start_app(app, bind, 0)
        try:
            yield Plane(
                url=f"http://127.0.0.1:{port}",
                port=port,
                read_path="/version",
                change_path="/proxies",
                change_body=b'{"name": "p", "upstream": "127.0.0.1:9"}',
                changes=lambda: len(server.proxies),
                app=app,
                target=server,
            )
        finally:
            await runner.cleanup()
            await server.close()
        return
    from chaosagenkit.service import api as host_api
    from chaosagenkit.service.endpoint import parse_endpoint
    from chaosagenkit.service.host import ChaosHost, HostConfig, load_agent

    config = HostConfig(endpoint=parse_endpoint("tcp://127.0.0.1:0"), seed=1, default_ttl_s=default_ttl_s)
    host = ChaosHost(load_agent("chaosagenkit.targets:echo"), config)
    app = host_api.application(host, options)
    runner, port = await start_app(app, bind, 0)
    try:
        yield Plane(
            url=f"http://127.0.0.1:{port}",
            port=port,
            read_path="/faults",
            change_path="/faults",
            change_body=b'{"kind": "fail_every", "nth": 1000}',
            changes=lambda: len(host.chaos.active_faults()),
            app=app,
            target=host,
        )
    finally:
        await runner.cleanup()
        host.chaos.clear_faults()
