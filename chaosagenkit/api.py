"""What the two control planes (chaos host, fault proxy) share.

Both are small aiohttp applications. The rules they keep, stated once:

- Every route is declared in ONE table of ``Route`` entries.
- Handlers return a JSON-serialisable value (status 200) or a ``Reply``
  with another status. The domain code they call raises domain errors;
  each API maps them to statuses in ONE ``ErrorTable`` (as Toxiproxy's
  ``Err*`` values do), which ``_error_middleware`` applies. ``ApiError``
  is for what only HTTP knows (a body that is not JSON, a missing token,
  a refused browser).
- Every error body is ``{"error": "...", "status": N}`` (Toxiproxy's shape),
  including 401, 403, 404 and 405. Nothing a client sends yields a 5xx; a
  5xx means a chaosagenkit bug and is logged with its traceback.
- Loopback by default: ``check_bind`` refuses a non-loopback address
  without a token of at least 16 characters (``chaosagenkit.credentials``),
  and with a token every call needs
  ``Authorization: Bearer TOKEN``.
- What a web page can make a browser send is refused (``_browser_guard``):
  a browser's user agent (``Mozilla/...``, Toxiproxy's guard, with its
  message, unless ``allow_browsers``), a ``Host`` header that does not name
  this API (DNS rebinding), and an ``Origin`` other than the API itself (a
  cross-site form or ``fetch``). Scripts and Toxiproxy clients send neither
  a browser's user agent nor an ``Origin``. A JSON body is read whatever its
  content type (``curl -d`` sends form-encoded; Toxiproxy reads it too).
- Slow and idle clients cannot hold the API (``_Connections``): a new
  connection must send its request head within ``header_timeout_s``, a
  kept-alive one its next request within ``idle_timeout_s``, a body must
  arrive within ``body_timeout_s`` (408), and at most ``max_connections``
  are held: beyond that the one waiting longest is closed, or, when every
  one is busy with a request, the newcomer gets a 503.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from chaosagenkit import metrics
from chaosagenkit.control_options import ControlOptions
from chaosagenkit.credentials import bind_token_problem
from chaosagenkit.exceptions import ConfigurationError, FaultNotFound
from chaosagenkit.validation import require_seed

__all__ = [
    "COMMON_ERRORS",
    "ApiError",
    "ErrorTable",
    "FaultHolder",
    "Reply",
    "Route",
    "build_app",
    "check_bind",
    "connection_families",
    "fault_routes",
    "is_loopback",
    "metrics_route",
    "parse_host_port",
    "read_json",
    "read_seed",
    "start_app",
]

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[Any]]
#: Domain error class -> HTTP status; a subclass maps as its closest listed base.
ErrorTable = Mapping[type[BaseException], int]

#: What every control API maps the same way: a value the user got wrong, a fault id that is gone.
COMMON_ERRORS: ErrorTable = {ConfigurationError: 400, FaultNotFound: 404}

#: Toxiproxy's answer to a browser (api.go, stopBrowsersMiddleware), kept word for word.
BROWSER_REFUSED = "User agent not allowed"


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
    """An error only HTTP knows about (bad JSON, no token, a browser): status and one line."""

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
    errors: ErrorTable = COMMON_ERRORS,
    options: ControlOptions | None = None,
) -> web.Application:
    """Build an aiohttp application from a route table and its error table, with the guards."""
    options = options or ControlOptions()
    connections = _Connections(options)
    table = {**COMMON_ERRORS, **errors}
    app = web.Application(
        middlewares=[
            connections.middleware,
            _error_middleware(table),
            _browser_guard(options, connections),
            _auth_middleware(options.token),
        ],
        client_max_size=options.max_body_bytes,
    )
    app[_CONNECTIONS] = connections
    app.on_cleanup.append(connections.clear)
    for route in routes:
        app.router.add_route(route.method, route.path, _json_handler(route.handler))
    return app


class FaultHolder(Protocol):
    """What a process that holds faults behind a control API offers (the chaos host, the LLM endpoint).

    ``add_faults`` is a coroutine: the host acquires memory and threads for what it adds.
    """

    def health(self) -> Any: ...
    def faults(self) -> Any: ...
    async def add_faults(self, data: Any) -> list[Any]: ...
    def remove_fault(self, fault_id: str) -> Any: ...
    def clear_faults(self) -> Any: ...
    def stats(self) -> Any: ...
    def reseed(self, seed: int) -> None: ...


def fault_routes(holder: FaultHolder) -> list[Route]:
    """The routes every fault-holding control API has, the same way.

    ``GET /health``, ``GET /faults``, ``POST /faults`` (one object or a list,
    201), ``DELETE /faults``, ``DELETE /faults/{fault_id}`` (404 when gone),
    ``GET /stats``, ``POST /seed``.
    """

    async def health(request: web.Request) -> Any:
        return holder.health()

    async def list_faults(request: web.Request) -> Any:
        return holder.faults()

    async def add_faults(request: web.Request) -> Any:
        data = await read_json(request)
        created = await holder.add_faults(data)
        return Reply(201, created if isinstance(data, list) else created[0])

    async def clear_faults(request: web.Request) -> Any:
        return {"removed": holder.clear_faults()}

    async def remove_fault(request: web.Request) -> Any:
        fault_id = request.match_info["fault_id"]
        removed = holder.remove_fault(fault_id)
        if removed is None:
            raise FaultNotFound(f"no active fault with id {fault_id!r} (it may have expired)")
        return removed

    async def stats(request: web.Request) -> Any:
        return holder.stats()

    async def reseed(request: web.Request) -> Any:
        seed = await read_seed(request)
        holder.reseed(seed)
        return {"seed": seed}

    return [
        Route("GET", "/health", health),
        Route("GET", "/faults", list_faults),
        Route("POST", "/faults", add_faults),
        Route("DELETE", "/faults", clear_faults),
        Route("DELETE", "/faults/{fault_id}", remove_fault),
        Route("GET", "/stats", stats),
        Route("POST", "/seed", reseed),
    ]


async def read_json(request: web.Request, *, required: bool = True) -> Any:
    """Parse the request body as JSON, whatever its content type; a bad body is a 400."""
    timeout = request.app[_CONNECTIONS].options.body_timeout_s
    try:
        async with asyncio.timeout(timeout):
            raw = await request.read()
    except TimeoutError:
        raise ApiError(408, f"the request body did not arrive within {timeout:g} s") from None
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


async def read_seed(request: web.Request) -> int:
    """``POST /seed``'s body, ``{"seed": N}``: N checked by the one validator (``require_seed``)."""
    body = await read_json(request)
    if not isinstance(body, dict) or "seed" not in body:
        raise ConfigurationError("seed", 'is missing: send {"seed": N}')
    return require_seed(body["seed"])


