"""What the two control planes (chaos host, fault proxy) share.

Both are small aiohttp applications. The rules they keep, stated once:

- Every route is declared in ONE table of ``Route`` entries.
- Handlers return a JSON-serialisable value (status 200) or a ``Reply``
  with another status; they raise ``ApiError`` or ``ConfigurationError``
  for bad input, and those map to statuses HERE, in ``_error_middleware``.
- Every error body is ``{"error": "...", "status": N}`` (Toxiproxy's shape),
  including 401, 404 and 405. Nothing a client sends yields a 5xx; a 5xx
  means a chaosagenkit bug and is logged with its traceback.
- Loopback by default: ``check_bind`` refuses a non-loopback address
  without a token of at least 16 characters (``chaosagenkit.credentials``),
  and with a token every call needs
  ``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from chaosagenkit.credentials import bind_token_problem
from chaosagenkit.exceptions import ConfigurationError

__all__ = [
    "ApiError",
    "Reply",
    "Route",
    "build_app",
    "check_bind",
    "is_loopback",
    "parse_host_port",
    "read_json",
    "start_app",
]

logger = logging.getLogger("chaosagenkit.api")

Handler = Callable[[web.Request], Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    """One route of a control API: ``Route("GET", "/faults", list_faults)``."""

    method: str
    path: str
    handler: Handler


@dataclass(frozen=True)
class Reply:
    """A handler result with a status other than 200 (201 Created, 204 No Content)."""

    status: int
    body: Any = None


class ApiError(Exception):
    """An error a handler reports to the client: status and one-line message."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def error_response(status: int, message: str) -> web.Response:
    """The single place that writes an error body."""
    return web.json_response({"error": message, "status": status}, status=status)


def build_app(
    routes: Iterable[Route],
    *,
    token: str | None = None,
    client_max_size: int = 1024 * 1024,
) -> web.Application:
    """Build an aiohttp application from a route table, with auth and error mapping."""
    app = web.Application(
        middlewares=[_error_middleware, _auth_middleware(token)],
        client_max_size=client_max_size,
    )
    for route in routes:
        app.router.add_route(route.method, route.path, _json_handler(route.handler))
    return app


async def read_json(request: web.Request, *, required: bool = True) -> Any:
    """Parse the request body as JSON; a bad body is a 400 naming the problem."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise ApiError(400, "request body must be JSON, got an empty body")
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ApiError(400, f"request body is not valid JSON: {e}") from e
    except (ValueError, RecursionError) as e:  # a 5000-digit integer, arrays nested 100000 deep
        raise ApiError(400, f"request body is JSON this server refuses to decode: {e}") from e


async def start_app(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start ``app`` on host:port (0 = ephemeral); return the runner and the bound port."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = port
    for server_socket in site._server.sockets if site._server else ():
        bound = server_socket.getsockname()[1]
        break
    return runner, bound


def is_loopback(host: str) -> bool:
    """True when ``host`` is a loopback name or address."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None, option: str) -> None:
    """Refuse to expose a control plane beyond loopback without a token of ``MIN_TOKEN_LENGTH``."""
    needed = None if is_loopback(host) else bind_token_problem(token)
    if needed:
        raise ConfigurationError(
            option,
            f"is {host}, which is not a loopback address: "
            f"a control plane reachable from other hosts needs {needed}",
        )


def parse_host_port(value: str, option: str, *, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """Parse ``HOST:PORT`` (or ``:PORT`` / ``PORT``) into a host and a port 0..65535."""
    text = value.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    host = host.strip("[]") or default_host
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigurationError(option, f"must be HOST:PORT, got {value!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigurationError(option, f"port must be between 0 and 65535, got {port}")
    return host, port


def _json_handler(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        result = await handler(request)
        if isinstance(result, web.StreamResponse):
            return result
        if isinstance(result, Reply):
            if result.status == 204 or result.body is None:
                return web.Response(status=result.status)
            return web.json_response(result.body, status=result.status)
        return web.json_response(result)

    return wrapped


@web.middleware
async def _error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as e:
        return error_response(e.status, e.message)
    except ConfigurationError as e:
        return error_response(400, str(e))
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return error_response(e.status, e.reason)
    except Exception as e:  # a bug of ours: say so, never leak a traceback to the client
        logger.exception("control API handler failed on %s %s", request.method, request.path)
        return error_response(500, f"internal error: {type(e).__name__}: {e}")


def _auth_middleware(token: str | None) -> Callable[..., Awaitable[web.StreamResponse]]:
    expected = f"Bearer {token}".encode() if token else None

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if expected is not None:
            # aiohttp keeps undecodable header bytes as surrogates; surrogateescape gives
            # them back, so a header that is not UTF-8 is simply a wrong token (401).
            given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
            if not hmac.compare_digest(given, expected):
                raise ApiError(401, "missing or wrong bearer token (Authorization: Bearer TOKEN)")
        return await handler(request)

    return auth
