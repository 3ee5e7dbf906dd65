"""Chaos Toolkit actions on a system of agents.

Faults on a topology need no actions of their own: a host is a server of
the run and an edge is a proxy of the run, both named as declared, so
``chaosagenkit.service.actions`` (``server``: a host) and
``chaosagenkit.network.actions`` (``proxy``: an edge) reach any of them.
What is here is what those cannot do: stop a host with a chosen signal
while requests are in flight (``restart_server`` brings it back).
"""

import logging
import signal as signals
from typing import Any

from chaosagenkit.activity import activity, require_choice, require_number, require_text
from chaosagenkit.sandbox import SANDBOX
from chaosagenkit.topology import system

__all__ = ["clear_dns_failures", "inject_dns_failure", "signal_host"]

logger = logging.getLogger("chaostoolkit")

#: Signals a host may be sent.
SIGNALS = ("SIGTERM", "SIGKILL", "SIGINT")


@activity
def signal_host(
    host: str, signal: str = "SIGTERM", wait_s: float = 10.0, configuration: dict = None, secrets: dict = None
) -> dict[str, Any]:
    """Send ``signal`` (SIGTERM, SIGKILL or SIGINT) to a host this run started; wait for it to exit.

    SIGTERM is the orderly stop (``chaosagenkit serve`` then stops agenkit's
    server, see docs/topologies.md for what happens to requests in flight);
    SIGKILL ends it at once. Waits up to ``wait_s`` seconds. Records a
    ``signal`` event (when sent) and an ``exit`` event on the timeline.
    Returns ``{"host", "signal", "exit_code", "exited_after_s"}`` (exit_code
    None when it did not exit in time). ``restart_server`` starts it again.
    """
    require_text(host, "host")
    require_choice(signal, "signal", SIGNALS)
    require_number(wait_s, "wait_s", minimum=0, maximum=300)
    return system.signal_host(host, int(getattr(signals, signal)), float(wait_s))


@activity
def inject_dns_failure(
    host: str,
    mode: str = "nxdomain",
    duration_s: float = 300.0,
    system_name: str = "",
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Make the DNS name of ``host`` fail in the topology's own namespace: nxdomain, servfail or silent.

    Needs a topology declared with ``"namespace"``; edges with ``"by_name":
    true`` call hosts by that name (``<host>.<zone>``). ``silent`` answers
    nothing, so the caller waits for its resolver's timeout. The fault ends
    by itself after ``duration_s`` s. Only new lookups see it: an open
    connection keeps working. Returns ``{"name", "mode", "expires_at"}``.
    """
    require_text(host, "host")
    require_choice(mode, "mode", ("nxdomain", "servfail", "silent"))
    require_number(duration_s, "duration_s", minimum=0.001, maximum=86400)
    namespace = system.dns_namespace(system_name)
    fault = namespace.inject(namespace.host_name(host), mode, float(duration_s), host)
    SANDBOX.record_event("inject", host, kind=f"dns_{mode}", duration_s=float(duration_s), name=fault["name"])
    return fault


@activity
def clear_dns_failures(system_name: str = "", configuration: dict = None, secrets: dict = None) -> list[str]:
    """Let every name of the topology's namespace resolve again; returns the names cleared."""
    cleared = system.dns_namespace(system_name).clear()
    for name, host in cleared.items():
        SANDBOX.record_event("clear", host or name, kind="dns", name=name)
    return sorted(cleared)
