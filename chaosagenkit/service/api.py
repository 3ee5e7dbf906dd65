"""The chaos host's control API: every route in one table (``routes``), errors in one (``ERRORS``).

Auth, guards and the JSON shapes are ``chaosagenkit.api``'s: bad input is a
4xx ``{"error": ..., "status": ...}`` naming the field, and changes nothing.

| route                  | does                                                  |
|------------------------|-------------------------------------------------------|
| GET /health            | agent name, endpoint, control URL, pid, seed, ports   |
| GET /faults            | active faults, oldest first                           |
| POST /faults           | add one fault (object) or several (list), 201         |
| DELETE /faults         | clear all (releases memory, stops CPU threads)        |
| DELETE /faults/{id}    | remove one (404 if unknown)                           |
| GET /stats             | requests, injected by kind, latency (ms), resources   |
| GET /metrics           | the same and per-fault counters, Prometheus text      |
| POST /crash            | {"when": now|next_request|after_requests, ...}, 202   |
| POST /seed             | {"seed": N}: restart the fault RNG from N             |
| GET /middleware        | agenkit decorators around and inside the ChaosAgent   |
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from chaosagenkit import metrics
from chaosagenkit.api import ErrorTable, Reply, Route, build_app, fault_routes, metrics_route, read_json
from chaosagenkit.control_options import ControlOptions
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.faults.service import Crash
from chaosagenkit.service.chaos_agent import LATENCY_BUCKETS_MS
from chaosagenkit.validation import invalid

if TYPE_CHECKING:
    from chaosagenkit.service.host import ChaosHost

__all__ = ["ERRORS", "application", "metric_families", "routes"]

#: The host's errors and their statuses, the one place they are decided.
ERRORS: ErrorTable = {
    ConfigurationError: 400,  # a fault or a field the host refuses; nothing changed
}


def application(host: ChaosHost, options: ControlOptions | None = None) -> web.Application:
    """The control API of ``host`` as an aiohttp application (``chaosagenkit.api.start_app`` serves it)."""
    return build_app(routes(host), errors=ERRORS, options=options)


def routes(host: ChaosHost) -> list[Route]:
    """The route table of ``host``'s control API."""

    async def crash(request: web.Request) -> Any:
        body = await read_json(request, required=False)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise invalid("body", "a JSON object", body)
        spec = Crash.from_json({"kind": "crash", **body}, default_ttl_s=host.config.default_ttl_s)
        created = await host.add_faults(spec.to_json())
        return Reply(202, {"crash": spec.when, "fault": created[0]})

    async def middleware(request: web.Request) -> Any:
        return {"middleware": host.middleware()}

    return [
        *fault_routes(host),
        metrics_route(lambda: metric_families(host)),
        Route("POST", "/crash", crash),
        Route("GET", "/middleware", middleware),
    ]


def metric_families(host: ChaosHost) -> list[metrics.Family]:
    """Requests and their duration, faults injected by kind, and per active fault its counters.

    Per-fault series (label ``fault``, the fault's id) exist while the fault
    is active; the per-kind totals keep counting after it expires.
    """
    chaos = host.chaos
    faults = host.faults()  # also drops expired ones
    requests = metrics.Family(
        "chaosagenkit_host_requests_total", "counter", "Requests the chaos host decided."
    )
    requests.add(chaos.policy.requests)
    injected = metrics.Family(
        "chaosagenkit_host_faults_injected_total", "counter", "Requests a fault acted on, by fault kind."
    )
    for kind, count in sorted(chaos.policy.injected.items()):
        injected.add(count, {"kind": kind})
    active = metrics.Family("chaosagenkit_host_faults_active", "gauge", "Faults in force now.")
    active.add(len(faults))
    seen = metrics.Family(
        "chaosagenkit_host_fault_requests_total",
        "counter",
        "Requests an active fault has seen since it was added.",
    )
    acted = metrics.Family(
        "chaosagenkit_host_fault_injected_total", "counter", "Requests an active fault acted on."
    )
    delayed = metrics.Family(
        "chaosagenkit_host_fault_delay_seconds_total", "counter", "Delay an active fault added, in total."
    )
    expires = metrics.Family(
        "chaosagenkit_host_fault_expiry_timestamp_seconds",
        "gauge",
        "When an active fault expires (Unix time).",
    )
    for fault in faults:
        labels = {"fault": fault["id"], "kind": fault["kind"]}
        seen.add(fault["requests_seen"], labels)
        acted.add(fault["injected"], labels)
        active_fault = chaos.policy.get(fault["id"])
        delayed.add(active_fault.delayed_ms / 1000.0 if active_fault else 0.0, labels)
        if fault["expires_at"] is not None:
            expires.add(fault["expires_at"], labels)
    latency = metrics.Family(
        "chaosagenkit_host_request_duration_seconds",
        "histogram",
        "Time requests spent in the chaos host's ChaosAgent, injected delays included.",
    )
    recorder = chaos.latency
    cumulative = 0
    for bound_ms, count in zip(LATENCY_BUCKETS_MS, recorder.buckets, strict=False):
        cumulative += count
        latency.add(cumulative, {"le": repr(bound_ms / 1000.0)}, "_bucket")
    latency.add(recorder.count, {"le": "+Inf"}, "_bucket")
    latency.add(recorder.total_ms / 1000.0, suffix="_sum")
    latency.add(recorder.count, suffix="_count")
    resources = host.resources.stats()
    memory = metrics.Family(
        "chaosagenkit_host_memory_pressure_bytes", "gauge", "Memory held by memory_pressure faults."
    )
    memory.add(resources["memory_held_mib"] * 1024 * 1024)
    cpu = metrics.Family(
        "chaosagenkit_host_cpu_pressure_threads", "gauge", "Threads cpu_pressure faults keep busy."
    )
    cpu.add(resources["cpu_threads"])
    return [requests, injected, active, seen, acted, delayed, expires, latency, memory, cpu]
