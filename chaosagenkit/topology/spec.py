"""A topology declaration as data: hosts, edges, compositions, start order, tiers (no I/O).

A topology is a system of chaos hosts that call each other. The control's
``topology`` argument declares it::

    {"name": "shop",
     "transport": "tcp",
     "hosts": [
       {"name": "primary", "agent": "chaosagenkit.targets:echo"},
       {"name": "backup"},
       {"name": "front", "compose": {"kind": "fallback", "children": ["to_primary", "to_backup"]}}],
     "edges": [
       {"name": "to_primary", "from": "front", "to": "primary", "timeout_ms": 500,
        "middleware": [{"type": "circuit_breaker", "failure_threshold": 3}]},
       {"name": "to_backup", "from": "front", "to": "backup"},
       {"name": "entry", "from": "clients", "to": "front"}]}

Rules kept here (the design rules of a topology):

- A host is a ``chaosagenkit serve`` with the fields of a control ``servers``
  entry (``agent``, ``transport``, ``env``, ``seed``, ...), or a composition
  (``compose``): agenkit's own composition class over the host's outgoing
  edges, served by ``chaosagenkit.topology.node:composition``.
- An edge is one caller-to-callee link: its own fault proxy (named after the
  edge, so every network action takes the edge's name as ``proxy``), its
  own agenkit RemoteAgent and middleware inside the calling host. ``from``
  is a host, or ``clients`` for the run's top-level callers (a proxy in
  front of an entry host; clients name it as their ``proxy``).
  The proxy of a unix:// callee listens on a unix socket beside the
  callee's. ``"proxy": false`` connects directly, and then no network
  fault can reach that edge.
- ``{edge:NAME}`` in a host's ``env`` becomes that edge's endpoint (the
  proxy's address with the callee's scheme): how any agent, not only a
  composition, is pointed at its dependencies.
- The graph has no cycle. Hosts start leaves first (a callee is up, and
  its edge's proxy exists, before any caller starts) and stop in the
  reverse order; ties keep declaration order.
- ``"namespace": {"dns_zone": "chaos.test"}`` runs every host in a network
  namespace of the run with its own DNS responder
  (``chaosagenkit.topology.netns``); an edge with ``"by_name": true`` calls its
  callee as ``<host>.<zone>``, so name-resolution faults reach it. Edges
  there are not proxied (the fault proxy cannot reach into the namespace).
- Tiers: the top-level clients are tier 0, a host called by no host is
  tier 1, any other host one more than its deepest caller; an edge belongs
  to the tier of its caller. "Success per tier" is the success of the calls
  made on that tier's edges.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chaosagenkit.client.stack import validate_middleware
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.names import check_name
from chaosagenkit.validation import require_known_keys

__all__ = [
    "CLIENTS",
    "COMPOSITION_ENV",
    "COMPOSITION_KINDS",
    "CONDITIONS",
    "EDGE_KEYS",
    "HOST_KEYS",
    "NODE_AGENT",
    "Edge",
    "Host",
    "Topology",
    "composition_env",
    "expand_edges",
    "parse_topology",
]

#: The ``from`` of an edge in front of an entry host: the run's top-level callers.
CLIENTS = "clients"
#: The agent factory that serves a composition host.
NODE_AGENT = "chaosagenkit.topology.node:composition"
#: The environment variable that carries a composition host's declaration (JSON).
COMPOSITION_ENV = "CHAOSAGENKIT_COMPOSITION"
#: kind -> the agenkit class a composition host serves.
COMPOSITION_KINDS = {
    "sequential": "agenkit.composition.SequentialAgent",
    "parallel": "agenkit.composition.ParallelAgent",
    "fallback": "agenkit.composition.FallbackAgent",
    "conditional": "agenkit.composition.ConditionalAgent",
    "patterns.sequential": "agenkit.patterns.SequentialAgent",
    "patterns.parallel": "agenkit.patterns.ParallelAgent",
    "patterns.fallback": "agenkit.patterns.FallbackAgent",
}
#: Aggregators of ``patterns.parallel`` (agenkit's ``default_aggregators``).
AGGREGATORS = ("majority_vote", "first", "concatenate")
#: Conditions of a ``conditional`` route -> what the value is.
CONDITIONS = {
    "content_contains": "a substring of the content (agenkit's content_contains)",
    "role_equals": "a role (agenkit's role_equals)",
    "metadata_has_key": "a metadata key (agenkit's metadata_has_key)",
    "metadata_equals": "[key, value] (agenkit's metadata_equals)",
    "request_id_prefix": "a prefix of metadata request_id (e.g. a client's 'caller:')",
}
HOST_KEYS = ("name", "agent", "transport", "endpoint", "seed", "env", "http_default_middleware", "compose")
EDGE_KEYS = ("name", "from", "to", "middleware", "timeout_ms", "connections", "proxy", "by_name")
TOPOLOGY_KEYS = ("name", "transport", "hosts", "edges", "namespace")
COMPOSE_KEYS = ("kind", "children", "routes", "default", "aggregator")
DEFAULT_EDGE_TIMEOUT_MS = 5000
MAX_CONNECTIONS = 256


@dataclass(frozen=True)
class Edge:
    name: str
    source: str  # a host name, or CLIENTS
    target: str
    middleware: list[dict[str, Any]] = field(default_factory=list)
    timeout_ms: int = DEFAULT_EDGE_TIMEOUT_MS
    connections: int = 1
    proxied: bool = True
    by_name: bool = False  # the endpoint names the callee by its DNS name in the topology's namespace


@dataclass(frozen=True)
class Host:
    name: str
    server: dict[str, Any]  # the control ``servers`` entry, before {edge:NAME} expansion
    compose: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        return self.compose["kind"] if self.compose else "agent"


@dataclass(frozen=True)
class Topology:
    name: str
    hosts: dict[str, Host]  # declaration order
    edges: dict[str, Edge]
    start_order: list[str]  # leaves first
    tiers: dict[str, int]  # host -> tier (>= 1)
    namespace: dict[str, Any] | None = None  # run every host in the run's own namespace and DNS

    def edges_from(self, source: str) -> list[Edge]:
        return [edge for edge in self.edges.values() if edge.source == source]

    def edges_to(self, target: str) -> list[Edge]:
        return [edge for edge in self.edges.values() if edge.target == target]

    def edge_tier(self, edge: Edge) -> int:
        return 0 if edge.source == CLIENTS else self.tiers[edge.source]

    def describe(self) -> dict[str, Any]:
        """The declaration as the journal keeps it (no endpoints: those are the run's)."""
        return {
            "name": self.name,
            "hosts": [
                {
                    "name": host.name,
                    "tier": self.tiers[host.name],
                    "kind": host.kind,
                    "agent": host.server.get("agent"),
                    "transport": host.server.get("transport"),
                    **({"children": _children_of(host.compose)} if host.compose else {}),
                }
                for host in self.hosts.values()
            ],
            "edges": [
                {
                    "name": edge.name,
                    "from": edge.source,
                    "to": edge.target,
                    "tier": self.edge_tier(edge),
                    "middleware": edge.middleware,
                    "timeout_ms": edge.timeout_ms,
                    "connections": edge.connections,
                    "proxied": edge.proxied,
                    **({"by_name": True} if edge.by_name else {}),
                }
                for edge in self.edges.values()
            ],
            "start_order": list(self.start_order),
            **({"namespace": dict(self.namespace)} if self.namespace is not None else {}),
        }


def parse_topology(spec: Any, default_transport: str = "tcp") -> Topology:
    """Check a declaration and return the Topology; ``ConfigurationError`` names the first problem."""
    if not isinstance(spec, dict):
        raise ConfigurationError("topology", f"must be an object with hosts and edges, got {spec!r:.80}")
    _no_unknown(spec, TOPOLOGY_KEYS, "topology")
    name = check_name(spec.get("name") or "system", "topology.name")
    transport = spec.get("transport") or default_transport
    hosts_spec, edges_spec = spec.get("hosts"), spec.get("edges") or []
    if not isinstance(hosts_spec, list) or not hosts_spec:
        raise ConfigurationError("topology.hosts", "must be a non-empty list of hosts")
    if not isinstance(edges_spec, list):
        raise ConfigurationError("topology.edges", f"must be a list of edges, got {edges_spec!r:.80}")

    edges: dict[str, Edge] = {}
    for index, entry in enumerate(edges_spec):
        edge = _parse_edge(entry, f"topology.edges[{index}]")
        if edge.name in edges:
            raise ConfigurationError(f"topology.edges[{index}].name", f"{edge.name!r} is declared twice")
        edges[edge.name] = edge

    hosts: dict[str, Host] = {}
    for index, entry in enumerate(hosts_spec):
        host = _parse_host(entry, f"topology.hosts[{index}]", transport)
        if host.name in hosts or host.name in edges or host.name == CLIENTS:
            raise ConfigurationError(
                f"topology.hosts[{index}].name", f"{host.name!r} is already the name of a host or an edge"
            )
        hosts[host.name] = host

    for edge in edges.values():
        where = f"topology.edges.{edge.name}"
        if edge.source != CLIENTS and edge.source not in hosts:
            raise ConfigurationError(f"{where}.from", f"must be a host or {CLIENTS!r}, got {edge.source!r}")
        if edge.target not in hosts:
            raise ConfigurationError(f"{where}.to", f"must be a host, got {edge.target!r}")
        if edge.source == edge.target:
            raise ConfigurationError(f"{where}.to", "an edge cannot call its own host")
    for host in hosts.values():
        _check_uses(host, edges)

    namespace = spec.get("namespace")
    if namespace is not None and not isinstance(namespace, dict):
        raise ConfigurationError(
            "topology.namespace", f"must be an object (may be empty), got {namespace!r:.80}"
        )
    for edge in edges.values():
        if namespace is not None and edge.proxied:
            raise ConfigurationError(
                f"topology.edges.{edge.name}.proxy",
                "must be false in a topology with its own namespace (the fault proxy cannot reach into it)",
            )
        if edge.by_name and namespace is None:
            raise ConfigurationError(
                f"topology.edges.{edge.name}.by_name", "needs the topology's namespace and DNS"
            )
    order = _start_order(hosts, edges)
    return Topology(name, hosts, edges, order, _tiers(hosts, edges, order), namespace)


def expand_edges(text: str, endpoints: dict[str, str], where: str) -> str:
    """Replace each ``{edge:NAME}`` in ``text`` with that edge's endpoint."""
    while "{edge:" in text:
        start = text.index("{edge:")
        end = text.find("}", start)
        if end < 0:
            raise ConfigurationError(where, f"has an unclosed {{edge:NAME}}: {text!r:.80}")
        edge = text[start + len("{edge:") : end]
        if edge not in endpoints:
            known = ", ".join(sorted(endpoints)) or "none"
            raise ConfigurationError(
                where, f"refers to edge {edge!r}, not an edge of this host (has: {known})"
            )
        text = text[:start] + endpoints[edge] + text[end + 1 :]
    return text


def composition_env(host: Host, topology: Topology, endpoints: dict[str, str]) -> str:
    """The JSON ``COMPOSITION_ENV`` value a composition host is started with."""
    assert host.compose is not None
    edges = {
        edge.name: {
            "endpoint": endpoints[edge.name],
            "to": edge.target,
            "middleware": edge.middleware,
            "timeout_ms": edge.timeout_ms,
            "connections": edge.connections,
        }
        for edge in topology.edges_from(host.name)
    }
    return json.dumps({"name": host.name, **host.compose, "edges": edges}, sort_keys=True)


# -- parsing helpers -------------------------------------------------------------------


def _parse_edge(entry: Any, where: str) -> Edge:
    if not isinstance(entry, dict):
        raise ConfigurationError(where, f"must be an object, got {entry!r:.80}")
    _no_unknown(entry, EDGE_KEYS, where)
    name = check_name(entry.get("name"), f"{where}.name")
    source = _host_name(entry.get("from"), f"{where}.from")
    target = _host_name(entry.get("to"), f"{where}.to")
    timeout_ms = _integer(
        entry.get("timeout_ms", DEFAULT_EDGE_TIMEOUT_MS), f"{where}.timeout_ms", 1, 3_600_000
    )
    connections = _integer(entry.get("connections", 1), f"{where}.connections", 1, MAX_CONNECTIONS)
    proxied = entry.get("proxy", True)
    by_name = entry.get("by_name", False)
    for flag, key in ((proxied, "proxy"), (by_name, "by_name")):
        if not isinstance(flag, bool):
            raise ConfigurationError(f"{where}.{key}", f"must be true or false, got {flag!r}")
    middleware = _json_list(entry.get("middleware"), f"{where}.middleware")
    if source == CLIENTS and (middleware or "timeout_ms" in entry or "connections" in entry):
        raise ConfigurationError(
            where, "an edge from clients has no middleware of its own: declare it on the clients"
        )
    return Edge(
        name,
        source,
        target,
        validate_middleware(middleware, f"{where}.middleware"),
        timeout_ms,
        connections,
        proxied,
        by_name,
    )


def _host_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(where, f"must name a host, got {value!r:.80}")
    return value


def _parse_host(entry: Any, where: str, transport: str) -> Host:
    if not isinstance(entry, dict):
        raise ConfigurationError(where, f"must be an object, got {entry!r:.80}")
    _no_unknown(entry, HOST_KEYS, where)
    name = check_name(entry.get("name"), f"{where}.name")
    server = {key: value for key, value in entry.items() if key != "compose"}
    server["transport"] = entry.get("transport") or transport
    compose = entry.get("compose")
    if compose is None:
        server.setdefault("agent", "chaosagenkit.targets:echo")
        return Host(name, server)
    if "agent" in entry:
        raise ConfigurationError(f"{where}.agent", "a composition host serves its composition: drop 'agent'")
    server["agent"] = NODE_AGENT
    return Host(name, server, _parse_compose(compose, f"{where}.compose"))


def _parse_compose(compose: Any, where: str) -> dict[str, Any]:
    if not isinstance(compose, dict):
        raise ConfigurationError(where, f"must be an object with a kind, got {compose!r:.80}")
    _no_unknown(compose, COMPOSE_KEYS, where)
    kind = compose.get("kind")
    if kind not in COMPOSITION_KINDS:
        raise ConfigurationError(
            f"{where}.kind", f"must be one of {', '.join(COMPOSITION_KINDS)}, got {kind!r}"
        )
    parsed: dict[str, Any] = {"kind": kind}
    if kind == "conditional":
        if "children" in compose:
            raise ConfigurationError(f"{where}.children", "a conditional has routes and a default instead")
        routes = compose.get("routes") or []
        if not isinstance(routes, list):
            raise ConfigurationError(f"{where}.routes", f"must be a list, got {routes!r:.80}")
        parsed["routes"] = [_parse_route(route, f"{where}.routes[{i}]") for i, route in enumerate(routes)]
        default = compose.get("default")
        if not isinstance(default, str) or not default:
            raise ConfigurationError(f"{where}.default", f"must name an edge, got {default!r}")
        parsed["default"] = default
        return parsed
    for key in ("routes", "default"):
        if key in compose:
            raise ConfigurationError(f"{where}.{key}", f"belongs to a conditional, not a {kind}")
    children = compose.get("children")
    if not isinstance(children, list) or not children or not all(isinstance(c, str) for c in children):
        raise ConfigurationError(
            f"{where}.children", f"must be a non-empty list of edge names, got {children!r:.80}"
        )
    if len(set(children)) != len(children):
        raise ConfigurationError(f"{where}.children", f"names an edge twice: {children!r:.80}")
    parsed["children"] = list(children)
    if kind == "patterns.parallel":
        aggregator = compose.get("aggregator", "majority_vote")
        if aggregator not in AGGREGATORS:
            raise ConfigurationError(
                f"{where}.aggregator", f"must be one of {', '.join(AGGREGATORS)}, got {aggregator!r}"
            )
        parsed["aggregator"] = aggregator
    elif "aggregator" in compose:
        raise ConfigurationError(f"{where}.aggregator", "belongs to patterns.parallel")
    return parsed


def _parse_route(route: Any, where: str) -> dict[str, Any]:
    if not isinstance(route, dict) or not isinstance(route.get("edge"), str) or "when" not in route:
        raise ConfigurationError(
            where, f'must be {{"when": {{CONDITION: VALUE}}, "edge": NAME}}, got {route!r:.80}'
        )
    when = route["when"]
    if not isinstance(when, dict) or len(when) != 1 or next(iter(when)) not in CONDITIONS:
        raise ConfigurationError(
            f"{where}.when", f"must be one of {{{', '.join(CONDITIONS)}: VALUE}}, got {when!r:.80}"
        )
    condition, value = next(iter(when.items()))
    if condition == "metadata_equals":
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)):
            raise ConfigurationError(f"{where}.when.{condition}", f"must be [key, value], got {value!r:.80}")
    elif not isinstance(value, str):
        raise ConfigurationError(f"{where}.when.{condition}", f"must be a string, got {value!r:.80}")
    return {"when": {condition: value}, "edge": route["edge"]}


