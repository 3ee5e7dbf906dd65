"""Chaos Toolkit actions of the LLM fault endpoint: inject and clear provider faults.

``llm`` is the name of an endpoint this run started (the control's
``llm_endpoints``) or the control URL of one running elsewhere
(``chaosagenkit llm-proxy``; its token from the configuration key
``chaosagenkit_llm_token``). Every inject action picks its requests with
``rate`` (fraction 0..1, drawn from the endpoint's seeded RNG), ``first``
(the first N requests it can act on) or ``every`` (every Nth); 0 = unused,
and ``first``/``every`` need ``rate`` 1. ``duration_s`` (default 300, > 0)
is a safety TTL after which the endpoint drops the fault by itself. Each
returns the created fault (``id``, ``kind``, ``params``, ``expires_at``)
and records it on the run's fault timeline. See docs/llm.md.
"""

import logging
from typing import Any

from chaosagenkit.activity import activity, require_number, require_text
from chaosagenkit.limits import DEFAULT_TTL_S
from chaosagenkit.llm import process

__all__ = [
    "clear_llm_faults",
    "inject_connection_reset",
    "inject_context_length_error",
    "inject_empty_content",
    "inject_llm_latency",
    "inject_malformed_sse",
    "inject_malformed_tool_call",
    "inject_rate_limit",
    "inject_refusal",
    "inject_server_error",
    "inject_slow_first_token",
    "inject_slow_tokens",
    "inject_stream_cut",
]

logger = logging.getLogger("chaostoolkit")

#: Default safety TTL (seconds) of an injected fault.


