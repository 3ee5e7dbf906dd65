"""Chaos Toolkit probes of the chaos host: is it up, what has it seen, which faults are on.

``server`` is the name of a server started in this run or the control URL
of a chaos host running elsewhere (token from the configuration key
``chaosagenkit_server_token``). See docs/service.md.
"""

import time
from typing import Any

from chaosagenkit.activity import activity, require_choice, require_number
from chaosagenkit.faults.service import FAULT_KINDS
from chaosagenkit.service import operations
from chaosagenkit.service.resources import cpu_use, memory_use

__all__ = [
    "active_faults",
    "faults_injected",
    "host_cpu",
    "host_memory",
    "requests_seen",
    "server_is_up",
    "server_stats",
]


@activity
def server_is_up(server: str, configuration: dict = None, secrets: dict = None) -> bool:
    """Tell whether the chaos host answers its health check.

    Returns true when its control API answers GET /health (and, for a host
    this run started, its process is running); false when it is stopped,
    crashed or unreachable. Fails for a name this run does not know, for a
    URL that answers but is not a chaosagenkit control API, and when the
    host answers 401 (missing or wrong token: a configuration error).
    """
    return operations.is_up(server, operations.token_from(configuration))


@activity
def server_stats(server: str, configuration: dict = None, secrets: dict = None) -> dict[str, Any]:
    """Read the chaos host's counters.

    Returns ``requests`` (seen by the fault decorator), ``injected`` (count
    per fault kind), ``latency_ms`` (count, p50, p95, p99 over the last
    10000 requests, max over all; time spent inside the host including
    injected delays), ``active_faults``, ``memory_held_mib``,
    ``cpu_threads``, ``rss_mib`` and ``seed``. Fails when the host cannot
    be reached.
    """
    return operations.stats(server, operations.token_from(configuration))


@activity
def active_faults(server: str, configuration: dict = None, secrets: dict = None) -> list:
    """List the faults in force on the chaos host, oldest first.

    Each has ``id``, ``kind``, ``params``, ``duration_s``, ``added_at`` and
    ``expires_at`` (Unix seconds), ``requests_seen`` and ``injected``.
    Expired faults are not listed. Fails when the host cannot be reached.
    """
    return operations.faults(server, operations.token_from(configuration))


@activity
def faults_injected(server: str, kind: str = "", configuration: dict = None, secrets: dict = None) -> int:
    """Count the faults the chaos host has injected into requests since it started.

    ``kind`` restricts the count to one fault kind ("failure_rate", "delay",
    "crash", ...); empty counts every kind. Use it to check that a fault
    really reached the traffic. Fails for an unknown kind and when the host
    cannot be reached.
    """
    if kind:
        require_choice(kind, "kind", tuple(FAULT_KINDS))
    injected = operations.stats(server, operations.token_from(configuration)).get("injected") or {}
    if kind:
        return int(injected.get(kind, 0))
    return int(sum(injected.values()))


@activity
def requests_seen(server: str, configuration: dict = None, secrets: dict = None) -> int:
    """Count the requests that reached the chaos host since it started.

    Every request the host received counts, including those an injected
    fault failed before the agent ran. Requests a caller's circuit breaker
    rejected never reach the host, so a count that stops growing while the
    caller keeps sending shows fail-fast. Fails when the host cannot be reached.
    """
    return int(operations.stats(server, operations.token_from(configuration)).get("requests", 0))


@activity
def host_cpu(
    server: str, window_s: float = 1.0, configuration: dict = None, secrets: dict = None
) -> dict[str, Any]:
    """Measure the CPU the chaos host's process uses, as the kernel counts it.

    Reads the host's CPU time (all its threads, user + system, from its
    /proc/self/stat) twice, ``window_s`` (s, > 0) apart. Returns {cores,
    cpu_s, window_s}: ``cores`` is CPU seconds per second (1.0 = one core
    busy all the time). Fails when the host cannot be reached.
    """
    require_number(window_s, "window_s", minimum=0, maximum=3600, exclusive_minimum=True)
    token = operations.token_from(configuration)
    before = operations.stats(server, token)
    time.sleep(window_s)
    return cpu_use(before, operations.stats(server, token))


@activity
def host_memory(server: str, configuration: dict = None, secrets: dict = None) -> dict[str, Any]:
    """Read the chaos host's memory as the kernel counts it (its /proc/self/status).

    Returns {rss_mib, baseline_rss_mib, growth_mib, data_mib, limit_mib,
    free_mib}: the resident memory now and when the host started, the
    growth between them, its data memory (VmData), the data-memory limit it
    runs under (``chaosagenkit serve --memory-headroom-mib``) and how much
    it may still allocate, all MiB (the last two null without a limit).
    Fails when the host cannot be reached.
    """
    return memory_use(operations.stats(server, operations.token_from(configuration)))
