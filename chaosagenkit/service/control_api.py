"""The chaos host's control API: every route in one table (``routes``).

Errors, auth and the JSON shapes are ``chaosagenkit.api``'s: bad input is a
4xx ``{"error": ..., "status": ...}`` naming the field, and changes nothing.

| route                  | does                                                  |
|------------------------|-------------------------------------------------------|
| GET /health            | agent name, endpoint, control URL, pid, seed, ports   |
| GET /faults            | active faults, oldest first                           |
| POST /faults           | add one fault (object) or several (list), 201         |
| DELETE /faults         | clear all (releases memory, stops CPU threads)        |
| DELETE /faults/{id}    | remove one (404 if unknown)                           |
| GET /stats             | requests, injected by kind, latency (ms), resources   |
| POST /crash            | {"when": now|next_request|after_requests, ...}, 202   |
| POST /seed             | {"seed": N}: restart the fault RNG from N             |
| GET /middleware        | agenkit decorators around and inside the ChaosAgent   |
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from chaosagenkit.api import ApiError, Reply, Route, read_json
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.faults.service import Crash

if TYPE_CHECKING:
    from chaosagenkit.service.host import ChaosHost

__all__ = ["routes"]

MAX_SEED = 2**63 - 1


def routes(host: ChaosHost) -> list[Route]:
    """The route table of ``host``'s control API."""

    async def health(request: web.Request) -> Any:
        return host.health()

    async def list_faults(request: web.Request) -> Any:
        return host.faults()

    async def add_faults(request: web.Request) -> Any:
        data = await read_json(request)
        created = await host.add_faults(data)
        return Reply(201, created if isinstance(data, list) else created[0])

    async def clear_faults(request: web.Request) -> Any:
        return {"removed": host.clear_faults()}

    async def remove_fault(request: web.Request) -> Any:
        fault_id = request.match_info["fault_id"]
        removed = host.remove_fault(fault_id)
        if removed is None:
            raise ApiError(404, f"no active fault with id {fault_id!r} (it may have expired)")
        return removed

    async def stats(request: web.Request) -> Any:
        return host.stats()

    async def crash(request: web.Request) -> Any:
        body = await read_json(request, required=False)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ConfigurationError("body", f"must be a JSON object, got {body!r}")
        spec = Crash.from_json({"kind": "crash", **body})
        created = await host.add_faults(spec.to_json())
        return Reply(202, {"crash": spec.when, "fault": created[0]})

    async def reseed(request: web.Request) -> Any:
        body = await read_json(request)
        seed = body.get("seed") if isinstance(body, dict) else None
        if not isinstance(body, dict) or "seed" not in body:
            raise ConfigurationError("seed", 'is missing: send {"seed": N}')
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise ConfigurationError("seed", f"must be an integer >= 0, got {seed!r}")
        host.reseed(seed)
        return {"seed": seed}

    async def middleware(request: web.Request) -> Any:
        return {"middleware": host.middleware()}

    return [
        Route("GET", "/health", health),
        Route("GET", "/faults", list_faults),
        Route("POST", "/faults", add_faults),
        Route("DELETE", "/faults", clear_faults),
        Route("DELETE", "/faults/{fault_id}", remove_fault),
        Route("GET", "/stats", stats),
        Route("POST", "/crash", crash),
        Route("POST", "/seed", reseed),
        Route("GET", "/middleware", middleware),
    ]
