"""Build a declared topology (hosts leaves first, one proxy per edge), read it, tear it down.

``chaosagenkit.control`` calls ``build`` after the fault proxy daemon (if the
experiment declares one) and before the clients, ``journal_section`` when
it writes the journal, and ``teardown`` whatever happens. Rules kept here:

- Start order is ``Topology.start_order`` (leaves first). For each host,
  first the proxies of its outgoing edges (upstream: the callee, already
  up), then the host itself, its ``{edge:NAME}`` resolved to the edge's
  endpoint: the proxy's listen address with the callee's scheme. Edges from
  ``clients`` get their proxies last. A proxy daemon is started if the run
  has none (``chaosagenkit proxy``, as for declared proxies).
- Hosts and edges are ordinary servers and proxies of the run
  (``SANDBOX.servers`` / ``SANDBOX.proxies``), under their own names: every
  service action takes a host as ``server``, every network action an edge
  as ``proxy``, and the generic teardown clears and removes them.
- Teardown stops the hosts in the reverse start order (callers first, so
  no host is left calling a stopped one), then forgets the topology; it is
  idempotent and never raises before every host is stopped.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from chaosagenkit.exceptions import ConfigurationError, TargetError
from chaosagenkit.sandbox import SANDBOX
from chaosagenkit.topology import measure
from chaosagenkit.topology.netns import DnsNamespace
from chaosagenkit.topology.spec import (
    CLIENTS,
    COMPOSITION_ENV,
    Topology,
    composition_env,
    expand_edges,
    parse_topology,
)

__all__ = [
    "SYSTEMS",
    "active",
    "build",
    "clients_calling",
    "dns_namespace",
    "edge_endpoint",
    "edge_middleware",
    "edge_window",
    "find_edge",
    "host_stats",
    "journal_section",
    "node_metrics",
    "signal_host",
    "teardown",
    "topology_named",
]

logger = logging.getLogger("chaostoolkit")

_lock = threading.RLock()
#: The topologies of this run, by name (usually one).
SYSTEMS: dict[str, Topology] = {}
#: edge name -> the endpoint its caller uses.
_ENDPOINTS: dict[str, str] = {}
_STARTED: list[str] = []  # host names, in start order
_NAMESPACES: dict[str, Any] = {}  # topology name -> chaosagenkit.topology.netns.DnsNamespace


def build(spec: Any, configuration: dict[str, Any] | None = None) -> Topology:
    """Start every host of ``spec`` and the proxy of every edge; return the parsed topology.

    ``spec`` is one topology declaration or a list of them. Raises
    ``ConfigurationError`` before anything starts when the declaration is
    wrong; a host that does not come up raises ``ProcessStartError`` (the
    control then tears down what was started).
    """
    configuration = configuration or {}
    specs = spec if isinstance(spec, list) else [spec]
    topologies = [parse_topology(s, str(configuration.get("transport") or "tcp")) for s in specs]
    names = [t.name for t in topologies] + [n for t in topologies for n in [*t.hosts, *t.edges]]
    clash = sorted({n for n in names if names.count(n) > 1} | {n for n in names if n in SANDBOX.servers})
    if clash:
        raise ConfigurationError("topology", f"names {clash[0]!r} twice (in a topology or as a server)")
    for topology in topologies:
        _build_one(topology, configuration)
    return topologies[0]


def _build_one(topology: Topology, configuration: dict[str, Any]) -> None:
    # Imported on use: it loads aiohttp and hpack; other paths here never need it.
    from chaosagenkit.network import daemons as network_daemons
    from chaosagenkit.service import hosts as service_hosts

    with _lock:
        SYSTEMS[topology.name] = topology
    namespace = _open_namespace(topology) if topology.namespace is not None else None
    if any(edge.proxied for edge in topology.edges.values()) and not SANDBOX.proxy_daemons:
        network_daemons.start_or_register_daemon({}, configuration)
    for name in topology.start_order:
        host = topology.hosts[name]
        endpoints = {edge.name: _open_edge(edge, namespace) for edge in topology.edges_from(name)}
        server = dict(host.server)
        if namespace is not None:
            server["namespace"] = namespace.name
        env = {
            key: expand_edges(str(value), endpoints, f"topology.hosts.{name}.env.{key}")
            for key, value in (host.server.get("env") or {}).items()
        }
        if host.compose is not None:
            env[COMPOSITION_ENV] = composition_env(host, topology, endpoints)
        if env:
            server["env"] = env
        service_hosts.start_or_register(server)
        with _lock:
            _STARTED.append(name)
    for edge in topology.edges_from(CLIENTS):
        _open_edge(edge, namespace)
    SANDBOX.record_event(
        "topology", topology.name, hosts=list(topology.start_order), edges=list(topology.edges)
    )


def _open_namespace(topology: Topology) -> Any:
    """Build the topology's namespace and DNS; hosts declared in it are placed there."""
    # Imported on use: it loads aiohttp; other paths here never need it.
    from chaosagenkit.service.hosts import PLACEMENTS, Placement

    namespace = DnsNamespace(topology.namespace or {})
    with _lock:
        _NAMESPACES[topology.name] = namespace
    namespace.build()
    PLACEMENTS[namespace.name] = Placement(namespace.command_prefix, "127.0.0.1", namespace.reach_control)
    SANDBOX.record_event("namespace", topology.name, namespace=namespace.name, dns_zone=namespace.zone)
    return namespace


