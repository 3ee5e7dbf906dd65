"""Chaos Toolkit probes of the LLM fault endpoint: what it saw, what it injected, how fast it streamed.

``llm`` is an endpoint name of this run or a control URL (token from the
configuration key ``chaosagenkit_llm_token``). Counting attempts: an agent
request that went through SDK retries and middleware retries reaches the
endpoint once per attempt, so ``requests_seen`` with ``since_last_inject``
right after one agent request is what that request cost. See docs/llm.md.
"""

import itertools
from typing import Any

from chaosagenkit.activity import activity, require_choice, require_number, require_text
from chaosagenkit.client.recorder import percentile as nth_percentile
from chaosagenkit.llm import process
from chaosagenkit.llm.faults import LLM_FAULT_KINDS

__all__ = [
    "active_llm_faults",
    "attempt_gaps_ms",
    "llm_faults_injected",
    "llm_requests",
    "llm_stats",
    "requests_seen",
    "time_to_first_token",
    "tokens_streamed",
]


@activity
def llm_stats(llm: str, configuration: dict = None, secrets: dict = None) -> dict[str, Any]:
    """Read the endpoint's counters.

    Returns ``requests`` (every model request received), ``requests_since_inject``,
    ``by_api``, ``outcomes`` (answered, error, reset, cut, malformed, ...),
    ``injected`` (count per fault kind), ``active_faults``,
    ``tokens_streamed``, ``ttft_ms`` (count, p50, p95, p99, max, mean) and
    ``seed``. Fails when the endpoint cannot be reached.
    """
    require_text(llm, "llm")
    return process.stats(llm, _token(configuration))


@activity
def requests_seen(
    llm: str, since_last_inject: bool = False, configuration: dict = None, secrets: dict = None
) -> int:
    """Count the model requests (attempts) the endpoint received.

    ``since_last_inject``: only those after the last fault was injected, so
    injecting, sending one agent request and probing gives the attempts that
    one request cost (SDK retries x middleware retries). Fails when the
    endpoint cannot be reached.
    """
    require_text(llm, "llm")
    stats = process.stats(llm, _token(configuration))
    return int(stats["requests_since_inject"] if since_last_inject else stats["requests"])


@activity
def tokens_streamed(llm: str, configuration: dict = None, secrets: dict = None) -> int:
    """Count the SSE events carrying a token (text or tool arguments) the endpoint has written."""
    require_text(llm, "llm")
    return int(process.stats(llm, _token(configuration))["tokens_streamed"])


@activity
def time_to_first_token(
    llm: str,
    percentile: float = 50,
    since_last_inject: bool = False,
    configuration: dict = None,
    secrets: dict = None,
) -> float:
    """Time to first token (ms) of streamed answers, from request arrival to the first token written.

    ``percentile`` (0..100) over the streamed requests that got a token
    (``since_last_inject``: after the last injection only). Injected delays
    count. Returns -1 when no stream got a token.
    """
    require_text(llm, "llm")
    require_number(percentile, "percentile", minimum=0, maximum=100)
    records = process.requests(llm, 0, since_last_inject, _token(configuration))
    values = sorted(r["ttft_ms"] for r in records if r.get("ttft_ms") is not None)
    return round(nth_percentile(values, percentile), 3) if values else -1.0


@activity
def attempt_gaps_ms(
    llm: str, since_last_inject: bool = True, configuration: dict = None, secrets: dict = None
) -> dict[str, Any]:
    """Time between consecutive model requests arriving (ms): how long each retry waited.

    Returns ``{"attempts": N, "gaps_ms": [...], "min_ms": ..., "max_ms": ...}``
    over the requests since the last injection (``since_last_inject``, the
    default) or all those logged; min and max are -1 with fewer than 2
    attempts. Use it to check that a ``Retry-After`` was honoured.
    """
    require_text(llm, "llm")
    records = process.requests(llm, 0, since_last_inject, _token(configuration))
    times = [r["t"] for r in records]
    gaps = [round((b - a) * 1000.0, 1) for a, b in itertools.pairwise(times)]
    return {
        "attempts": len(times),
        "gaps_ms": gaps,
        "min_ms": min(gaps) if gaps else -1.0,
        "max_ms": max(gaps) if gaps else -1.0,
    }


@activity
def llm_faults_injected(llm: str, kind: str = "", configuration: dict = None, secrets: dict = None) -> int:
    """Count the requests the endpoint injected a fault into (``kind``: one kind; empty: all).

    Use it to check that a fault really reached the traffic. Fails for an
    unknown kind and when the endpoint cannot be reached.
    """
    require_text(llm, "llm")
    if kind:
        require_choice(kind, "kind", tuple(LLM_FAULT_KINDS))
    injected = process.stats(llm, _token(configuration)).get("injected") or {}
    return int(injected.get(kind, 0)) if kind else int(sum(injected.values()))


@activity
def active_llm_faults(llm: str, configuration: dict = None, secrets: dict = None) -> list:
    """List the faults in force on the endpoint, oldest first (expired ones are gone)."""
    require_text(llm, "llm")
    return process.client_for(process.resolve(llm, _token(configuration))).get("/faults")


@activity
def llm_requests(
    llm: str,
    last: int = 20,
    since_last_inject: bool = False,
    configuration: dict = None,
    secrets: dict = None,
) -> list:
    """The endpoint's request log, newest last: number, time, API, stream, faults, status, outcome,
    tokens, ttft_ms, duration_ms. ``last`` (0 = all kept, up to 10000)."""
    require_text(llm, "llm")
    require_number(last, "last", minimum=0, integer=True)
    return process.requests(llm, last, since_last_inject, _token(configuration))


def _token(configuration: dict | None) -> str | None:
    return (configuration or {}).get(process.TOKEN_CONFIG_KEY) or None
