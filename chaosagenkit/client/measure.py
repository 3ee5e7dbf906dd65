"""What the client probes measure: middleware state, outcome windows, recovery time.

Middleware numbers are READ from agenkit's decorators through
``chaosagenkit.middleware_view`` (a client's own stack, read on the client
runtime's loop so nothing changes while it is read), or from a chaos host's
``GET /middleware`` for a served agent that calls another agent through its
own middleware. We never count middleware events ourselves.

Recovery (``time_to_recover``): seconds from the last fault-timeline event
of a kind (default "clear") until the SEND time of the first of
``consecutive`` successes in a row (ordered by send time). If the client has
no background traffic running, the probe sends one request at a time itself
(every ``interval_ms``) until it sees recovery or gives up, so it measures
from the event but can only observe recovery from the moment it runs.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from chaosagenkit.activity import require, require_choice, require_number
from chaosagenkit.client.recorder import Window, percentile
from chaosagenkit.client.registry import get_client
from chaosagenkit.client.runtime import RUNTIME
from chaosagenkit.client.traffic import send_batch
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.middleware_view import describe_chain
from chaosagenkit.sandbox import SANDBOX

__all__ = [
    "OUTCOME_FILTERS",
    "backoff_gaps",
    "circuit_transitions",
    "error_count",
    "first_recovery",
    "last_event",
    "latency_change",
    "latency_percentile",
    "middleware_chain",
    "middleware_entry",
    "min_backoff_growth",
    "rejected_fast",
    "retry_backoff",
    "success_rate",
    "time_to_recover",
    "unexpected_errors",
    "window_of",
]

OUTCOME_FILTERS = ("all", "ok", "error")
CIRCUIT_TRANSITIONS = ("closed->open", "open->half_open", "half_open->closed", "half_open->open")
_POLL_S = 0.05


def middleware_chain(
    client: str = "", server: str = "", configuration: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """agenkit's decorator metrics, outermost first, of a client or of a served agent."""
    _require_one_of(client, server)
    if client:
        harness = get_client(client)
        return RUNTIME.call(lambda: describe_chain(harness.agent))
    body = _server_control(server, configuration).get("/middleware")
    chain = body.get("middleware") if isinstance(body, dict) else None
    if not isinstance(chain, list):
        raise ConfigurationError("server", f"server {server!r} answered GET /middleware without a list")
    return chain