def dns_namespace(system: str = "") -> Any:
    """The DNS namespace of topology ``system`` (or of the run's only one that has one)."""
    with _lock:
        if system:
            namespace = _NAMESPACES.get(system)
        else:
            namespace = next(iter(_NAMESPACES.values()), None) if len(_NAMESPACES) == 1 else None
    if namespace is None:
        raise ConfigurationError("system", "names no topology of this run with its own namespace and DNS")
    return namespace


def _open_edge(edge: Any, namespace: Any = None) -> str:
    """Declare the edge's proxy (if proxied) and return the endpoint its caller uses."""
    # Imported on use: it loads aiohttp and hpack; other paths here never need it.
    from chaosagenkit.network import daemons as network_daemons

    callee = SANDBOX.servers[edge.target]
    scheme = callee.endpoint.partition("://")[0]
    if edge.by_name:
        if namespace is None:  # parse_topology refuses by_name without a namespace
            raise ConfigurationError(f"topology.edges.{edge.name}.by_name", "needs the topology's namespace")
        port = callee.endpoint.rsplit(":", 1)[1]
        endpoint = f"{scheme}://{namespace.host_name(edge.target)}:{port}"
        with _lock:
            _ENDPOINTS[edge.name] = endpoint
        return endpoint
    if edge.proxied:
        # Imported on use, as above: the client registry loads the client harness.
        from chaosagenkit.client.registry import resolve_endpoint

        # The proxy of a unix-socket callee listens on a unix socket beside it.
        network_daemons.declare_proxy_from_spec({"name": edge.name, "upstream": f"server:{edge.target}"})
        endpoint = resolve_endpoint(server=edge.target, proxy=edge.name)
    else:
        endpoint = callee.endpoint
    with _lock:
        _ENDPOINTS[edge.name] = endpoint
    return endpoint


def edge_endpoint(edge: str) -> str:
    """The endpoint the caller of ``edge`` uses (the edge's proxy, or the callee if not proxied)."""
    with _lock:
        if edge not in _ENDPOINTS:
            raise ConfigurationError(
                "edge", f"unknown edge {edge!r} (known: {', '.join(sorted(_ENDPOINTS)) or 'none'})"
            )
        return _ENDPOINTS[edge]


def find_edge(edge: str) -> tuple[Topology, Any]:
    """The topology and Edge named ``edge``."""
    with _lock:
        for topology in SYSTEMS.values():
            if edge in topology.edges:
                return topology, topology.edges[edge]
        known = ", ".join(sorted(e for t in SYSTEMS.values() for e in t.edges)) or "none"
    raise ConfigurationError("edge", f"unknown edge {edge!r} (known: {known})")


