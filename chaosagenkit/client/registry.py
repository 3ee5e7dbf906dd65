"""The run's clients: create from declarations, drive, close, export outcomes.

Clients live in ``SANDBOX.clients`` under their names; their async work
runs on the client runtime's loop (``chaosagenkit.client.runtime``). A
closed client stays registered until ``close_all_clients`` so its outcomes
still reach the journal. Every function checks its arguments before it
changes anything and raises ``ConfigurationError`` for bad input.

Endpoint resolution for a declaration (first that applies):
``endpoint`` (non-empty) as given; ``proxy``: the proxy's listen address
with the scheme of ``transport``, else of ``server``'s endpoint, else of the
server whose endpoint the proxy's upstream points at, else tcp;
``server``: that server's endpoint.
"""

from __future__ import annotations

import threading
from typing import Any

from chaosagenkit.activity import require, require_number, require_text
from chaosagenkit.client.harness import DEFAULT_TIMEOUT_MS, MAX_CONNECTIONS, Client
from chaosagenkit.client.runtime import RUNTIME
from chaosagenkit.client.traffic import Traffic, send_batch
from chaosagenkit.exceptions import ConfigurationError, TargetError
from chaosagenkit.sandbox import SANDBOX
from chaosagenkit.validation import require_known_keys

__all__ = [
    "CLIENT_KEYS",
    "TRANSPORTS",
    "close_all_clients",
    "close_client",
    "create_client",
    "create_client_from_spec",
    "export_outcomes",
    "get_client",
    "resolve_endpoint",
    "send_requests",
    "start_traffic",
    "stop_traffic",
    "traffic_summary",
]

#: Keys a client declaration (control ``clients`` entry) may hold.
CLIENT_KEYS = (
    "name", "endpoint", "server", "proxy", "transport", "middleware",
    "timeout_ms", "connections", "answer_check", "request_content",
)  # fmt: skip
#: Schemes a client can call with agenkit's RemoteAgent (the chaos host serves the first six).
TRANSPORTS = ("tcp", "unix", "ws", "http", "h2c", "grpc", "https", "wss")
MAX_BATCH = 1_000_000
MAX_TRAFFIC_S = 24 * 3600.0

_lock = threading.RLock()


def create_client_from_spec(spec: dict[str, Any]) -> Any:
    """Create and register a client from a control declaration (see ``CLIENT_KEYS``)."""
    if not isinstance(spec, dict):
        raise ConfigurationError("clients[]", f"must be an object, got {spec!r}")
    require_known_keys(spec, CLIENT_KEYS, "a client setting")
    return create_client(**spec)


def create_client(
    name: str,
    endpoint: str = "",
    server: str = "",
    proxy: str = "",
    transport: str = "",
    middleware: list[dict[str, Any]] | None = None,
    timeout_ms: int | None = None,
    connections: int = 1,
    answer_check: str = "echo",
    request_content: str = "req-{n}",
) -> Any:
    """Build a client over agenkit's RemoteAgent and middleware and register it under ``name``."""
    require_text(name, "name")
    timeout_ms = DEFAULT_TIMEOUT_MS if timeout_ms is None else timeout_ms
    require_number(timeout_ms, "timeout_ms", minimum=1, integer=True)
    require_number(connections, "connections", minimum=1, maximum=MAX_CONNECTIONS, integer=True)
    resolved = resolve_endpoint(endpoint, server, proxy, transport)
    with _lock:
        existing = SANDBOX.clients.get(name)
        if existing is not None and not getattr(existing, "closed", True):
            raise ConfigurationError("name", f"client {name!r} already exists (close it first)")
        client = Client(
            name,
            resolved,
            middleware=middleware,
            timeout_ms=int(timeout_ms),
            connections=int(connections),
            answer_check=answer_check,
            request_content=request_content,
        )
        SANDBOX.clients[name] = client
    return client


def resolve_endpoint(endpoint: str = "", server: str = "", proxy: str = "", transport: str = "") -> str:
    """The agenkit endpoint a declaration points at (rules in the module docstring)."""
    for value, arg in (
        (endpoint, "endpoint"),
        (server, "server"),
        (proxy, "proxy"),
        (transport, "transport"),
    ):
        require(isinstance(value, str), arg, "a string", value)
    if transport:
        require(transport in TRANSPORTS, "transport", f"one of {', '.join(TRANSPORTS)}", transport)
    if endpoint.strip():
        return endpoint.strip()
    server_ref = _server(server) if server else None
    if proxy:
        proxy_ref = SANDBOX.proxies.get(proxy)
        if proxy_ref is None:
            raise ConfigurationError("proxy", f"unknown proxy {proxy!r} (known: {_names(SANDBOX.proxies)})")
        on_unix = proxy_ref.listen.startswith("unix:")
        scheme = (
            transport
            or _scheme_of(server_ref)
            or _scheme_of(_server_at(proxy_ref.upstream))
            or ("unix" if on_unix else "tcp")
        )
        if on_unix:
            if scheme != "unix":
                raise ConfigurationError(
                    "proxy", f"{proxy!r} listens on {proxy_ref.listen}: only unix:// reaches it"
                )
            return f"unix://{proxy_ref.listen.removeprefix('unix:')}"
        if scheme == "unix":
            raise ConfigurationError(
                "proxy",
                f"{proxy!r} listens on TCP ({proxy_ref.listen}): give it a listen 'unix:/PATH' for unix://",
            )
        return f"{scheme}://{_connectable(proxy_ref.listen)}"
    if server_ref is not None:
        scheme = _scheme_of(server_ref)
        if transport and scheme != transport:
            raise ConfigurationError(
                "transport", f"is {transport!r} but server {server!r} serves {server_ref.endpoint}"
            )
        return server_ref.endpoint
    raise ConfigurationError("endpoint", "is missing: give an endpoint, a server or a proxy")