def middleware_entry(
    kind: str, client: str = "", server: str = "", which: int = 0, configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``which``-th (0 = outermost) decorator of ``kind`` in the chain."""
    require_number(which, "which", minimum=0, integer=True)
    chain = middleware_chain(client, server, configuration)
    found = [entry for entry in chain if entry.get("kind") == kind]
    if len(found) <= which:
        who = f"client {client!r}" if client else f"server {server!r}"
        have = ", ".join(str(e.get("kind")) for e in chain) or "none"
        raise ConfigurationError(
            "client" if client else "server", f"{who} has no {kind} middleware #{which} (has: {have})"
        )
    return found[which]


def window_of(client: str, window_s: float, outcome: str = "all", last_batch: bool = False) -> Window:
    """The client's outcomes sent in the last ``window_s`` s (0 = all), filtered by outcome.

    With ``last_batch``, only the requests of the client's last ``send_requests``
    (then ``window_s`` must be 0): what a probe right after a batch is about.
    """
    require_number(window_s, "window_s", minimum=0)
    require_choice(outcome, "outcome", OUTCOME_FILTERS)
    require(isinstance(last_batch, bool), "last_batch", "true or false", last_batch)
    harness = get_client(client)
    if last_batch:
        require(window_s == 0, "window_s", "0 with last_batch (the batch is the window)", window_s)
        if harness.last_batch is None:
            raise ConfigurationError(
                "last_batch", f"client {client!r} has not sent a batch (send_requests) yet"
            )
        source, start = harness.last_batch
        window = harness.recorder.select(source=source, start=start)
    else:
        window = harness.recorder.select(window_s=window_s)
    if outcome == "all":
        return window
    keep = [i for i, ok in enumerate(window.ok) if ok == (outcome == "ok")]
    return Window(*([column[i] for i in keep] for column in _columns(window)))


def latency_percentile(
    client: str, pct: float, window_s: float, outcome: str, last_batch: bool = False
) -> float | None:
    """The ``pct``-th latency percentile (ms, 2 decimals) of the window; None if it is empty."""
    require_number(pct, "percentile", minimum=0, maximum=100)
    window = window_of(client, window_s, outcome, last_batch)
    if not len(window):
        return None
    return round(percentile(sorted(window.latency_ms), pct), 2)


def latency_change(client: str, pct: float) -> dict[str, float | None]:
    """The ``pct``-th latency percentile of the client's last batch against its first (the baseline).

    Returns {baseline_ms, ms, added_ms, ratio}: ``added_ms`` is what the last
    batch added to the baseline (0 when it was not slower); None values when
    a batch is empty.
    """
    require_number(pct, "percentile", minimum=0, maximum=100)
    harness = get_client(client)
    if harness.first_batch is None or harness.last_batch is None:
        raise ConfigurationError("client", f"client {client!r} has not sent a batch (send_requests) yet")
    values = []
    for source, start in (harness.first_batch, harness.last_batch):
        latencies = harness.recorder.select(source=source, start=start).latency_ms
        values.append(round(percentile(sorted(latencies), pct), 2) if latencies else None)
    baseline, now = values
    if baseline is None or now is None:
        return {"baseline_ms": baseline, "ms": now, "added_ms": None, "ratio": None}
    return {
        "baseline_ms": baseline,
        "ms": now,
        "added_ms": round(max(0.0, now - baseline), 2),
        "ratio": round(now / baseline, 3) if baseline > 0 else None,
    }


def success_rate(client: str, window_s: float, last_batch: bool = False) -> float | None:
    """Successes (answered and right) / sent in the window (4 decimals); None if empty."""
    window = window_of(client, window_s, last_batch=last_batch)
    return round(window.successes() / len(window), 4) if len(window) else None


def error_count(client: str, error: str, window_s: float, in_chain: bool, last_batch: bool = False) -> int:
    """Outcomes whose error is ``error`` (or, with ``in_chain``, has it in its cause chain)."""
    require(isinstance(error, str) and error.strip() != "", "error", "an error class name", error)
    window = window_of(client, window_s, last_batch=last_batch)
    if in_chain:
        return sum(1 for chain in window.chains if chain and error in chain)
    return sum(1 for name in window.error if name == error)


def rejected_fast(
    client: str, max_ms: float, window_s: float, min_rejections: int, last_batch: bool = False
) -> bool:
    """True when >= ``min_rejections`` CircuitBreakerError outcomes all took <= ``max_ms``."""
    require_number(max_ms, "max_ms", minimum=0)
    require_number(min_rejections, "min_rejections", minimum=1, integer=True)
    window = window_of(client, window_s, last_batch=last_batch)
    rejected = [
        lat
        for lat, name in zip(window.latency_ms, window.error, strict=True)
        if name == "CircuitBreakerError"
    ]
    return len(rejected) >= min_rejections and max(rejected) <= max_ms


def unexpected_errors(client: str, allowed: list[str], window_s: float, last_batch: bool = False) -> int:
    """Failed outcomes whose error class is none of ``allowed`` (names as the caller saw them)."""
    require(
        isinstance(allowed, list) and all(isinstance(name, str) and name for name in allowed),
        "allowed",
        "a list of error class names",
        allowed,
    )
    window = window_of(client, window_s, last_batch=last_batch)
    return sum(1 for name in window.error if name is not None and name not in allowed)


def backoff_gaps(attempts: list[tuple[Any, float, float, str | None]]) -> list[list[float]]:
    """Per request with at least two attempts, the pauses (ms) between one attempt's end and the next's start.

    ``attempts`` are AttemptLog entries (request, started, ended, error), in
    the order they were noted; a request is told apart by identity.
    """
    by_request: dict[int, list[tuple[float, float]]] = {}
    for request, started, ended, _error in attempts:
        by_request.setdefault(id(request), []).append((started, ended))
    gaps = []
    for spans in by_request.values():
        spans.sort()
        if len(spans) > 1:
            gaps.append([round((b[0] - a[1]) * 1000.0, 2) for a, b in itertools.pairwise(spans)])
    return gaps


def retry_backoff(client: str, last_batch: bool = True) -> dict[str, Any]:
    """The backoff a client's retry middleware really waited between attempts (see ``backoff_gaps``).

    ``min_growth`` is the smallest ratio of a pause to the pause before it,
    over every request that waited at least twice (None when none did).
    """
    require(isinstance(last_batch, bool), "last_batch", "true or false", last_batch)
    harness = get_client(client)
    if harness.attempt_log is None:
        raise ConfigurationError("client", f"client {client!r} has no retry middleware (no attempts to time)")
    if last_batch and harness.last_batch is None:
        raise ConfigurationError("last_batch", f"client {client!r} has not sent a batch (send_requests) yet")
    log = harness.attempt_log
    attempts = RUNTIME.call(lambda: log.since(harness.last_batch_attempts if last_batch else 0))
    gaps = backoff_gaps(attempts)
    return {
        "attempts": len(attempts),
        "requests_retried": len(gaps),
        "gaps_ms": gaps,
        "min_growth": min_backoff_growth(gaps),
    }


def min_backoff_growth(gaps: list[list[float]]) -> float | None:
    """The smallest ratio of a pause to the pause before it (3 decimals); None if none paused twice."""
    growth = [b / a for pauses in gaps for a, b in itertools.pairwise(pauses) if a > 0]
    return round(min(growth), 3) if growth else None


def circuit_transitions(
    transition: str,
    client: str = "",
    server: str = "",
    which: int = 0,
    configuration: dict[str, Any] | None = None,
) -> int:
    """How many times agenkit's circuit breaker made ``transition`` ("closed->open", ...)."""
    require_choice(transition, "transition", CIRCUIT_TRANSITIONS)
    entry = middleware_entry("circuit_breaker", client, server, which, configuration)
    changes = (entry.get("metrics") or {}).get("state_changes") or {}
    return int(changes.get(transition, 0))


def first_recovery(window: Window, consecutive: int) -> float | None:
    """Send time of the first of ``consecutive`` successes in a row (by send time), or None."""
    streak_start: float | None = None
    streak = 0
    for i in sorted(range(len(window)), key=window.t.__getitem__):
        if window.ok[i] and not window.wrong[i]:
            if streak == 0:
                streak_start = window.t[i]
            streak += 1
            if streak >= consecutive:
                return streak_start
        else:
            streak = 0
    return None


def last_event(event: str, target: str = "") -> dict[str, Any]:
    """The last fault-timeline entry of kind ``event`` (for ``target`` if given)."""
    require(isinstance(event, str) and event.strip() != "", "after_event", "an event name", event)
    for entry in reversed(SANDBOX.timeline()):
        if entry.get("event") == event and (not target or entry.get("target") == target):
            return entry
    where = f" for target {target!r}" if target else ""
    raise ConfigurationError("after_event", f"no {event!r} event on the fault timeline{where} yet")


def time_to_recover(
    client: str, after_event: str, target: str, consecutive: int, timeout_s: float, interval_ms: float
) -> float:
    """Seconds from the event to recovery (3 decimals), or -1.0 if not seen within ``timeout_s``."""
    harness = get_client(client)
    require_number(consecutive, "consecutive", minimum=1, integer=True)
    require_number(timeout_s, "timeout_s", minimum=0)
    require_number(interval_ms, "interval_ms", minimum=0)
    event_t = float(last_event(after_event, target)["t"])
    deadline = time.monotonic() + timeout_s
    while True:
        recovered_at = first_recovery(harness.recorder.select(since=event_t), int(consecutive))
        if recovered_at is not None:
            return round(recovered_at - event_t, 3)
        if time.monotonic() >= deadline:
            return -1.0
        traffic = harness.traffic
        if traffic is not None and traffic.running:
            time.sleep(_POLL_S)
            continue
        if harness.closed:
            raise ConfigurationError("client", f"client {client!r} is closed")
        RUNTIME.run(send_batch(harness, 1, 1, 0, 0.0), max(1.0, deadline - time.monotonic() + 5.0))
        time.sleep(interval_ms / 1000.0)


def _columns(window: Window) -> tuple[list[Any], ...]:
    return (window.t, window.latency_ms, window.ok, window.error, window.wrong, window.chains)


def _require_one_of(client: str, server: str) -> None:
    for value, arg in ((client, "client"), (server, "server")):
        require(isinstance(value, str), arg, "a name", value)
    if bool(client) == bool(server):
        raise ConfigurationError("client", "give exactly one of 'client' or 'server'")


def _server_control(server: str, configuration: dict[str, Any] | None) -> Any:
    """A ControlClient for the chaos host ``server`` (a server name, or its control URL)."""
    # Imported on use: it loads aiohttp; other paths here never need it.
    from chaosagenkit.service.hosts import client_for, resolve_server, token_from

    return client_for(resolve_server(server, token_from(configuration)))