def _check_uses(host: Host, edges: dict[str, Edge]) -> None:
    """Every child of a composition is an edge of that host, and every edge of a host is used."""
    own = {edge.name for edge in edges.values() if edge.source == host.name}
    used: set[str] = set()
    if host.compose is not None:
        for child in _children_of(host.compose):
            if child not in own:
                raise ConfigurationError(
                    f"topology.hosts.{host.name}.compose",
                    f"names {child!r}, which is not an edge from {host.name!r} (its edges: {', '.join(sorted(own)) or 'none'})",
                )
            used.add(child)
    for value in (host.server.get("env") or {}).values():
        text = str(value)
        used.update(e for e in own if "{edge:" + e + "}" in text)
    unused = sorted(own - used)
    if unused:
        raise ConfigurationError(
            f"topology.edges.{unused[0]}",
            f"leaves {host.name!r} but {host.name!r} never calls it (name it in its compose or as {{edge:{unused[0]}}} in its env)",
        )


def _children_of(compose: dict[str, Any]) -> list[str]:
    if compose["kind"] == "conditional":
        return [route["edge"] for route in compose["routes"]] + [compose["default"]]
    return list(compose["children"])


def _start_order(hosts: dict[str, Host], edges: dict[str, Edge]) -> list[str]:
    """Hosts, callees before callers (declaration order among equals); a cycle is an error."""
    callees = {name: [e.target for e in edges.values() if e.source == name] for name in hosts}
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = " -> ".join([*path[path.index(name) :], name])
            raise ConfigurationError("topology.edges", f"form a cycle: {cycle}")
        state[name] = "visiting"
        for callee in callees[name]:
            visit(callee, [*path, name])
        state[name] = "done"
        order.append(name)

    for name in hosts:
        visit(name, [])
    return order


def _tiers(hosts: dict[str, Host], edges: dict[str, Edge], order: list[str]) -> dict[str, int]:
    tiers: dict[str, int] = {}
    for name in reversed(order):  # callers before callees
        callers = [e.source for e in edges.values() if e.target == name and e.source != CLIENTS]
        tiers[name] = 1 + max((tiers[c] for c in callers), default=0)
    return {name: tiers[name] for name in hosts}


def _no_unknown(entry: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    require_known_keys(entry, known, "a field here", prefix=f"{where}.")


def _integer(value: Any, where: str, minimum: int, maximum: int) -> int:
    if isinstance(value, str) and value.strip().isdigit():  # "${...}" substitutions arrive as text
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ConfigurationError(where, f"must be an integer from {minimum} to {maximum}, got {value!r:.80}")
    return value


def _json_list(value: Any, where: str) -> list[Any]:
    """A list, or a JSON text of one (configuration values given with --var arrive as text)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise ConfigurationError(where, f"must be a list or its JSON text: {e}") from e
    if not isinstance(value, list):
        raise ConfigurationError(where, f"must be a list, got {value!r:.80}")
    return value
