"""Middleware declarations become agenkit's own decorators, or a one-line error naming the fault."""

from __future__ import annotations

import pytest
from agenkit.adapters.python.errors import MalformedPayloadError, RemoteExecutionError
from agenkit.interfaces import Agent, Message
from agenkit.middleware import (
    CachingDecorator,
    CircuitBreakerDecorator,
    CircuitBreakerError,
    RateLimiterDecorator,
    RetryDecorator,
    TimeoutDecorator,
)
from chaoslib.exceptions import ActivityFailed

from chaosagenkit.client import actions
from chaosagenkit.client.stack import build_stack, should_retry_for, validate_middleware
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.middleware_view import decorator_chain


class Idle(Agent):
    """The innermost agent; never called (building a stack sends nothing)."""

    @property
    def name(self) -> str:
        return "idle"

    async def process(self, message: Message) -> Message:
        raise AssertionError("not called")


def test_declarations_build_agenkits_decorators_outermost_first():
    inner = Idle()
    stack = build_stack(
        inner,
        [
            {"type": "retry", "max_retries": 4, "initial_delay": 0.01, "max_delay": 0.5, "multiplier": 3},
            {"type": "circuit_breaker", "failure_threshold": 2, "recovery_timeout_ms": 300,
             "success_threshold": 1, "timeout_ms": 900},
            {"type": "timeout", "timeout_ms": 250},
            {"type": "rate_limiter", "rate": 5, "capacity": 3, "tokens_per_request": 1, "max_wait_ms": 40},
            {"type": "caching", "max_cache_size": 7, "default_ttl": 2.5},
        ],
    )  # fmt: skip
    chain = decorator_chain(stack)
    assert [type(x) for x in chain] == [
        RetryDecorator, CircuitBreakerDecorator, TimeoutDecorator, RateLimiterDecorator,
        CachingDecorator, Idle,
    ]  # fmt: skip
    retry, breaker, timeout, limiter, cache = chain[:5]
    assert (retry._config.max_retries, retry._config.initial_delay, retry._config.multiplier) == (4, 0.01, 3)
    assert retry._config.should_retry is None
    assert (breaker._config.failure_threshold, breaker._config.recovery_timeout_ms) == (2, 300)
    assert (breaker._config.success_threshold, breaker._config.timeout_ms) == (1, 900)
    assert timeout._config.timeout_ms == 250
    assert (limiter._config.rate, limiter._config.capacity, limiter._config.max_wait_ms) == (5, 3, 40)
    assert (cache._config.max_cache_size, cache._config.default_ttl) == (7, 2.5)
    assert chain[-1] is inner


def test_an_empty_declaration_leaves_the_agent_alone():
    inner = Idle()
    assert build_stack(inner, []) is inner
    assert build_stack(inner, None) is inner


def test_should_retry_matches_class_names_and_their_mro():
    no_malformed = should_retry_for(None, ["MalformedPayloadError"])
    assert no_malformed(MalformedPayloadError("x")) is False
    assert no_malformed(RemoteExecutionError("a", "b")) is True
    # ProtocolError is a base class of MalformedPayloadError: excluding it excludes the subclass.
    no_protocol = should_retry_for(None, ["ProtocolError"])
    assert no_protocol(MalformedPayloadError("x")) is False
    only_remote = should_retry_for(["RemoteExecutionError"], None)
    assert only_remote(RemoteExecutionError("a", "b")) is True
    assert only_remote(CircuitBreakerError("open")) is False
    both = should_retry_for(["Exception"], ["CircuitBreakerError"])
    assert both(CircuitBreakerError("open")) is False
    assert both(ValueError("v")) is True
    assert should_retry_for(None, None) is None


def test_retry_declaration_turns_names_into_agenkits_should_retry():
    stack = build_stack(Idle(), [{"type": "retry", "no_retry_on": ["CircuitBreakerError"]}])
    assert stack._config.should_retry(CircuitBreakerError("open")) is False
    assert stack._config.should_retry(RemoteExecutionError("a", "b")) is True


