"""Chaos Toolkit probes of the client harness: traffic, outcomes and agenkit middleware state.

Every probe returns a plain JSON value, so Chaos Toolkit tolerances apply
directly. Middleware probes read agenkit's own decorator metrics, either of
a declared client (``client=``) or of a served agent that calls another
agent through its own middleware (``server=``, via the chaos host's
``GET /middleware``); give exactly one of the two. ``which`` picks the
n-th decorator of that kind (0 = outermost). Outcome probes look at the
requests a client sent in the last ``window_s`` seconds (0 = all of them).
See docs/client.md for examples and fitting tolerances.
"""

import logging
from typing import Any

from chaosagenkit.activity import activity
from chaosagenkit.client import measure, registry

__all__ = [
    "cache_metrics",
    "circuit_metrics",
    "circuit_state",
    "circuit_transitions",
    "error_count",
    "latency",
    "latency_change",
    "middleware_metrics",
    "outcomes_summary",
    "rate_limiter_metrics",
    "rejected_fast",
    "retry_backoff",
    "retry_count",
    "retry_metrics",
    "send_requests",
    "success_rate",
    "time_to_recover",
    "timeout_metrics",
    "traffic_summary",
    "unexpected_errors",
    "wrong_answers",
]

logger = logging.getLogger("chaostoolkit")


