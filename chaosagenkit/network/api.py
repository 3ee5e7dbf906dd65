"""The fault proxy's HTTP API: Toxiproxy's routes and JSON, plus seed, stats and metrics.

Every route is in ``routes()``; handlers only translate HTTP to
``ProxyServer`` calls and back (statuses as Toxiproxy: 201 for a created
proxy and for populate, 200 for a created toxic, 204 for deletes and reset).
The server's domain errors become statuses in ONE table, ``ERRORS`` (as
Toxiproxy's ``Err*`` values in api.go): to change a status, change it there.
Beyond Toxiproxy: ``GET/POST /seed``, ``GET /proxies/{proxy}/stats``, a
``stats`` object in every proxy, and ``GET /metrics`` always on (Toxiproxy's
``-proxy-metrics`` names for bytes, ours for connections and toxics).
"""

from __future__ import annotations

from aiohttp import web

from chaosagenkit import metrics
from chaosagenkit.api import ErrorTable, Reply, Route, build_app, metrics_route, read_json
from chaosagenkit.control_options import ControlOptions
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.network.server import (
    AddressInUse,
    BadRequestBody,
    CannotListen,
    InvalidStream,
    MissingField,
    ProxyExists,
    ProxyNotFound,
    ProxyServer,
    ResetIncomplete,
    ToxicExists,
    ToxicNotFound,
)

__all__ = ["ERRORS", "application", "metric_families", "routes"]

#: The proxy server's errors and their statuses, the one place they are decided.
ERRORS: ErrorTable = {
    ConfigurationError: 400,  # a value out of range, of the wrong type, an unknown toxic type
    BadRequestBody: 400,
    MissingField: 400,
    InvalidStream: 400,
    ProxyNotFound: 404,
    ToxicNotFound: 404,
    ProxyExists: 409,
    ToxicExists: 409,
    AddressInUse: 409,
    CannotListen: 400,
    ResetIncomplete: 409,
}


def application(server: ProxyServer, options: ControlOptions | None = None) -> web.Application:
    """The API of ``server`` as an aiohttp application (``chaosagenkit.api.start_app`` serves it)."""
    return build_app(routes(server), errors=ERRORS, options=options)


def routes(server: ProxyServer) -> list[Route]:
    """The route table of one proxy daemon."""

    async def version(request: web.Request) -> dict:
        return server.version_json()

    async def reset(request: web.Request) -> Reply:
        await server.reset()
        return Reply(204)

    async def get_seed(request: web.Request) -> dict:
        return {"seed": server.seed}

    async def set_seed(request: web.Request) -> dict:
        return server.set_seed(await read_json(request))

    async def list_proxies(request: web.Request) -> dict:
        return {name: proxy.as_json() for name, proxy in server.proxies.items()}

    async def create_proxy(request: web.Request) -> Reply:
        proxy = await server.create_proxy(await read_json(request))
        return Reply(201, proxy.as_json())

    async def populate(request: web.Request) -> Reply:
        proxies = await server.populate(await read_json(request))
        return Reply(201, {"proxies": [proxy.as_json() for proxy in proxies]})

    async def show_proxy(request: web.Request) -> dict:
        return server.get(request.match_info["proxy"]).as_json()

    async def update_proxy(request: web.Request) -> dict:
        proxy = await server.update_proxy(request.match_info["proxy"], await read_json(request))
        return proxy.as_json()

    async def delete_proxy(request: web.Request) -> Reply:
        await server.delete_proxy(request.match_info["proxy"])
        return Reply(204)

    async def proxy_stats(request: web.Request) -> dict:
        return server.get(request.match_info["proxy"]).stats_json()

    async def list_toxics(request: web.Request) -> list:
        return server.get(request.match_info["proxy"]).toxics_json()

    async def create_toxic(request: web.Request) -> dict:
        spec = await server.create_toxic(request.match_info["proxy"], await read_json(request))
        return spec.as_json()

    async def show_toxic(request: web.Request) -> dict:
        return server.get_toxic(request.match_info["proxy"], request.match_info["toxic"]).as_json()

    async def update_toxic(request: web.Request) -> dict:
        spec = await server.update_toxic(
            request.match_info["proxy"], request.match_info["toxic"], await read_json(request)
        )
        return spec.as_json()

    async def delete_toxic(request: web.Request) -> Reply:
        await server.delete_toxic(request.match_info["proxy"], request.match_info["toxic"])
        return Reply(204)

    proxy = "/proxies/{proxy}"
    toxic = "/proxies/{proxy}/toxics/{toxic}"
    return [
        Route("GET", "/version", version),
        metrics_route(lambda: metric_families(server)),
        Route("POST", "/reset", reset),
        Route("GET", "/seed", get_seed),
        Route("POST", "/seed", set_seed),
        Route("GET", "/proxies", list_proxies),
        Route("POST", "/proxies", create_proxy),
        Route("POST", "/populate", populate),
        Route("GET", proxy, show_proxy),
        Route("POST", proxy, update_proxy),
        Route("PATCH", proxy, update_proxy),
        Route("DELETE", proxy, delete_proxy),
        Route("GET", f"{proxy}/stats", proxy_stats),
        Route("GET", f"{proxy}/toxics", list_toxics),
        Route("POST", f"{proxy}/toxics", create_toxic),
        Route("GET", toxic, show_toxic),
        Route("POST", toxic, update_toxic),
        Route("PATCH", toxic, update_toxic),
        Route("DELETE", toxic, delete_toxic),
    ]