@activity
def inject_rate_limit(
    llm: str,
    retry_after_s: float = -1,
    rate: float = 1.0,
    first: int = 0,
    every: int = 0,
    duration_s: float = DEFAULT_TTL_S,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Answer model requests with 429 (rate limited), in the provider's error shape.

    ``retry_after_s`` (s, >= 0) adds a ``Retry-After`` header; -1 (default)
    sends none, so clients fall back on their own backoff.
    """
    fault: dict[str, Any] = {"kind": "rate_limit"}
    if retry_after_s != -1:
        require_number(retry_after_s, "retry_after_s", minimum=0)
        fault["retry_after_s"] = retry_after_s
    return _inject(llm, configuration, fault, rate, first, every, duration_s)


@activity
def inject_server_error(
    llm: str,
    status: int = 500,
    rate: float = 1.0,
    first: int = 0,
    every: int = 0,
    duration_s: float = DEFAULT_TTL_S,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Answer model requests with a server error: ``status`` 500, 502, 503 or 529 (overloaded)."""
    return _inject(
        llm, configuration, {"kind": "server_error", "status": status}, rate, first, every, duration_s
    )


@activity
def inject_context_length_error(
    llm: str,
    rate: float = 1.0,
    first: int = 0,
    every: int = 0,
    duration_s: float = DEFAULT_TTL_S,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Answer model requests with 400 "the prompt exceeds the context window", as the provider words it."""
    return _inject(llm, configuration, {"kind": "context_length"}, rate, first, every, duration_s)


@activity
def inject_connection_reset(
    llm: str,
    after_events: int = 0,
    rate: float = 1.0,
    first: int = 0,
    every: int = 0,
    duration_s: float = DEFAULT_TTL_S,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Reset the TCP connection (RST) before any answer, or after ``after_events`` SSE events of a stream.

    With ``after_events`` > 0 only streamed requests are affected.
    """
    fault = {"kind": "connection_reset", "after_events": after_events}
    return _inject(llm, configuration, fault, rate, first, every, duration_s)


@activity
def inject_llm_latency(
    llm: str,
    delay_ms: float,
    rate: float = 1.0,
    first: int = 0,
    every: int = 0,
    duration_s: float = DEFAULT_TTL_S,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Wait ``delay_ms`` (ms) before sending the response headers of model requests."""
    return _inject(
        llm, configuration, {"kind": "latency", "delay_ms": delay_ms}, rate, first, every, duration_s
    )


@activity
def inject_slow_first_token(
    llm: str,
    delay_ms: float,
    rate: float = 1.0,
    first: int = 0,
    every: int = 0,
    duration_s: float = DEFAULT_TTL_S,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Send a stream's headers at once, then wait ``delay_ms`` (ms) before its first token (streams only)."""
    fault = {"kind": "slow_first_token", "delay_ms": delay_ms}
    return _inject(llm, configuration, fault, rate, first, every, duration_s)


@activity
def inject_slow_tokens(
    llm: str,
    delay_ms: float,
    rate: float = 1.0,
    first: int = 0,
    every: int = 0,
    duration_s: float = DEFAULT_TTL_S,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Wait ``delay_ms`` (ms) before every token of a stream after the first (streams only)."""
    fault = {"kind": "slow_tokens", "delay_ms": delay_ms}
    return _inject(llm, configuration, fault, rate, first, every, duration_s)


@activity
def inject_stream_cut(
    llm: str,
    after_events: int,
    final_event: bool = False,
    rate: float = 1.0,
    first: int = 0,
    every: int = 0,
    duration_s: float = DEFAULT_TTL_S,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """End streams after ``after_events`` SSE events, cleanly as HTTP goes (streams only).

    With ``final_event`` the API's end marker follows (OpenAI ``[DONE]``,
    Anthropic ``message_stop``), so only the missing finish reason shows the
    answer is incomplete.
    """
    fault = {"kind": "stream_cut", "after_events": after_events, "final_event": final_event}
    return _inject(llm, configuration, fault, rate, first, every, duration_s)


@activity
def inject_malformed_sse(
    llm: str,
    after_events: int = 0,
    rate: float = 1.0,
    first: int = 0,
    every: int = 0,
    duration_s: float = DEFAULT_TTL_S,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """After ``after_events`` good events, send an SSE event whose data is not JSON, then end (streams only)."""
    fault = {"kind": "malformed_sse", "after_events": after_events}
    return _inject(llm, configuration, fault, rate, first, every, duration_s)


@activity
def inject_malformed_tool_call(
    llm: str,
    rate: float = 1.0,
    first: int = 0,
    every: int = 0,
    duration_s: float = DEFAULT_TTL_S,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Make the arguments of answered tool calls invalid JSON (requests that offer tools).

    Acts on OpenAI answers and on streamed Anthropic answers; a non-streamed
    Anthropic tool input is a decoded JSON object, so it is left alone.
    """
    return _inject(llm, configuration, {"kind": "malformed_tool_call"}, rate, first, every, duration_s)


@activity
def inject_empty_content(
    llm: str,
    rate: float = 1.0,
    first: int = 0,
    every: int = 0,
    duration_s: float = DEFAULT_TTL_S,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Answer with empty content and a normal finish reason."""
    return _inject(llm, configuration, {"kind": "empty_content"}, rate, first, every, duration_s)


@activity
def inject_refusal(
    llm: str,
    rate: float = 1.0,
    first: int = 0,
    every: int = 0,
    duration_s: float = DEFAULT_TTL_S,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Answer with no content and a refusal stop reason (OpenAI ``content_filter``, Anthropic ``refusal``)."""
    return _inject(llm, configuration, {"kind": "refusal"}, rate, first, every, duration_s)


@activity
def clear_llm_faults(llm: str, configuration: dict = None, secrets: dict = None) -> dict[str, Any]:
    """Remove every fault from the LLM endpoint. Returns the endpoint and the ids removed."""
    require_text(llm, "llm")
    removed = process.clear(llm, _token(configuration))
    return {"llm": llm, "removed": [f["id"] for f in removed]}


def _inject(
    llm: str,
    configuration: dict | None,
    fault: dict[str, Any],
    rate: float,
    first: int,
    every: int,
    duration_s: float,
) -> dict[str, Any]:
    require_text(llm, "llm")
    # The control API accepts a fault without a TTL; through Chaos Toolkit every fault expires.
    require_number(duration_s, "duration_s", minimum=0, exclusive_minimum=True)
    fault = {**fault, "rate": rate, "first": first, "every": every, "duration_s": duration_s}
    created = process.inject(llm, fault, _token(configuration))
    logger.info(f"chaosagenkit: {created['kind']} fault {created['id']} on LLM endpoint '{llm}'")
    return created


def _token(configuration: dict | None) -> str | None:
    return (configuration or {}).get(process.TOKEN_CONFIG_KEY) or None
