"""Chaos Toolkit probes of a system of agents: per edge, per tier, blast radius, recovery.

``edge`` is an edge of the run's topology (its name is also its proxy's);
``host`` a host. An edge's calls are what its calling host saw, read from
that host (``GET /middleware``, the TopologyNode entry); an edge from
``clients`` is what the run's clients calling through it saw. Windows:
``since_event`` (e.g. "inject", "signal", "restart") selects the calls sent
at or after the last such event on the run's timeline, for ``target`` (a
host or edge name) when given; empty means every call. Definitions are
``chaosagenkit.topology.measure``'s; see docs/topologies.md.
"""

import logging
import time
from typing import Any

from chaosagenkit.activity import activity, require, require_number, require_text
from chaosagenkit.sandbox import SANDBOX
from chaosagenkit.topology import measure, system

__all__ = [
    "blast_radius",
    "composition_metrics",
    "edge_circuit_state",
    "edge_outcomes",
    "edge_requests",
    "first_failed_tier",
    "in_flight_outcomes",
    "requests_per_edge",
    "system_recovery_time",
    "tier_success",
]

logger = logging.getLogger("chaostoolkit")


@activity
def edge_requests(
    edge: str, since_event: str = "", target: str = "", configuration: dict = None, secrets: dict = None
) -> int:
    """Count the calls the caller of ``edge`` made over it (in the window); the int, e.g. ``0``."""
    return len(_window(edge, since_event, target, configuration))


@activity
def edge_outcomes(
    edge: str, since_event: str = "", target: str = "", configuration: dict = None, secrets: dict = None
) -> dict[str, Any]:
    """Summarise the calls over ``edge``: sent, ok, errors by type, success_ratio, latency_ms."""
    return measure.summarise(_window(edge, since_event, target, configuration))


@activity
def requests_per_edge(
    system_name: str = "",
    since_event: str = "",
    target: str = "",
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, int]:
    """Count the calls on every edge of the topology ``system_name`` (default: the only one)."""
    topology = system.topology_named(system_name)
    return {edge: len(_window(edge, since_event, target, configuration)) for edge in topology.edges}


@activity
def tier_success(
    system_name: str = "",
    since_event: str = "",
    target: str = "",
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Success ratio per tier (``{"tier_0": 1.0, "tier_1": 0.5, ...}``; None for a tier with no calls).

    Tier 0 is the clients' calls into the system (through edges from
    ``clients``), tier N the calls made by tier-N hosts.
    """
    topology = system.topology_named(system_name)
    since = _since(since_event, target)
    totals: dict[int, list[int]] = {}
    for edge in topology.edges.values():
        window = measure.columns_since(system.edge_window(edge.name, configuration), since)
        sent_ok = totals.setdefault(topology.edge_tier(edge), [0, 0])
        sent_ok[0] += len(window)
        sent_ok[1] += window.successes()
    return {
        f"tier_{tier}": round(ok / sent, 4) if sent else None for tier, (sent, ok) in sorted(totals.items())
    }


@activity
def blast_radius(
    clients: list,
    since_event: str = "inject",
    target: str = "",
    latency_bound_ms: float = -1,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Measure how far a fault reached: the fraction of the clients' requests it affected.

    ``clients``: the top-level clients to look at. A request is affected when
    it failed, answered wrongly, or (``latency_bound_ms`` >= 0) took longer
    than that many ms. Returns ``affected_fraction`` (0..1), ``by_client``
    fractions, ``suffered`` (the clients with any affected request),
    ``requests`` and ``affected``.
    """
    # Imported on use: ~40 ms of imports only this path needs.
    from chaosagenkit.client import registry

    require(
        isinstance(clients, list) and bool(clients), "clients", "a non-empty list of client names", clients
    )
    require_number(latency_bound_ms, "latency_bound_ms", minimum=-1)
    since = _since(since_event, target)
    windows = {}
    for name in clients:
        require_text(name, "clients[]")
        windows[name] = measure.columns_since(registry.get_client(name).recorder.select(), since)
    return measure.blast_radius(windows, None if latency_bound_ms < 0 else float(latency_bound_ms))


