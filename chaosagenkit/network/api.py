"""The fault proxy's HTTP API: Toxiproxy's routes and JSON, plus seed and stats.

Every route is in ``routes()``; handlers only translate HTTP to
``ProxyServer`` calls and back (statuses as Toxiproxy: 201 for a created
proxy and for populate, 200 for a created toxic, 204 for deletes and reset).
Beyond Toxiproxy: ``GET/POST /seed``, ``GET /proxies/{proxy}/stats`` and a
``stats`` object in every proxy.
"""

from __future__ import annotations

from aiohttp import web

from chaosagenkit.api import ApiError, Reply, Route, read_json
from chaosagenkit.network.server import ProxyServer

__all__ = ["routes"]


def routes(server: ProxyServer) -> list[Route]:
    """The route table of one proxy daemon."""

    async def version(request: web.Request) -> dict:
        return server.version_json()

    async def reset(request: web.Request) -> Reply:
        problems = await server.reset()
        if problems:
            raise ApiError(409, "reset done, but " + "; ".join(problems))
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
        proxy = server.get(request.match_info["proxy"])
        return [spec.as_json() for spec in proxy.toxics.values()]

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
