"""The LLM endpoint's control API: every route in one table (``routes``).

Errors, auth and the JSON shapes are ``chaosagenkit.api``'s, as for the
chaos host: bad input is a 4xx ``{"error": ..., "status": ...}`` naming the
field, and changes nothing.

| route                  | does                                                        |
|------------------------|-------------------------------------------------------------|
| GET /health            | base URLs, control URL, mode, upstream, pid, seed, ports    |
| GET /faults            | active faults, oldest first                                 |
| POST /faults           | add one fault (object) or several (list), 201               |
| DELETE /faults         | clear all                                                   |
| DELETE /faults/{id}    | remove one (404 if unknown)                                 |
| GET /stats             | requests, since last inject, injected by kind, tokens, TTFT |
| GET /requests          | the request log (``?last=N``, ``?since_inject=true``)        |
| POST /seed             | {"seed": N}: restart the fault RNG from N                   |
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from chaosagenkit.api import ApiError, Reply, Route, read_json, read_seed
from chaosagenkit.exceptions import ConfigurationError

if TYPE_CHECKING:
    from chaosagenkit.llm.server import LlmEndpoint

__all__ = ["routes"]


def routes(endpoint: LlmEndpoint) -> list[Route]:
    """The route table of ``endpoint``'s control API."""

    async def health(request: web.Request) -> Any:
        return endpoint.health()

    async def list_faults(request: web.Request) -> Any:
        return endpoint.faults()

    async def add_faults(request: web.Request) -> Any:
        data = await read_json(request)
        created = endpoint.add_faults(data)
        return Reply(201, created if isinstance(data, list) else created[0])

    async def clear_faults(request: web.Request) -> Any:
        return {"removed": endpoint.clear_faults()}

    async def remove_fault(request: web.Request) -> Any:
        fault_id = request.match_info["fault_id"]
        removed = endpoint.remove_fault(fault_id)
        if removed is None:
            raise ApiError(404, f"no active fault with id {fault_id!r} (it may have expired)")
        return removed

    async def stats(request: web.Request) -> Any:
        return endpoint.stats()

    async def requests(request: web.Request) -> Any:
        last_text = request.query.get("last", "0")
        if not last_text.isdigit():
            raise ConfigurationError("last", f"must be an integer >= 0, got {last_text!r}")
        since = request.query.get("since_inject", "false").lower()
        if since not in ("true", "false"):
            raise ConfigurationError("since_inject", f"must be true or false, got {since!r}")
        return {"requests": endpoint.recent_requests(int(last_text), since == "true")}

    async def reseed(request: web.Request) -> Any:
        seed = await read_seed(request)
        endpoint.reseed(seed)
        return {"seed": seed}

    return [
        Route("GET", "/health", health),
        Route("GET", "/faults", list_faults),
        Route("POST", "/faults", add_faults),
        Route("DELETE", "/faults", clear_faults),
        Route("DELETE", "/faults/{fault_id}", remove_fault),
        Route("GET", "/stats", stats),
        Route("GET", "/requests", requests),
        Route("POST", "/seed", reseed),
    ]
