"""Chaos Toolkit actions of the client harness: declare clients and drive traffic.

A client is a real agenkit ``RemoteAgent`` wrapped in agenkit's own
middleware, declared here or in ``chaosagenkit.control`` (``clients``), and
named in every later activity. See docs/client.md.
"""

import logging
from typing import Any

from chaosagenkit.activity import activity
from chaosagenkit.client import registry

__all__ = ["close_client", "create_client", "start_traffic", "stop_traffic"]

logger = logging.getLogger("chaostoolkit")


@activity
def create_client(
    name: str,
    endpoint: str = "",
    server: str = "",
    proxy: str = "",
    transport: str = "",
    middleware: list = None,
    timeout_ms: int = 5000,
    connections: int = 1,
    answer_check: str = "echo",
    request_content: str = "req-{n}",
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Create a named client: agenkit RemoteAgent(s) wrapped in agenkit middleware.

    ``name`` is how later activities refer to the client. Where it connects:
    ``endpoint`` (an agenkit endpoint such as ``tcp://127.0.0.1:9000``) if
    given, else the listen address of ``proxy`` (a proxy declared in the
    control; scheme from ``transport``, else the upstream server's), else
    the endpoint of ``server`` (a server declared in the control).
    ``middleware`` lists agenkit decorators, outermost first, e.g.
    ``[{"type": "retry", "max_retries": 3, "initial_delay": 0.05},
    {"type": "circuit_breaker", "failure_threshold": 5}]``; types: retry,
    circuit_breaker, timeout, rate_limiter, caching. ``timeout_ms`` is the
    RemoteAgent's own per-request timeout (ms). ``connections`` RemoteAgents
    share one middleware stack (1 = agenkit's one serialised connection).
    ``answer_check`` is "echo" (answers must carry their request's content
    and request_id), "any" (any answer that is not an error) or
    "module:function" (f(request, answer) -> bool, imported with the current
    directory on the path, like a served agent); a check that raises fails
    the client's next probe instead of counting wrong answers.
    ``request_content`` is the content of request n, a template with
    ``{n}`` (e.g. "status of order {n}").

    Returns the client's description. Fails, changing nothing, on an unknown
    middleware type or parameter, a bad value or an unknown server/proxy.
    """
    client = registry.create_client(
        name,
        endpoint=endpoint,
        server=server,
        proxy=proxy,
        transport=transport,
        middleware=middleware,
        timeout_ms=timeout_ms,
        connections=connections,
        answer_check=answer_check,
        request_content=request_content,
    )
    logger.info(f"chaosagenkit: client '{name}' -> {client.endpoint}")
    return client.describe()


@activity
def close_client(name: str, configuration: dict = None, secrets: dict = None) -> dict[str, Any]:
    """Stop the client's traffic and close its connections.

    ``name`` is the client. Its outcomes stay available to the journal.
    Returns the summary of every request the client sent (see send_requests).
    """
    return registry.close_client(name)


@activity
def start_traffic(
    client: str,
    rate_per_s: float = 20.0,
    duration_s: float = 60.0,
    concurrency: int = 10,
    distinct: int = 0,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Start steady background requests on a client; they run until stopped.

    ``rate_per_s`` > 0 starts requests on a fixed schedule (open loop) with
    at most ``concurrency`` in flight (a scheduled request that finds them
    all busy is counted as skipped); ``rate_per_s`` = 0 runs ``concurrency``
    workers back to back (closed loop). ``duration_s`` (s) is a safety
    bound: the traffic stops by itself after it. ``distinct`` > 0 cycles
    through that many identical keys (to exercise caching).
    Returns how the traffic is driven. Fails if traffic already runs.
    """
    return registry.start_traffic(client, rate_per_s, duration_s, concurrency, distinct)


@activity
def stop_traffic(
    client: str, drain_s: float = 10.0, configuration: dict = None, secrets: dict = None
) -> dict[str, Any]:
    """Stop a client's background traffic and summarise it.

    Waits up to ``drain_s`` (s) for requests in flight, then cancels them.
    Returns that traffic's summary: sent, ok, errors by type, success_ratio,
    wrong_answers, latency_ms {p50,p95,p99,max,mean}, duration_s, plus mode,
    skipped and ended_by ("stop" or "duration").
    """
    return registry.stop_traffic(client, drain_s)
