"""The relay target reads its backend and middleware from the environment, or says what is wrong."""

from __future__ import annotations

import pytest
from agenkit.adapters.python.remote_agent import RemoteAgent
from agenkit.middleware import CircuitBreakerDecorator, RetryDecorator

from chaosagenkit.client.harness import AttemptLog
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.middleware_view import describe_chain
from chaosagenkit.targets import RelayAgent, relay


def test_relay_builds_agenkit_middleware_over_a_remote_agent(monkeypatch):
    monkeypatch.setenv("CHAOSAGENKIT_RELAY_ENDPOINT", "tcp://127.0.0.1:9")
    monkeypatch.setenv(
        "CHAOSAGENKIT_RELAY_MIDDLEWARE",
        '[{"type": "retry", "max_retries": 2, "initial_delay": 0.01}, {"type": "circuit_breaker"}]',
    )
    monkeypatch.setenv("CHAOSAGENKIT_RELAY_TIMEOUT_MS", "750")
    agent = relay()
    assert isinstance(agent, RelayAgent) and agent.name == "relay"
    assert isinstance(agent._agent, RetryDecorator)
    assert isinstance(agent._agent._agent, CircuitBreakerDecorator)
    attempts = agent._agent._agent._agent  # under retry, the client times each attempt
    assert isinstance(attempts, AttemptLog)
    remote = attempts._agent
    assert isinstance(remote, RemoteAgent) and remote._timeout_ms == 750
    # what the chaos host's GET /middleware shows for a served relay
    assert [entry["kind"] for entry in describe_chain(agent)] == ["retry", "circuit_breaker"]


@pytest.mark.parametrize(
    "env,message",
    [
        ({}, "'CHAOSAGENKIT_RELAY_ENDPOINT' must name the backend"),
        ({"CHAOSAGENKIT_RELAY_MIDDLEWARE": "[{"}, "'CHAOSAGENKIT_RELAY_MIDDLEWARE' must be a JSON list"),
        ({"CHAOSAGENKIT_RELAY_MIDDLEWARE": '[{"type": "nope"}]'}, "'middleware[0].type' must be one of"),
        (
            {"CHAOSAGENKIT_RELAY_TIMEOUT_MS": "-3"},
            "'CHAOSAGENKIT_RELAY_TIMEOUT_MS' must be a positive integer",
        ),
        (
            {"CHAOSAGENKIT_RELAY_CONNECTIONS": "0"},
            "'CHAOSAGENKIT_RELAY_CONNECTIONS' must be a positive integer",
        ),
    ],
)
def test_bad_relay_environment_is_a_configuration_error(monkeypatch, env, message):
    for name in ("ENDPOINT", "MIDDLEWARE", "TIMEOUT_MS", "CONNECTIONS"):
        monkeypatch.delenv(f"CHAOSAGENKIT_RELAY_{name}", raising=False)
    if env:
        monkeypatch.setenv("CHAOSAGENKIT_RELAY_ENDPOINT", "tcp://127.0.0.1:9")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as raised:
        relay()
    assert message in str(raised.value)