def node_metrics(host: str, configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """A composition host's node metrics (its edges' outcomes and middleware), from GET /middleware."""
    # Imported on use: it loads aiohttp; other paths here never need it.
    from chaosagenkit.service.hosts import client_for, resolve_server, token_from

    body = client_for(resolve_server(host, token_from(configuration))).get("/middleware")
    for entry in body.get("middleware") or [] if isinstance(body, dict) else []:
        if entry.get("type") == "TopologyNode":
            return entry.get("metrics") or {}
    raise ConfigurationError("host", f"{host!r} is not a composition host of a topology (no TopologyNode)")


def host_stats(host: str, configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """GET /stats of a host."""
    # Imported on use: it loads aiohttp; other paths here never need it.
    from chaosagenkit.service.hosts import client_for, resolve_server, token_from

    return client_for(resolve_server(host, token_from(configuration)), timeout_s=5.0).get("/stats")


def journal_section() -> dict[str, Any]:
    """Per topology: the declaration, per host its stats, per edge what its caller saw, per tier success.

    Read from the live hosts just before teardown; a host that is down is
    marked ``"reachable": false`` and its edges' data is missing.
    """
    with _lock:
        topologies = list(SYSTEMS.values())
        endpoints = dict(_ENDPOINTS)
    t0 = min((e["t"] for e in SANDBOX.timeline()), default=0.0)
    systems = []
    for topology in topologies:
        described = topology.describe()
        edges_seen: dict[str, dict[str, Any]] = {}
        for host in described["hosts"]:
            ref = SANDBOX.servers.get(host["name"])
            host["endpoint"] = ref.endpoint if ref else None
            try:
                stats = host_stats(host["name"])
                host["reachable"] = True
                host["requests"] = stats.get("requests")
                host["injected"] = stats.get("injected")
                if host["kind"] != "agent":
                    metrics = node_metrics(host["name"])
                    host["answered"], host["failed"] = metrics.get("answered"), metrics.get("failed")
                    host["parts"] = metrics.get("parts")
                    edges_seen.update(metrics.get("edges") or {})
            except (TargetError, ConfigurationError) as e:
                host["reachable"] = False
                host["error"] = str(e)[:200]
        called = {e["to"] for e in described["edges"] if e["from"] == CLIENTS}
        for host in described["hosts"]:  # clients calling an entry host without an entry edge
            if host["tier"] == 1 and host["name"] not in called and host.get("endpoint"):
                described["edges"].append(
                    {"name": f"clients-{host['name']}", "from": CLIENTS, "to": host["name"], "tier": 0,
                     "proxied": False, "direct": True}
                )  # fmt: skip
        for edge in described["edges"]:
            edge["endpoint"] = endpoints.get(edge["name"]) or (
                SANDBOX.servers[edge["to"]].endpoint if edge.get("direct") else None
            )
            seen = edges_seen.get(edge["name"])
            if edge["from"] == CLIENTS:
                seen = _clients_view(edge["endpoint"])
                edge["clients"] = sorted(seen["clients"]) if seen else []
            if seen is not None:
                edge.update(measure.edge_record(seen, t0))
        described["tiers"] = measure.tier_success(described["edges"])
        systems.append(described)
    return {"t0": round(t0, 3), "systems": systems}


def clients_calling(endpoint: str | None) -> dict[str, Any]:
    """The run's clients whose endpoint is ``endpoint``, by name."""
    return {
        name: c
        for name, c in list(SANDBOX.clients.items())
        if endpoint and getattr(c, "endpoint", None) == endpoint
    }


def _clients_view(endpoint: str | None) -> dict[str, Any] | None:
    """The outcomes of every client calling ``endpoint``, as one edge's columns."""
    clients = clients_calling(endpoint)
    if not clients:
        return None
    rows: list[tuple[float, float, str | None, bool]] = []
    for client in clients.values():
        window = client.recorder.select()
        rows += zip(window.t, window.latency_ms, window.error, window.wrong, strict=True)
    rows.sort()
    return {
        "clients": list(clients),
        "outcomes": {
            "t": [r[0] for r in rows],
            "latency_ms": [r[1] for r in rows],
            "error": [r[2] for r in rows],
            "wrong": [r[3] for r in rows],
        },
    }


def teardown() -> list[str]:
    """Stop the topology's hosts, callers first; forget the topology. Returns the hosts stopped."""
    # Imported on use: it loads aiohttp; other paths here never need it.
    from chaosagenkit.service import hosts as service_hosts

    stopped: list[str] = []
    with _lock:
        order = list(reversed(_STARTED))
        _STARTED.clear()
        SYSTEMS.clear()
        _ENDPOINTS.clear()
        namespaces = list(_NAMESPACES.values())
        _NAMESPACES.clear()
    for name in order:
        try:
            if service_hosts.forget_server(name):
                stopped.append(name)
        except Exception as e:  # the next host must still be stopped
            logger.error(f"chaosagenkit: could not stop topology host {name!r}: {e}")
    for namespace in namespaces:  # after its hosts: nothing runs in it any more
        service_hosts.PLACEMENTS.pop(namespace.name, None)
        try:
            namespace.teardown()
        except Exception as e:
            logger.error(f"chaosagenkit: could not remove namespace {namespace.name}: {e}")
    return stopped


def active() -> bool:
    with _lock:
        return bool(SYSTEMS or _STARTED or _NAMESPACES)


def edge_window(edge: str, configuration: dict[str, Any] | None = None) -> Any:
    """Every call made over ``edge`` so far, as a recorder Window (epoch send times)."""
    _topology, found = find_edge(edge)
    if found.source == CLIENTS:
        seen = _clients_view(edge_endpoint(edge))
        return measure.window_from_columns(seen["outcomes"] if seen else {})
    metrics = node_metrics(found.source, configuration)
    seen = (metrics.get("edges") or {}).get(edge)
    if seen is None:
        raise TargetError(f"host {found.source!r} does not report edge {edge!r}")
    return measure.window_from_columns(seen.get("outcomes") or {})


def edge_middleware(edge: str, configuration: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """agenkit's decorators on ``edge`` inside its calling host, outermost first."""
    _topology, found = find_edge(edge)
    if found.source == CLIENTS:
        raise ConfigurationError("edge", f"{edge!r} comes from the clients: read the client's middleware")
    seen = (node_metrics(found.source, configuration).get("edges") or {}).get(edge) or {}
    return list(seen.get("middleware") or [])


def topology_named(system: str = "") -> Topology:
    """The topology ``system`` (or the run's only one)."""
    with _lock:
        if system:
            if system not in SYSTEMS:
                raise ConfigurationError(
                    "system", f"unknown topology {system!r} (known: {', '.join(SYSTEMS) or 'none'})"
                )
            return SYSTEMS[system]
        if len(SYSTEMS) != 1:
            raise ConfigurationError("system", f"must be given: this run has {len(SYSTEMS)} topologies")
        return next(iter(SYSTEMS.values()))


def signal_host(host: str, signum: int, wait_s: float) -> dict[str, Any]:
    """Send ``signum`` to a host this run started; wait up to ``wait_s`` for it to exit.

    The ``signal`` event goes on the timeline when the signal is sent (what
    in-flight probes measure from), the ``exit`` event when it is gone.
    """
    import signal as signals
    import time

    ref = SANDBOX.servers.get(host)
    if ref is None or ref.process is None:
        raise ConfigurationError("host", f"must be a host this run started, got {host!r}")
    if ref.process.poll() is not None:
        raise TargetError(f"host {host!r} is not running (exit code {ref.process.returncode})")
    name = signals.Signals(signum).name
    sent = time.monotonic()
    SANDBOX.record_event("signal", host, signal=name, pid=ref.process.pid)
    ref.process.send_signal(signum)
    try:
        code = ref.process.wait(wait_s)
    except Exception:
        code = None
    took = round(time.monotonic() - sent, 3)
    SANDBOX.record_event("exit", host, signal=name, exit_code=code, after_s=took)
    # The host stays registered: restart_server brings it back on the same addresses.
    return {
        "host": host,
        "signal": name,
        "exit_code": code,
        "exited_after_s": took if code is not None else None,
    }