def get_client(name: str) -> Any:
    """The registered client ``name``; ConfigurationError naming the known ones otherwise."""
    require_text(name, "client")
    client = SANDBOX.clients.get(name)
    if client is None:
        raise ConfigurationError("client", f"unknown client {name!r} (known: {_names(SANDBOX.clients)})")
    return client


def _open_client(name: str) -> Any:
    client = get_client(name)
    if client.closed:
        raise ConfigurationError("client", f"client {name!r} is closed")
    return client


def send_requests(
    name: str,
    count: int,
    concurrency: int = 1,
    distinct: int = 0,
    interval_ms: float = 0.0,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """Send ``count`` requests and return their summary (see ``Window.summary``)."""
    client = _open_client(name)
    require_number(count, "count", minimum=1, maximum=MAX_BATCH, integer=True)
    require_number(concurrency, "concurrency", minimum=1, maximum=10_000, integer=True)
    require_number(distinct, "distinct", minimum=0, integer=True)
    require_number(interval_ms, "interval_ms", minimum=0)
    require_number(timeout_s, "timeout_s", minimum=0, exclusive_minimum=True)
    batch = RUNTIME.run(
        send_batch(client, int(count), int(concurrency), int(distinct), interval_ms, remember=True), timeout_s
    )
    return batch.summary()


def start_traffic(
    name: str, rate_per_s: float, duration_s: float, concurrency: int, distinct: int = 0
) -> dict[str, Any]:
    """Start background traffic on client ``name``; return how it is driven."""
    client = _open_client(name)
    require_number(rate_per_s, "rate_per_s", minimum=0)
    require_number(duration_s, "duration_s", minimum=0, maximum=MAX_TRAFFIC_S, exclusive_minimum=True)
    require_number(concurrency, "concurrency", minimum=1, maximum=10_000, integer=True)
    require_number(distinct, "distinct", minimum=0, integer=True)
    with _lock:
        if client.traffic is not None and client.traffic.running:
            raise ConfigurationError("client", f"client {name!r} already has traffic running (stop it first)")
        traffic = Traffic(client, float(rate_per_s), float(duration_s), int(concurrency), int(distinct))
        RUNTIME.call(traffic.start)
        client.traffic = traffic
    return {
        "client": name,
        "mode": traffic.mode,
        "rate_per_s": traffic.rate_per_s,
        "duration_s": traffic.duration_s,
        "concurrency": traffic.concurrency,
        "started": round(traffic.started, 3),
    }


def stop_traffic(name: str, drain_s: float = 10.0) -> dict[str, Any]:
    """Stop client ``name``'s traffic; return that traffic's summary."""
    client = get_client(name)
    require_number(drain_s, "drain_s", minimum=0)
    traffic = client.traffic
    if traffic is None:
        raise ConfigurationError("client", f"client {name!r} has no traffic to stop")
    RUNTIME.run(traffic.stop(drain_s), drain_s + 10.0)
    client.traffic = None
    client.raise_if_check_failed()
    return RUNTIME.call(traffic.summary)


def traffic_summary(name: str) -> dict[str, Any]:
    """Client ``name``'s current traffic summarised so far, without stopping it."""
    client = get_client(name)
    traffic = client.traffic
    if traffic is None:
        raise ConfigurationError("client", f"client {name!r} has no traffic")
    client.raise_if_check_failed()
    return RUNTIME.call(traffic.summary)


def close_client(name: str) -> dict[str, Any]:
    """Stop the client's traffic and close its connections; return its whole summary."""
    client = get_client(name)
    if not client.closed:
        RUNTIME.run(client.close(), 30.0)
    return client.recorder.select().summary()


def close_all_clients() -> None:
    """Close every client, forget them and stop the runtime (idempotent)."""
    problems = []
    with _lock:
        clients = list(SANDBOX.clients.items())
        for name, client in clients:
            if getattr(client, "closed", True):
                continue
            try:
                RUNTIME.run(client.close(), 30.0)
            except Exception as e:  # keep closing the others
                problems.append(f"{name}: {e}")
        for name, _client in clients:
            SANDBOX.clients.pop(name, None)
        RUNTIME.stop()
    if problems:
        raise TargetError(f"could not close every client: {'; '.join(problems)}")


def export_outcomes() -> dict[str, Any]:
    """Every client's outcomes in the journal's columnar format (see docs/client.md)."""
    exported = {}
    for name, client in list(SANDBOX.clients.items()):
        t0 = round(client.created, 3)
        exported[name] = {
            "endpoint": client.endpoint,
            "middleware": client.middleware,
            "t0": t0,
            "outcomes": client.recorder.export(t0),
        }
    return exported


def _server(name: str) -> Any:
    ref = SANDBOX.servers.get(name)
    if ref is None:
        raise ConfigurationError("server", f"unknown server {name!r} (known: {_names(SANDBOX.servers)})")
    return ref


def _server_at(host_port: str) -> Any:
    for ref in SANDBOX.servers.values():
        if ref.endpoint.split("://", 1)[-1].rstrip("/") == host_port:
            return ref
    return None


def _scheme_of(server_ref: Any) -> str:
    if server_ref is None or "://" not in server_ref.endpoint:
        return ""
    return server_ref.endpoint.split("://", 1)[0]


def _connectable(listen: str) -> str:
    """A listen address to connect to: a wildcard host means this machine."""
    host, _, port = listen.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = "127.0.0.1"
    return f"{host}:{port}"


def _names(mapping: dict[str, Any]) -> str:
    return ", ".join(sorted(mapping)) or "none"
