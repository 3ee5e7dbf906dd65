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

from chaosagenkit.api import Route, fault_routes
from chaosagenkit.exceptions import ConfigurationError

if TYPE_CHECKING:
    from chaosagenkit.llm.server import LlmEndpoint

__all__ = ["routes"]


def routes(endpoint: LlmEndpoint) -> list[Route]:
    """The route table of ``endpoint``'s control API."""

    async def requests(request: web.Request) -> Any:
        last_text = request.query.get("last", "0")
        if not last_text.isdigit():
            raise ConfigurationError("last", f"must be an integer >= 0, got {last_text!r}")
        since = request.query.get("since_inject", "false").lower()
        if since not in ("true", "false"):
            raise ConfigurationError("since_inject", f"must be true or false, got {since!r}")
        return {"requests": endpoint.recent_requests(int(last_text), since == "true")}

    return [*fault_routes(endpoint), Route("GET", "/requests", requests)]