def metric_families(server: ProxyServer) -> list[metrics.Family]:
    """Per proxy and per toxic: bytes and connections, counted since each proxy was created.

    Bytes use Toxiproxy's names and labels (``toxiproxy_proxy_received_bytes_total``
    and ``_sent_bytes_total``, by direction, proxy, listener, upstream), so its
    dashboards work; the rest are ours. A toxic keeps its counters after it
    is removed (``present`` 0) until its proxy is deleted.
    """
    received = metrics.Family(
        "toxiproxy_proxy_received_bytes_total", "counter", "Bytes the proxy read, by direction of the link."
    )
    sent = metrics.Family(
        "toxiproxy_proxy_sent_bytes_total", "counter", "Bytes the proxy wrote, by direction of the link."
    )
    accepted = metrics.Family(
        "chaosagenkit_proxy_connections_total", "counter", "Client connections the proxy accepted."
    )
    active = metrics.Family(
        "chaosagenkit_proxy_connections_active", "gauge", "Client connections open through the proxy now."
    )
    enabled = metrics.Family("chaosagenkit_proxy_enabled", "gauge", "1 when the proxy listens, 0 when down.")
    present = metrics.Family(
        "chaosagenkit_proxy_toxic_present", "gauge", "1 while the toxic is on the proxy, 0 after removal."
    )
    toxic_bytes = metrics.Family(
        "chaosagenkit_proxy_toxic_bytes_total",
        "counter",
        "Bytes that reached the toxic on connections where it was active.",
    )
    toxic_connections = metrics.Family(
        "chaosagenkit_proxy_toxic_connections_total", "counter", "Connections on which the toxic was active."
    )
    toxic_acted = metrics.Family(
        "chaosagenkit_proxy_toxic_acted_total",
        "counter",
        "Times the toxic changed traffic (delayed, dropped, cut, corrupted ...).",
    )
    for name, proxy in server.proxies.items():
        where = {"proxy": name, "listener": proxy.listen, "upstream": proxy.upstream}
        for direction, stats in (("upstream", proxy.upstream_stats), ("downstream", proxy.downstream_stats)):
            received.add(stats.received, {"direction": direction, **where})
            sent.add(stats.sent, {"direction": direction, **where})
        accepted.add(proxy.connections_total, where)
        active.add(len(proxy.connections), where)
        enabled.add(int(proxy.enabled), where)
        for toxic_name, tally in proxy.toxic_history.items():
            labels = {"proxy": name, "toxic": toxic_name}
            present.add(int(toxic_name in proxy.toxics), labels)
            toxic_bytes.add(tally.bytes, labels)
            toxic_connections.add(tally.connections, labels)
            toxic_acted.add(tally.acted, labels)
    return [received, sent, accepted, active, enabled, present, toxic_bytes, toxic_connections, toxic_acted]
