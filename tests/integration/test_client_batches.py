"""Probes over the last batch, unexpected errors and circuit transitions, over a real chaos host."""

from __future__ import annotations

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosagenkit.client import actions, probes
from tests.integration.test_client_support import (
    clean_clients,
    clear,
    echo_host,
    inject,
    target,
)

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_middleware]


def test_last_batch_probes_look_only_at_the_last_send_requests(target):
    actions.create_client("caller", server="target")
    with pytest.raises(ActivityFailed, match=r"last_batch.*has not sent a batch"):
        probes.latency("caller", 95, last_batch=True)
    inject(target, {"kind": "failure_rate", "rate": 1.0})
    probes.send_requests("caller", count=4)
    clear(target)
    probes.send_requests("caller", count=3)
    assert probes.success_rate("caller") == pytest.approx(3 / 7, abs=1e-3)
    assert probes.success_rate("caller", last_batch=True) == 1.0
    assert probes.outcomes_summary("caller", last_batch=True)["sent"] == 3
    assert probes.error_count("caller", "RemoteExecutionError", last_batch=True) == 0
    assert probes.error_count("caller", "RemoteExecutionError") == 4
    assert probes.wrong_answers("caller", last_batch=True) == 0
    assert probes.latency("caller", 100, last_batch=True, outcome="error") is None
    with pytest.raises(ActivityFailed, match="'window_s' must be 0 with last_batch"):
        probes.success_rate("caller", window_s=5.0, last_batch=True)


def test_unexpected_errors_counts_failures_outside_the_allowed_kinds(target):
    actions.create_client("caller", server="target")
    inject(target, {"kind": "failure_rate", "rate": 1.0})
    probes.send_requests("caller", count=3)
    assert probes.unexpected_errors("caller", ["RemoteExecutionError"], last_batch=True) == 0
    assert probes.unexpected_errors("caller", ["ConnectionError"], last_batch=True) == 3
    with pytest.raises(ActivityFailed, match="'allowed' must be a list of error class names"):
        probes.unexpected_errors("caller", "RemoteExecutionError")


def test_circuit_transitions_reads_agenkit_state_changes(target):
    actions.create_client(
        "caller", server="target",
        middleware=[{"type": "circuit_breaker", "failure_threshold": 2, "recovery_timeout_ms": 60000}],
    )  # fmt: skip
    assert probes.circuit_transitions("caller") == 0
    inject(target, {"kind": "failure_rate", "rate": 1.0})
    probes.send_requests("caller", count=3)
    assert probes.circuit_transitions("caller", transition="closed->open") == 1
    assert probes.circuit_transitions("caller", transition="open->half_open") == 0
    with pytest.raises(ActivityFailed, match="'transition' must be one of"):
        probes.circuit_transitions("caller", transition="open->closed")
