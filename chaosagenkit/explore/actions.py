"""Chaos Toolkit actions of the explorer: the traffic of a schedule.

An explored schedule, written as an experiment, starts its traffic with
``start_exploration_traffic``, applies its faults with the service and
network actions at their times, then checks invariants with
``chaosagenkit.explore.probes.check_invariant``. See docs/explore.md.
"""

import logging
from typing import Any

from chaosagenkit.activity import activity, require, require_number, require_text
from chaosagenkit.explore import recording

__all__ = ["start_exploration_traffic"]

logger = logging.getLogger("chaostoolkit")


@activity
def start_exploration_traffic(
    client: str,
    server: str = "target",
    interval_ms: float = 50.0,
    events: list = None,
    safety_s: float = 600.0,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Start a schedule's traffic on a client and record what happens, until an invariant probe ends it.

    ``client`` is the main client (declared in the control); it sends one
    call every ``interval_ms`` (ms) after the previous one answered.
    ``events`` (each with ``at_s``, seconds after this action) add to it:
    ``{"kind": "burst", "at_s": 1.5, "size": 8}`` (8 concurrent calls on the
    client), ``{"kind": "fresh_clients", "at_s": 2, "clients": 2, "size": 5}``
    (new clients with the same middleware, each sending 5 concurrent calls as
    its first use), ``{"kind": "idle", "at_s": 0.5, "duration_s": 62}`` (no
    call on the main client for that long). ``server`` is the chaos host whose
    file descriptors, connections and tasks are measured now and at the end.
    The traffic stops by itself after ``safety_s`` (s).

    Returns the client, the number of events and the host's resources now.
    Fails, starting nothing, on an unknown or closed client or server, or a
    malformed event.
    """
    require_text(client, "client")
    require_text(server, "server")
    require_number(interval_ms, "interval_ms", minimum=0)
    require_number(safety_s, "safety_s", minimum=0, exclusive_minimum=True)
    events = [] if events is None else events
    require(isinstance(events, list), "events", "a list of traffic events", events)
    started = recording.start(client, float(interval_ms), events, server, float(safety_s))
    host = started.host_before
    logger.info(f"chaosagenkit: exploration traffic on '{client}' with {len(events)} event(s)")
    return {
        "client": client,
        "events": len(events),
        "host": None
        if host is None
        else {"fds": host.fds, "connections": host.connections, "tasks": host.tasks},
    }
