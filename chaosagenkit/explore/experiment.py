"""A schedule as a standard Chaos Toolkit experiment: the one way a schedule is run.

The explorer runs every trial as the experiment built here (through
chaoslib, in process, as ``chaos run`` would), and writes each finding as
the same experiment with only the violated invariant: what the explorer saw
is what ``chaos run`` replays. The shape is that of ``experiments/*.json``:

- the ``chaosagenkit.control`` builds the sandbox: the target served by a
  ``chaosagenkit serve`` child, the fault proxy in front of it when a fault
  needs it, and two clients with the schedule's stack: ``caller`` for the
  steady state, ``explorer`` for the schedule's traffic;
- the steady-state hypothesis: every call answered correctly, none with
  another call's answer, p95 latency bounded;
- the method: ``start_exploration_traffic``, then each fault's actions in
  time order with ``pauses.before`` (seconds since the previous one), each
  with the fault's duration as its TTL; then one ``check_invariant`` probe
  per invariant with the tolerance ``violations == 0``;
- rollbacks clear every fault; the ``chaosagenkit`` extension keeps the
  schedule (and, for a finding, how it was found and how often it reproduced).
"""

from __future__ import annotations

from typing import Any

from chaosagenkit.explore.catalogue import PROXY, PROXY_DAEMON, SERVER, SOURCES, kind_named
from chaosagenkit.explore.invariants import INVARIANTS
from chaosagenkit.explore.schedule import Schedule

__all__ = ["MAIN_CLIENT", "STEADY_CLIENT", "build_experiment", "invariant_probe_name", "method_times"]

MAIN_CLIENT = "explorer"
STEADY_CLIENT = "caller"
STEADY_REQUESTS = 10
STEADY_P95_MS = [0, 500]


def invariant_probe_name(invariant: str) -> str:
    """The method probe that checks ``invariant`` (its name in journals)."""
    return "invariant-" + invariant.replace("_", "-")


def method_times(schedule: Schedule) -> list[tuple[float, dict[str, Any]]]:
    """Every fault activity with its planned time (s after the traffic starts), in time order."""
    timed = []
    for index, fault in enumerate(sorted(schedule.faults, key=lambda f: (f.start_s, f.kind)), 1):
        for offset, activity in kind_named(fault.kind).activities(fault, index):
            timed.append((round(fault.start_s + offset, 3), activity))
    timed.sort(key=lambda item: item[0])
    return timed


def build_experiment(
    schedule: Schedule,
    *,
    transport: str = "tcp",
    agent: str = "chaosagenkit.targets:echo",
    answer_check: str = "echo",
    remote_timeout_ms: int = 2000,
    invariants: list[str] | None = None,
    title: str = "",
    description: str = "",
    extension: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The experiment that runs ``schedule`` and checks ``invariants`` (default: all)."""
    names = list(INVARIANTS) if invariants is None else list(invariants)
    proxied = any(SOURCES[f.source].needs_proxy for f in schedule.faults)
    client_route = {"proxy": PROXY, "transport": "${transport}"} if proxied else {"server": SERVER}
    clients = [
        {
            "name": name,
            **client_route,
            "middleware": "${client_middleware}",
            "timeout_ms": "${client_timeout_ms}",
            "answer_check": answer_check,
        }
        for name in (STEADY_CLIENT, MAIN_CLIENT)
    ]
    control: dict[str, Any] = {
        "seed": "${seed}",
        "servers": [{"name": SERVER, "agent": "${target_agent}", "transport": "${transport}"}],
        "clients": clients,
    }
    if proxied:
        control["proxy"] = {"name": PROXY_DAEMON}
        control["proxies"] = [{"name": PROXY, "upstream": f"server:{SERVER}"}]
    for source_name in sorted({f.source for f in schedule.faults}):
        hook = SOURCES[source_name].control
        if hook is not None:
            hook(control)

    method: list[dict[str, Any]] = [
        _activity(
            "action",
            "start-exploration-traffic",
            "chaosagenkit.explore.actions",
            "start_exploration_traffic",
            {
                "client": MAIN_CLIENT,
                "server": SERVER,
                "interval_ms": schedule.traffic.interval_ms,
                "events": [e.to_json() for e in schedule.traffic.events],
            },
        )
    ]
    previous = 0.0
    for at, activity in method_times(schedule):
        pause = round(at - previous, 3)
        if pause > 0:
            activity = {**activity, "pauses": {"before": pause}}
        method.append(activity)
        previous = at
    for name in names:
        probe = _activity(
            "probe",
            invariant_probe_name(name),
            "chaosagenkit.explore.probes",
            "check_invariant",
            {"invariant": name},
        )
        probe["tolerance"] = {"type": "range", "target": "violations", "range": [0, 0]}
        method.append(probe)

    rollbacks = [
        _activity(
            "action",
            "clear-service-faults",
            "chaosagenkit.service.actions",
            "clear_faults",
            {"server": SERVER},
        )
    ]
    if proxied:
        rollbacks.append(
            _activity("action", "clear-network-faults", "chaosagenkit.network.actions", "reset_proxies", {})
        )

    return {
        "version": "1.0.0",
        "title": title or f"Explored schedule: {schedule.describe()}",
        "description": description
        or "A schedule drawn by `chaosagenkit explore`; each method probe checks one invariant over the recorded calls.",
        "tags": ["agenkit", "explore"],
        "configuration": {
            "transport": transport,
            "seed": schedule.seed,
            "target_agent": agent,
            "client_middleware": [dict(layer) for layer in schedule.stack],
            "client_timeout_ms": remote_timeout_ms,
            "steady_requests": STEADY_REQUESTS,
            "steady_p95_ms": list(STEADY_P95_MS),
        },
        "controls": [
            {
                "name": "chaosagenkit",
                "provider": {"type": "python", "module": "chaosagenkit.control", "arguments": control},
            }
        ],
        "steady-state-hypothesis": _steady_state(),
        "method": method,
        "rollbacks": rollbacks,
        "extensions": [
            {
                "name": "chaosagenkit",
                "group": "explore",
                "transports": [transport],
                "explore": {"schedule": schedule.to_json(), "invariants": names},
                **(extension or {}),
            }
        ],
    }


def _activity(kind: str, name: str, module: str, func: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": kind,
        "name": name,
        "provider": {"type": "python", "module": module, "func": func, "arguments": arguments},
    }


def _steady_state() -> dict[str, Any]:
    send = _activity(
        "probe",
        "every-request-answered-correctly",
        "chaosagenkit.client.probes",
        "send_requests",
        {"client": STEADY_CLIENT, "count": "${steady_requests}"},
    )
    send["tolerance"] = {"type": "range", "target": "success_ratio", "range": [1.0, 1.0]}
    wrong = _activity(
        "probe",
        "no-answer-belongs-to-another-request",
        "chaosagenkit.client.probes",
        "wrong_answers",
        {"client": STEADY_CLIENT, "last_batch": True},
    )
    wrong["tolerance"] = 0
    p95 = _activity(
        "probe",
        "p95-latency-within-bounds",
        "chaosagenkit.client.probes",
        "latency",
        {"client": STEADY_CLIENT, "percentile": 95, "last_batch": True},
    )
    p95["tolerance"] = "${steady_p95_ms}"
    return {"title": "The caller gets its own answer to every request, quickly", "probes": [send, wrong, p95]}
