"""Build agenkit middleware stacks from JSON declarations.

Design rule: the stack is agenkit's own decorators around the agent we are
given, in the order declared (first = outermost), with nothing of ours in
between. We check types and names (agenkit's config dataclasses check
ranges but not types, and would fail later with a TypeError), then let
agenkit's ``__post_init__`` validate values; its ``ValueError`` becomes a
``ConfigurationError`` naming the declaration. The only code of ours that
agenkit runs is ``should_retry``, built from the error names the user
lists (``retry_on`` / ``no_retry_on``), matched against the class name of
the exception and every class in its MRO.

Validation (``validate_middleware``) needs no agenkit import, so activities
can reject a bad declaration before anything changes and without paying for
``import agenkit``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from chaosagenkit.activity import require_number
from chaosagenkit.exceptions import ConfigurationError

__all__ = ["MIDDLEWARE_PARAMETERS", "build_stack", "error_names", "should_retry_for", "validate_middleware"]

# type -> parameter -> (checker kind, nullable). Kinds: "int", "number", "names".
MIDDLEWARE_PARAMETERS: dict[str, dict[str, tuple[str, bool]]] = {
    "retry": {
        "max_retries": ("int", False),
        "initial_delay": ("number", False),
        "max_delay": ("number", False),
        "multiplier": ("number", False),
        "retry_on": ("names", False),
        "no_retry_on": ("names", False),
    },
    "circuit_breaker": {
        "failure_threshold": ("int", False),
        "recovery_timeout_ms": ("int", False),
        "success_threshold": ("int", False),
        "timeout_ms": ("int", False),
    },
    "timeout": {"timeout_ms": ("int", False)},
    "rate_limiter": {
        "rate": ("number", False),
        "capacity": ("int", False),
        "tokens_per_request": ("int", False),
        "max_wait_ms": ("int", True),
    },
    "caching": {"max_cache_size": ("int", False), "default_ttl": ("number", False)},
}


def validate_middleware(middleware: Any, arg: str = "middleware") -> list[dict[str, Any]]:
    """Check a list of middleware declarations; return a deep copy of it.

    Raises ``ConfigurationError`` naming the first bad entry, type or parameter.
    """
    if middleware is None:
        return []
    if not isinstance(middleware, list):
        raise ConfigurationError(arg, f"must be a list of middleware objects, got {middleware!r}")
    for index, spec in enumerate(middleware):
        where = f"{arg}[{index}]"
        if not isinstance(spec, dict):
            raise ConfigurationError(where, f"must be an object with a 'type', got {spec!r}")
        kind = spec.get("type")
        if kind not in MIDDLEWARE_PARAMETERS:
            known = ", ".join(MIDDLEWARE_PARAMETERS)
            raise ConfigurationError(f"{where}.type", f"must be one of {known}, got {kind!r}")
        allowed = MIDDLEWARE_PARAMETERS[kind]
        for param, value in spec.items():
            if param == "type":
                continue
            if param not in allowed:
                known = ", ".join(allowed)
                raise ConfigurationError(f"{where}.{param}", f"is not a parameter of {kind} (known: {known})")
            checker, nullable = allowed[param]
            _check_value(value, f"{where}.{param}", checker, nullable)
    return copy.deepcopy(middleware)


def build_stack(agent: Any, middleware: Any, arg: str = "middleware") -> Any:
    """Wrap ``agent`` in agenkit's decorators as declared, first declaration outermost.

    Returns the outermost decorator (or ``agent`` itself for an empty list).
    """
    specs = validate_middleware(middleware, arg)
    configs = [(index, spec, _make_config(index, spec, arg)) for index, spec in enumerate(specs)]
    stack = agent
    for _index, spec, config in reversed(configs):
        stack = _decorator_class(spec["type"])(stack, config)
    return stack


def error_names(error: BaseException) -> set[str]:
    """The class name of ``error`` and of every class in its MRO (``object`` excluded)."""
    return {cls.__name__ for cls in type(error).__mro__ if cls is not object}


def should_retry_for(
    retry_on: list[str] | None, no_retry_on: list[str] | None
) -> Callable[[Exception], bool] | None:
    """agenkit ``should_retry`` from error names: retry unless excluded, only if included."""
    if not retry_on and not no_retry_on:
        return None
    include = frozenset(retry_on or ())
    exclude = frozenset(no_retry_on or ())

    def should_retry(error: Exception) -> bool:
        names = error_names(error)
        if exclude and names & exclude:
            return False
        return not include or bool(names & include)

    return should_retry


def _check_value(value: Any, where: str, checker: str, nullable: bool) -> None:
    if value is None and nullable:
        return
    if checker == "int":
        require_number(value, where, integer=True)
    elif checker == "number":
        require_number(value, where)
    elif checker == "names":
        ok = isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)
        if not ok:
            raise ConfigurationError(where, f"must be a list of error class names, got {value!r}")


def _make_config(index: int, spec: dict[str, Any], arg: str) -> Any:
    """agenkit's config dataclass for one declaration; its ValueError names the entry."""
    import agenkit.middleware as mw

    kind = spec["type"]
    params = {k: v for k, v in spec.items() if k != "type"}
    try:
        if kind == "retry":
            retry_on = params.pop("retry_on", None)
            no_retry_on = params.pop("no_retry_on", None)
            return mw.RetryConfig(**params, should_retry=should_retry_for(retry_on, no_retry_on))
        if kind == "circuit_breaker":
            return mw.CircuitBreakerConfig(**params)
        if kind == "timeout":
            return mw.TimeoutConfig(**params)
        if kind == "rate_limiter":
            return mw.RateLimiterConfig(**params)
        return mw.CachingConfig(**params)
    except ValueError as e:
        raise ConfigurationError(f"{arg}[{index}]", f"({kind}) is rejected by agenkit: {e}") from e


def _decorator_class(kind: str) -> type:
    import agenkit.middleware as mw

    return {
        "retry": mw.RetryDecorator,
        "circuit_breaker": mw.CircuitBreakerDecorator,
        "timeout": mw.TimeoutDecorator,
        "rate_limiter": mw.RateLimiterDecorator,
        "caching": mw.CachingDecorator,
    }[kind]