async def start_app(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start ``app`` on host:port (0 = ephemeral); return the runner and the bound port.

    A control API (``build_app``) gets its connection guards; any other app
    (the LLM endpoint's model API, a data plane) is served as aiohttp serves it.
    """
    connections: _Connections | None = app.get(_CONNECTIONS)
    keepalive = connections.options.idle_timeout_s if connections else 75.0  # aiohttp's default otherwise
    if connections is not None:
        connections.bind_host = host
    # aiohttp's own keep-alive timer agrees with ours; ours also covers the first request.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=keepalive)
    await runner.setup()
    if connections is not None and runner.server is not None:  # setup() made it
        connections.watch(runner.server)
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    # The one site's bound address: port 0 asks the kernel for a free one.
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, bound


def metrics_route(families: Callable[[], Iterable[metrics.Family]]) -> Route:
    """``GET /metrics``: ``families()`` and the API's own connections, in Prometheus text format."""

    async def handler(request: web.Request) -> web.Response:
        text = metrics.render([*families(), *request.app[_CONNECTIONS].metric_families()])
        return web.Response(body=text.encode(), headers={"Content-Type": metrics.CONTENT_TYPE})

    return Route("GET", "/metrics", handler)


def connection_families(app: web.Application) -> list[metrics.Family]:
    """The control API's own connections (what ``GET /metrics`` adds to a plane's families)."""
    return app[_CONNECTIONS].metric_families()


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


# -- handlers and errors ------------------------------------------------------------


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


def _status_of(error: BaseException, table: ErrorTable) -> int | None:
    for cls in type(error).__mro__:
        if cls in table:
            return table[cls]
    return None


def _error_middleware(table: ErrorTable) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as e:
            return error_response(e.status, e.message)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            return error_response(e.status, e.reason)
        except Exception as e:
            status = _status_of(e, table)
            if status is not None:
                return error_response(status, str(e))
            # a bug of ours: say so, never leak a traceback to the client
            logger.exception("control API handler failed on %s %s", request.method, request.path)
            return error_response(500, f"internal error: {type(e).__name__}: {e}")

    return errors


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


# -- browsers ------------------------------------------------------------------------


def _browser_guard(options: ControlOptions, connections: _Connections) -> Callable[..., Awaitable[Any]]:
    """Refuse what a web page can make a browser send (see the module's docstring)."""
    allowed = {_host_name(name) for name in options.allowed_hosts}

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not options.allow_browsers and request.headers.get("User-Agent", "").startswith("Mozilla/"):
            raise ApiError(403, BROWSER_REFUSED)
        host = request.headers.get("Host")
        if host is not None and not _names_this_api(_host_name(host), connections.bind_host, allowed):
            raise ApiError(
                403,
                f"Host {host!r} does not name this API (bound to {connections.bind_host}); "
                "a name it should answer to needs --allowed-host",
            )
        origin = request.headers.get("Origin")
        if origin is not None and (host is None or origin.lower() != f"http://{host}".lower()):
            raise ApiError(403, f"cross-origin request refused: Origin {origin!r} is not this API")
        return await handler(request)

    return guard


def _host_name(host: str) -> str:
    """The name part of a Host header value, lower case: ``[::1]:80`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def _names_this_api(name: str, bind_host: str, allowed: set[str]) -> bool:
    """Whether a request's Host name can only have come from a client meaning this API.

    Accepted: the bind address; ``localhost`` and any loopback address when
    bound to loopback; when bound to every interface (0.0.0.0, ::) any IP
    address, ``localhost`` and this machine's host name; and the allowed
    names. A DNS-rebinding page arrives with its own domain name as Host.
    """
    bind = _host_name(bind_host)
    if name == bind or name in allowed:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    if bind in ("0.0.0.0", "::", ""):
        return address is not None or name in _LOCAL_NAMES or name == socket.gethostname().lower()
    if is_loopback(bind):
        return (address is not None and address.is_loopback) or name in _LOCAL_NAMES
    return False


_LOCAL_NAMES = ("localhost", "localhost.localdomain")


# -- slow and idle clients -------------------------------------------------------------


class _Connections:
    """The connections of one control API: a deadline while each waits for a request, and a cap.

    aiohttp tells its ``web.Server`` of every connection made and lost
    (``connection_made`` / ``connection_lost``); ``watch`` hooks in there.
    A connection is *waiting* from when it is made, and again after each
    response, until its next request's head has arrived (the middleware
    sees the request): a waiting connection is closed at its deadline. A
    connection is *busy* while a handler runs; body reads have their own
    timeout (``read_json``).
    """

    def __init__(self, options: ControlOptions) -> None:
        self.options = options
        self.bind_host = "127.0.0.1"
        self._waiting: OrderedDict[Any, asyncio.TimerHandle] = OrderedDict()  # oldest first
        self._busy: dict[Any, int] = {}  # transport -> requests in progress (pipelining)
        self.closed = 0  # connections closed or refused for being slow, idle or over the limit
        self._closed = _Throttled("control API: %d slow, idle or excess connection(s) closed (latest: %s)")

    def watch(self, server: web.Server) -> None:
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self._made(transport)

        def connection_lost(handler: Any, exc: BaseException | None) -> None:
            transport = handler.transport
            lost(handler, exc)
            self._forget(transport)

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign, assignment]

    async def clear(self, app: web.Application | None = None) -> None:
        """Forget every connection and cancel every deadline (the API stopped)."""
        for handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        self._busy.clear()

    @property
    def held(self) -> int:
        return len(self._waiting) + len(self._busy)

    def metric_families(self) -> list[metrics.Family]:
        held = metrics.Family(
            "chaosagenkit_control_connections",
            "gauge",
            "Connections the control API holds: waiting for a request, or busy with one.",
        )
        held.add(len(self._waiting), {"state": "waiting"})
        held.add(len(self._busy), {"state": "busy"})
        closed = metrics.Family(
            "chaosagenkit_control_connections_closed_total",
            "counter",
            "Connections the control API closed or refused for being slow, idle or over its limit.",
        )
        closed.add(self.closed)
        return [held, closed]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        transport = request.transport
        self._start(transport)
        try:
            return await handler(request)
        finally:
            self._finish(transport)

    def _made(self, transport: asyncio.Transport) -> None:
        if self.held >= self.options.max_connections:
            if self._waiting:
                oldest = next(iter(self._waiting))
                self._forget(oldest)
                oldest.abort()
                self.closed += 1
                self._closed.note("connection limit reached: the longest waiting one closed")
            else:
                _refuse(transport, "every control connection is busy; try again")
                self.closed += 1
                self._closed.note("connection limit reached with every connection busy: newcomer refused")
                return
        self._wait(transport, self.options.header_timeout_s, "no complete request head in time")

    def _wait(self, transport: Any, timeout_s: float, why: str) -> None:
        def expire() -> None:
            if self._waiting.pop(transport, None) is not None:
                transport.abort()  # not close(): a client that does not read would keep the socket
                self.closed += 1
                self._closed.note(why)

        self._waiting[transport] = asyncio.get_running_loop().call_later(timeout_s, expire)

    def _start(self, transport: Any) -> None:
        if transport is None:
            return
        handle = self._waiting.pop(transport, None)
        if handle is not None:
            handle.cancel()
        self._busy[transport] = self._busy.get(transport, 0) + 1

    def _finish(self, transport: Any) -> None:
        if transport is None or transport not in self._busy:
            return
        self._busy[transport] -= 1
        if self._busy[transport] == 0:
            del self._busy[transport]
            if not transport.is_closing():
                self._wait(transport, self.options.idle_timeout_s, "idle after its last request")

    def _forget(self, transport: Any) -> None:
        handle = self._waiting.pop(transport, None)
        if handle is not None:
            handle.cancel()
        self._busy.pop(transport, None)


def _refuse(transport: asyncio.Transport, message: str) -> None:
    body = json.dumps({"error": message, "status": 503}).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
    )
    transport.write(head.encode() + body)
    transport.close()


class _Throttled:
    """A warning logged at most once per ``interval_s``, with how many times it happened meanwhile."""

    def __init__(self, template: str, interval_s: float = 10.0) -> None:
        self._template = template
        self._interval_s = interval_s
        self._count = 0
        self._last = float("-inf")

    def note(self, why: str) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._last >= self._interval_s:
            logger.warning(self._template, self._count, why)
            self._count = 0
            self._last = now


_CONNECTIONS = web.AppKey("chaosagenkit_connections", _Connections)
