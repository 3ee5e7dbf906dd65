"""Read agenkit's middleware decorators as plain JSON.

agenkit's middleware decorators (RetryDecorator, CircuitBreakerDecorator,
TimeoutDecorator, RateLimiterDecorator, CachingDecorator, MetricsDecorator,
...) each keep the wrapped agent in ``_agent`` and expose ``metrics``. This
module walks such a chain, outermost first, and turns what each decorator
itself reports into JSON. It never counts anything on its own: probes of
middleware state must show agenkit's numbers, not ours.

The same view serves the client side (probes over a client's stack) and the
chaos host's ``GET /middleware`` (a served agent that calls another agent
through its own middleware), so both report identical shapes::

    [{"position": 0, "type": "RetryDecorator", "kind": "retry",
      "metrics": {"total_attempts": 12, ...}},
     {"position": 1, "type": "CircuitBreakerDecorator", "kind": "circuit_breaker",
      "state": "open", "metrics": {"failed_requests": 5, ...}}]
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any

__all__ = ["KIND_BY_CLASS", "decorator_chain", "describe_chain", "to_json"]

#: agenkit decorator class name -> the short kind used in specs and probes.
KIND_BY_CLASS = {
    "RetryDecorator": "retry",
    "CircuitBreakerDecorator": "circuit_breaker",
    "TimeoutDecorator": "timeout",
    "RateLimiterDecorator": "rate_limiter",
    "CachingDecorator": "caching",
    "MetricsDecorator": "metrics",
    "BatchingDecorator": "batching",
    "PerUserRateLimiterDecorator": "per_user_rate_limiter",
    "TopologyNode": "topology",  # chaosagenkit.topology.node: a composition host's edges
}

_MAX_DEPTH = 64  # a decorator chain deeper than this is a cycle, not a stack


def decorator_chain(agent: Any) -> list[Any]:
    """Every object from ``agent`` inward through ``_agent`` links (agent itself first)."""
    chain: list[Any] = []
    seen: set[int] = set()
    current = agent
    while current is not None and id(current) not in seen and len(chain) < _MAX_DEPTH:
        chain.append(current)
        seen.add(id(current))
        current = getattr(current, "_agent", None)
    return chain


def describe_chain(agent: Any) -> list[dict[str, Any]]:
    """JSON description of each middleware decorator in ``agent``'s chain, outermost first.

    Objects without ``metrics`` (the innermost agent, a RemoteAgent) are skipped;
    positions count decorators only.
    """
    described: list[dict[str, Any]] = []
    for link in decorator_chain(agent):
        if not hasattr(type(link), "metrics") and not hasattr(link, "_metrics"):
            continue
        try:
            metrics = link.metrics
        except Exception as e:  # a decorator whose metrics cannot be read says so
            metrics = {"error": f"{type(e).__name__}: {e}"}
        class_name = type(link).__name__
        entry: dict[str, Any] = {
            "position": len(described),
            "type": class_name,
            "kind": KIND_BY_CLASS.get(class_name, class_name),
            "metrics": to_json(metrics),
        }
        state = getattr(link, "state", None)
        if state is not None:
            entry["state"] = to_json(state)
        described.append(entry)
    return described


def to_json(value: Any) -> Any:
    """Convert agenkit metric objects (dataclasses, enums, properties) to JSON values."""
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
        # Derived numbers agenkit exposes as properties (hit_rate, miss_rate, ...).
        for name, attr in vars(type(value)).items():
            if isinstance(attr, property) and not name.startswith("_"):
                try:
                    out[name] = to_json(getattr(value, name))
                except Exception:
                    continue
        return out
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [to_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "__dict__"):
        return {k: to_json(v) for k, v in vars(value).items() if not k.startswith("_")}
    return str(value)