BAD_DECLARATIONS = [
    ("not a list", {"type": "retry"}, "'middleware' must be a list"),
    ("entry not an object", ["retry"], "'middleware[0]' must be an object"),
    ("unknown type", [{"type": "retyr"}], "'middleware[0].type' must be one of retry, circuit_breaker"),
    ("missing type", [{"max_retries": 2}], "'middleware[0].type' must be one of"),
    ("unknown parameter", [{"type": "timeout"}, {"type": "retry", "max_retry": 2}],
     "'middleware[1].max_retry' is not a parameter of retry"),
    ("parameter of another type", [{"type": "timeout", "failure_threshold": 2}],
     "'middleware[0].failure_threshold' is not a parameter of timeout"),
    ("string number", [{"type": "retry", "max_retries": "3"}],
     "'middleware[0].max_retries' must be an integer, got '3'"),
    ("float for int", [{"type": "circuit_breaker", "failure_threshold": 2.5}],
     "'middleware[0].failure_threshold' must be an integer"),
    ("bool for number", [{"type": "rate_limiter", "rate": True}], "'middleware[0].rate' must be a number"),
    ("infinite", [{"type": "caching", "default_ttl": float("inf")}], "'middleware[0].default_ttl' must be a number"),
    ("names not a list", [{"type": "retry", "no_retry_on": "CircuitBreakerError"}],
     "'middleware[0].no_retry_on' must be a list of error class names"),
    ("empty name", [{"type": "retry", "retry_on": [""]}], "'middleware[0].retry_on' must be a list"),
    ("null not allowed", [{"type": "timeout", "timeout_ms": None}], "'middleware[0].timeout_ms' must be an integer"),
    # agenkit's own validation, reported with the entry it came from
    ("agenkit: max_retries", [{"type": "retry", "max_retries": 0}],
     "'middleware[0]' (retry) is rejected by agenkit: max_retries must be at least 1"),
    ("agenkit: multiplier", [{"type": "retry", "multiplier": 1}], "multiplier must be > 1.0"),
    ("agenkit: max_delay", [{"type": "retry", "initial_delay": 2, "max_delay": 1}],
     "max_delay must be >= initial_delay"),
    ("agenkit: threshold", [{"type": "circuit_breaker", "failure_threshold": 0}],
     "failure_threshold must be at least 1"),
    ("agenkit: timeout", [{"type": "timeout", "timeout_ms": -5}], "timeout_ms must be positive"),
    ("agenkit: rate", [{"type": "rate_limiter", "rate": 0}], "rate must be positive"),
    ("agenkit: tokens", [{"type": "rate_limiter", "capacity": 2, "tokens_per_request": 3}],
     "tokens_per_request cannot exceed capacity"),
    ("agenkit: cache", [{"type": "caching", "max_cache_size": 0}], "max_cache_size must be at least 1"),
]  # fmt: skip


@pytest.mark.parametrize("case,middleware,message", BAD_DECLARATIONS, ids=[c[0] for c in BAD_DECLARATIONS])
def test_bad_declarations_are_rejected_with_the_offending_entry(case, middleware, message):
    with pytest.raises(ConfigurationError) as raised:
        build_stack(Idle(), middleware)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_rate_limiter_may_wait_indefinitely_with_null_max_wait():
    assert validate_middleware([{"type": "rate_limiter", "max_wait_ms": None}])[0]["max_wait_ms"] is None


def test_validation_returns_a_copy_the_caller_cannot_change_later():
    declared = [{"type": "retry", "no_retry_on": ["X"]}]
    checked = validate_middleware(declared)
    declared[0]["no_retry_on"].append("Y")
    assert checked == [{"type": "retry", "no_retry_on": ["X"]}]


@pytest.mark.parametrize(
    "middleware,message",
    [
        ([{"type": "bulkhead"}], "create_client: 'middleware[0].type' must be one of"),
        ([{"type": "retry", "tries": 3}], "create_client: 'middleware[0].tries' is not a parameter of retry"),
        (
            [{"type": "retry", "max_retries": 0}],
            "create_client: 'middleware[0]' (retry) is rejected by agenkit",
        ),
    ],
)
def test_create_client_fails_with_one_line_naming_the_declaration(middleware, message):
    from chaosagenkit.sandbox import SANDBOX

    with pytest.raises(ActivityFailed) as raised:
        actions.create_client("bad", endpoint="tcp://127.0.0.1:9", middleware=middleware)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)
    assert "bad" not in SANDBOX.clients