@activity
def send_requests(
    client: str,
    count: int = 10,
    concurrency: int = 1,
    distinct: int = 0,
    interval_ms: float = 0.0,
    timeout_s: float = 300.0,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Send requests through the client's middleware and summarise what happened.

    ``count`` requests, ``concurrency`` at a time, each worker pausing
    ``interval_ms`` (ms) between requests; ``distinct`` > 0 cycles through
    that many identical keys (for caching). ``timeout_s`` (s) bounds the
    whole batch; past it the batch is cancelled and the probe fails.
    Returns {sent, ok, errors: {ErrorType: n}, success_ratio, wrong_answers,
    latency_ms: {p50, p95, p99, max, mean}, duration_s}; ``ok`` counts
    answers, success_ratio counts answers that belong to their request.
    """
    return registry.send_requests(client, count, concurrency, distinct, interval_ms, timeout_s)


@activity
def traffic_summary(client: str, configuration: dict = None, secrets: dict = None) -> dict[str, Any]:
    """Summarise the client's current (or last stopped-by-duration) background traffic so far.

    Returns the stop_traffic summary without stopping anything; fails if the
    client has no traffic.
    """
    return registry.traffic_summary(client)


@activity
def outcomes_summary(
    client: str,
    window_s: float = 0.0,
    last_batch: bool = False,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Summarise every request the client sent in the last ``window_s`` s (0 = all).

    With ``last_batch``, the requests of the client's last send_requests.
    Returns the same shape as send_requests.
    """
    return measure.window_of(client, window_s, last_batch=last_batch).summary()


@activity
def latency(
    client: str,
    percentile: float = 95.0,
    window_s: float = 0.0,
    outcome: str = "all",
    last_batch: bool = False,
    configuration: dict = None,
    secrets: dict = None,
) -> float | None:
    """Measure a latency percentile (ms) of the client's requests.

    ``percentile`` 0..100 (linear interpolation), over requests sent in the
    last ``window_s`` s (0 = all) or, with ``last_batch``, in the client's
    last send_requests; ``outcome`` "all", "ok" (answered) or "error".
    Returns ms with 2 decimals, or null when no request matches.
    """
    return measure.latency_percentile(client, percentile, window_s, outcome, last_batch)


@activity
def latency_change(
    client: str, percentile: float = 95.0, configuration: dict = None, secrets: dict = None
) -> dict[str, Any]:
    """Compare a latency percentile of the client's last batch with its first batch.

    The first send_requests of a client is its baseline (in the shipped
    experiments, the steady-state hypothesis before any fault); the last is
    the batch just sent. ``percentile`` 0..100. Returns {baseline_ms, ms,
    added_ms, ratio}: both percentiles (ms), what the last batch added (ms,
    0 when it was not slower) and last / baseline.
    """
    return measure.latency_change(client, percentile)


@activity
def success_rate(
    client: str,
    window_s: float = 0.0,
    last_batch: bool = False,
    configuration: dict = None,
    secrets: dict = None,
) -> float | None:
    """Measure the fraction of requests answered correctly (0..1).

    Over requests sent in the last ``window_s`` s (0 = all) or, with
    ``last_batch``, in the client's last send_requests; an answer that does
    not belong to its request is not a success. Returns null when the
    window holds no request.
    """
    return measure.success_rate(client, window_s, last_batch)


@activity
def error_count(
    client: str,
    error: str,
    window_s: float = 0.0,
    in_chain: bool = False,
    last_batch: bool = False,
    configuration: dict = None,
    secrets: dict = None,
) -> int:
    """Count requests that failed with the error class ``error``.

    ``error`` is a class name as the caller saw it (e.g. "CircuitBreakerError",
    "MaxRetriesExceededError", "AgentTimeoutError"); with ``in_chain`` the
    name may also appear in the exception's cause chain. Over requests sent
    in the last ``window_s`` s (0 = all) or, with ``last_batch``, in the
    client's last send_requests. Returns the count.
    """
    return measure.error_count(client, error, window_s, in_chain, last_batch)


@activity
def wrong_answers(
    client: str,
    window_s: float = 0.0,
    last_batch: bool = False,
    configuration: dict = None,
    secrets: dict = None,
) -> int:
    """Count answers that did not belong to their request (content or request_id differ).

    Over requests sent in the last ``window_s`` s (0 = all) or, with
    ``last_batch``, in the client's last send_requests. Returns the count.
    """
    return sum(measure.window_of(client, window_s, last_batch=last_batch).wrong)


@activity
def unexpected_errors(
    client: str,
    allowed: list,
    window_s: float = 0.0,
    last_batch: bool = False,
    configuration: dict = None,
    secrets: dict = None,
) -> int:
    """Count failed requests whose error is none of the ``allowed`` class names.

    ``allowed`` lists error class names as the caller saw them (e.g.
    ["ConnectionError", "ConnectionClosedError"]). Over requests sent in the
    last ``window_s`` s (0 = all) or, with ``last_batch``, in the client's
    last send_requests. Returns the count; 0 means every failure was one of
    the expected kinds.
    """
    return measure.unexpected_errors(client, allowed, window_s, last_batch)


@activity
def rejected_fast(
    client: str,
    max_ms: float = 50.0,
    window_s: float = 0.0,
    min_rejections: int = 1,
    last_batch: bool = False,
    configuration: dict = None,
    secrets: dict = None,
) -> bool:
    """Tell whether the open circuit failed fast.

    True when at least ``min_rejections`` requests in the window failed with
    CircuitBreakerError and every one of them took at most ``max_ms`` (ms).
    """
    return measure.rejected_fast(client, max_ms, window_s, min_rejections, last_batch)


@activity
def time_to_recover(
    client: str,
    after_event: str = "clear",
    target: str = "",
    consecutive: int = 5,
    timeout_s: float = 30.0,
    interval_ms: float = 50.0,
    configuration: dict = None,
    secrets: dict = None,
) -> float:
    """Measure seconds from a fault-timeline event until the client succeeds again.

    From the last ``after_event`` event ("clear", "restart", "enable", ...;
    only those for ``target`` when given) until the send time of the first of
    ``consecutive`` successes in a row. Without background traffic the probe
    sends one request every ``interval_ms`` (ms) itself. Waits at most
    ``timeout_s`` (s). Returns seconds (3 decimals) or -1 if not recovered.
    """
    return measure.time_to_recover(client, after_event, target, consecutive, timeout_s, interval_ms)


@activity
def middleware_metrics(
    client: str = "", server: str = "", configuration: dict = None, secrets: dict = None
) -> list[dict[str, Any]]:
    """Read every agenkit middleware decorator's metrics, outermost first.

    Of a ``client``, or of the agent served by chaos host ``server``.
    Returns [{position, type, kind, metrics, state?}, ...].
    """
    return measure.middleware_chain(client, server, configuration)


@activity
def circuit_state(
    client: str = "", server: str = "", which: int = 0, configuration: dict = None, secrets: dict = None
) -> str:
    """Read the state of agenkit's circuit breaker: "closed", "open" or "half_open".

    agenkit moves an open breaker to half_open only when a request arrives
    after recovery_timeout_ms, so an idle breaker stays "open".
    """
    return measure.middleware_entry("circuit_breaker", client, server, which, configuration)["state"]


@activity
def circuit_metrics(
    client: str = "", server: str = "", which: int = 0, configuration: dict = None, secrets: dict = None
) -> dict[str, Any]:
    """Read agenkit's circuit breaker metrics.

    Returns {total_requests, successful_requests, failed_requests,
    rejected_requests, state_changes: {"closed->open": n, ...},
    last_state_change, current_state}.
    """
    return measure.middleware_entry("circuit_breaker", client, server, which, configuration)["metrics"]


@activity
def circuit_transitions(
    client: str = "",
    server: str = "",
    transition: str = "closed->open",
    which: int = 0,
    configuration: dict = None,
    secrets: dict = None,
) -> int:
    """Count how often agenkit's circuit breaker made one state transition.

    ``transition`` is "closed->open", "open->half_open", "half_open->closed"
    or "half_open->open", read from agenkit's own ``state_changes``. Of a
    ``client`` or of the agent served by chaos host ``server``. Returns the
    count (0 if it never happened).
    """
    return measure.circuit_transitions(transition, client, server, which, configuration)


@activity
def retry_count(
    client: str = "", server: str = "", which: int = 0, configuration: dict = None, secrets: dict = None
) -> int:
    """Count the retries agenkit's retry middleware made (its total_retries)."""
    return measure.middleware_entry("retry", client, server, which, configuration)["metrics"]["total_retries"]


@activity
def retry_metrics(
    client: str = "", server: str = "", which: int = 0, configuration: dict = None, secrets: dict = None
) -> dict[str, Any]:
    """Read agenkit's retry metrics.

    Returns {total_attempts, successful_first_attempt, successful_on_retry,
    failed_after_retries, total_retries}.
    """
    return measure.middleware_entry("retry", client, server, which, configuration)["metrics"]


@activity
def retry_backoff(
    client: str, last_batch: bool = True, configuration: dict = None, secrets: dict = None
) -> dict[str, Any]:
    """Measure the backoff the client's retry middleware waited between attempts.

    Each call that reached the RemoteAgent under the client's ``retry``
    middleware is timed; per request, the pauses (ms) from the end of one
    attempt to the start of the next. Over the client's last send_requests
    (``last_batch``, default) or everything it sent. Returns {attempts,
    requests_retried, gaps_ms: [[50.1, 100.3], ...], min_growth}: the
    smallest ratio of a pause to the one before it (null when no request
    paused twice). Exponential backoff with multiplier 2 gives about 2.0;
    a constant backoff about 1.0. Fails for a client without retry middleware.
    """
    return measure.retry_backoff(client, last_batch)


@activity
def timeout_metrics(
    client: str = "", server: str = "", which: int = 0, configuration: dict = None, secrets: dict = None
) -> dict[str, Any]:
    """Read agenkit's timeout middleware metrics.

    Returns {total_requests, successful_requests, timed_out_requests,
    failed_requests, min_duration, max_duration, avg_duration, ...} (s).
    """
    return measure.middleware_entry("timeout", client, server, which, configuration)["metrics"]


@activity
def rate_limiter_metrics(
    client: str = "", server: str = "", which: int = 0, configuration: dict = None, secrets: dict = None
) -> dict[str, Any]:
    """Read agenkit's rate limiter metrics.

    Returns {total_requests, allowed_requests, rejected_requests,
    total_wait_time (s), current_tokens}.
    """
    return measure.middleware_entry("rate_limiter", client, server, which, configuration)["metrics"]


@activity
def cache_metrics(
    client: str = "", server: str = "", which: int = 0, configuration: dict = None, secrets: dict = None
) -> dict[str, Any]:
    """Read agenkit's caching metrics.

    Returns {total_requests, cache_hits, cache_misses, evictions,
    invalidations, current_size, hit_rate, miss_rate}.
    """
    return measure.middleware_entry("caching", client, server, which, configuration)["metrics"]