@activity
def first_failed_tier(
    system_name: str = "",
    since_event: str = "inject",
    target: str = "",
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Which tier failed first: ``{"tier": N, "edge": NAME, "after_s": s}``, tier -1 when none failed."""
    topology = system.topology_named(system_name)
    since = _since(since_event, target)
    edges = {
        edge.name: (topology.edge_tier(edge), system.edge_window(edge.name, configuration))
        for edge in topology.edges.values()
    }
    return measure.first_failed(edges, since)


@activity
def in_flight_outcomes(
    edge: str, at_event: str = "signal", target: str = "", configuration: dict = None, secrets: dict = None
) -> dict[str, Any]:
    """What became of the calls over ``edge`` in flight at the last ``at_event`` (for ``target``).

    Returns ``in_flight``, ``completed``, ``failed`` and ``errors`` by type:
    e.g. which requests a host finished after its SIGTERM.
    """
    # Imported on use: ~60 ms of imports only this path needs.
    from chaosagenkit.client.measure import last_event

    at = float(last_event(at_event, target)["t"])
    return measure.in_flight(system.edge_window(edge, configuration), at)


@activity
def system_recovery_time(
    after_event: str,
    target: str = "",
    clients: list = None,
    consecutive: int = 3,
    timeout_s: float = 10.0,
    interval_ms: float = 50.0,
    configuration: dict = None,
    secrets: dict = None,
) -> float:
    """Seconds from the last ``after_event`` (for ``target``) until every client recovered; -1 if not.

    A client has recovered at the first of ``consecutive`` correct answers
    in a row; the system when the last of ``clients`` (default: every
    client of the run) has. Clients without running traffic are sent one
    request every ``interval_ms`` ms while waiting, up to ``timeout_s`` s.
    """
    # Imported on use: ~70 ms of imports only this path needs.
    from chaosagenkit.client import registry
    from chaosagenkit.client.measure import first_recovery, last_event
    from chaosagenkit.client.runtime import RUNTIME
    from chaosagenkit.client.traffic import send_batch

    require_number(consecutive, "consecutive", minimum=1, integer=True)
    require_number(timeout_s, "timeout_s", minimum=0)
    require_number(interval_ms, "interval_ms", minimum=0)
    names = list(clients or SANDBOX.clients)
    harnesses = {name: registry.get_client(name) for name in names}
    event_t = float(last_event(after_event, target)["t"])
    deadline = time.monotonic() + timeout_s
    while True:
        recovered = {
            name: first_recovery(harness.recorder.select(since=event_t), int(consecutive))
            for name, harness in harnesses.items()
        }
        times = [t for t in recovered.values() if t is not None]
        if len(times) == len(recovered):
            return round(max(times) - event_t, 3)
        if time.monotonic() >= deadline:
            return -1.0
        for name, harness in harnesses.items():
            if recovered[name] is None and not (harness.traffic is not None and harness.traffic.running):
                RUNTIME.run(send_batch(harness, 1, 1, 0, 0.0), max(1.0, deadline - time.monotonic() + 5.0))
        time.sleep(interval_ms / 1000.0)


@activity
def edge_circuit_state(edge: str, which: int = 0, configuration: dict = None, secrets: dict = None) -> str:
    """State of the ``which``-th circuit breaker on ``edge`` (in its calling host): closed, open, half_open.

    ``absent`` when the edge's middleware has no such breaker (a system
    configured without one: no breaker can have opened). An unknown edge
    is an error.
    """
    require_number(which, "which", minimum=0, integer=True)
    breakers = [m for m in system.edge_middleware(edge, configuration) if m.get("kind") == "circuit_breaker"]
    if len(breakers) <= which:
        return "absent"
    return str(breakers[which].get("state"))


@activity
def composition_metrics(host: str, configuration: dict = None, secrets: dict = None) -> dict[str, Any]:
    """What a composition host answered: ``answered``, ``failed`` by error, parts per answer, per-edge counts.

    ``parts`` counts answers by how many children contributed (parallel
    kinds), also flat as ``answers_with_N_parts`` for range tolerances.
    """
    require_text(host, "host")
    metrics = system.node_metrics(host, configuration)
    return {
        "kind": metrics.get("kind"),
        "composition": metrics.get("composition"),
        "answered": metrics.get("answered"),
        "failed": metrics.get("failed"),
        "failed_total": sum((metrics.get("failed") or {}).values()),
        "parts": metrics.get("parts"),
        **{f"answers_with_{n}_parts": 0 for n in range(1, len(metrics.get("edges") or {}) + 1)},
        **{f"answers_with_{n}_parts": count for n, count in (metrics.get("parts") or {}).items()},
        "edges": {
            name: {"sent": e.get("sent"), "ok": e.get("ok"), "errors": e.get("errors")}
            for name, e in (metrics.get("edges") or {}).items()
        },
    }


def _since(since_event: str, target: str) -> float | None:
    # Imported on use: ~60 ms of imports only this path needs.
    from chaosagenkit.client.measure import last_event

    require(isinstance(since_event, str), "since_event", "an event name or empty", since_event)
    return float(last_event(since_event, target)["t"]) if since_event else None


def _window(edge: str, since_event: str, target: str, configuration: dict | None) -> Any:
    require_text(edge, "edge")
    since = _since(since_event, target)
    return measure.columns_since(system.edge_window(edge, configuration), since)
