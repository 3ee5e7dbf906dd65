"""Every experiment that holds can also deviate: run it against a weakened setup.

A hypothesis or expectation that cannot deviate proves nothing. For each
experiment (and transport) whose recorded verdict is "holds", the setup is
weakened through the experiment's own configuration, exactly as a user
would with --var: the middleware under test removed, a fault that does not
reach the traffic, or a target that breaks after the steady state. Each
must then deviate. Experiments deviating on a transport already show there
that their checks can fail; the weakened runs cover the other one.
"""

from __future__ import annotations

import json

import pytest

from chaosagenkit.suite import RunPlan
from tests.experiments.conftest import EXPERIMENTS, assert_nothing_left_behind, run_plan

BROKEN_TARGET = {"target_agent": "tests.experiments.weak_targets:echo_then_fail"}

WEAKENED = {
    # experiment: (transport, what is weakened, configuration overrides)
    "demo": ("tcp", "a stronger fault than 'about half'", {"failure_rate": 0.9}),
    "connection_timeout": (
        "http",
        "no timeout middleware",
        {"client_middleware": [], "client_timeout_ms": 1000},
    ),
    "connection_drop": ("http", "no retry middleware", {"client_middleware": []}),
    "network_latency": ("http", "no timeout middleware", {"client_middleware": []}),
    "packet_loss": ("tcp", "a loss that never happens", {"loss_rate": 0.0}),
    "network_partition": ("http", "no circuit breaker", {"client_middleware": []}),
    "connection_refused": ("tcp", "a target broken after the steady state", BROKEN_TARGET),
    "server_crash": (
        "http",
        "a crash that never comes",
        {"crash_when": "after_requests", "crash_after_requests": 1000},
    ),
    "slow_response": ("http", "no timeout middleware", {"client_middleware": []}),
    "partial_failures": ("tcp", "no retry middleware", {"client_middleware": []}),
    "memory_exhaustion": ("http", "a target broken after the steady state", BROKEN_TARGET),
    "cpu_pressure": ("tcp", "a target broken after the steady state", BROKEN_TARGET),
    "circuit_breaker": ("tcp", "no circuit breaker", {"client_middleware": []}),
    "retry": ("tcp", "no retry middleware", {"client_middleware": []}),
    "timeout": ("http", "no timeout middleware", {"client_middleware": []}),
    "rate_limiter": ("tcp", "no rate limiter", {"client_middleware": []}),
    "cache_fallback_hardened": ("http", "no cache", {"client_middleware": []}),
    "middleware_composition_hardened": (
        "http",
        "retry that retries an open circuit",
        {
            "client_middleware": [
                {"type": "retry", "max_retries": 3, "initial_delay": 0.05},
                {"type": "circuit_breaker", "failure_threshold": 5, "recovery_timeout_ms": 1000},
                {"type": "timeout", "timeout_ms": 200},
            ]
        },
    ),
    "two_tier_circuit_breaker": ("tcp", "no circuit breaker inside the relay", {"relay_middleware": "[]"}),
    "llm_malformed_tool_call": ("tcp", "no retry middleware", {"client_middleware": []}),
}


def holding_experiments() -> list[str]:
    names = []
    for path in sorted(EXPERIMENTS.glob("*.json")):
        extension = next(e for e in json.loads(path.read_text())["extensions"] if e["name"] == "chaosagenkit")
        if extension.get("group") == "topology":  # per expectation: test_topology_experiments_can_fail.py
            continue
        # Kernel experiments prove each expectation can fail in tests/experiments/test_kernel_experiments.py.
        if "holds" in extension["verdicts"].values() and "kernel" not in extension.get("requires", []):
            names.append(path.stem)
    return names


def test_every_holding_experiment_has_a_weakened_setup():
    assert sorted(WEAKENED) == holding_experiments()


@pytest.mark.chaos
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(WEAKENED))
def test_weakened_setup_makes_the_experiment_deviate(name, tmp_path):
    transport, weakened, overrides = WEAKENED[name]
    result, journal = run_plan(RunPlan(EXPERIMENTS / f"{name}.json", transport), tmp_path, **overrides)
    assert result.verdict == "deviates", (
        f"{name} [{transport}] with {weakened}: {result.verdict} {result.detail}"
    )
    assert_nothing_left_behind(journal)
