"""Each middleware probe against real agenkit middleware over a real ``chaosagenkit serve`` process.

One chaos host (echo target) serves the whole module; each test declares its
own client (so its own agenkit decorators) and leaves the host without faults.
"""

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
    wait_for,
)

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_middleware, pytest.mark.slow]


def test_circuit_opens_under_total_failure_fails_fast_and_closes_after_recovery(target):
    actions.create_client(
        "caller",
        server="target",
        middleware=[{"type": "circuit_breaker", "failure_threshold": 3, "recovery_timeout_ms": 300,
                     "success_threshold": 2}],
    )  # fmt: skip
    assert probes.circuit_state("caller") == "closed"
    inject(target, {"kind": "failure_rate", "rate": 1.0})

    summary = probes.send_requests("caller", count=10)
    # three real failures open the breaker; the other seven never reach the host
    assert summary["errors"] == {"RemoteExecutionError": 3, "CircuitBreakerError": 7}
    assert probes.circuit_state("caller") == "open"
    metrics = probes.circuit_metrics("caller")
    assert metrics["failed_requests"] == 3
    assert metrics["rejected_requests"] == 7
    assert metrics["state_changes"] == {"closed->open": 1}
    assert probes.error_count("caller", "CircuitBreakerError") == 7
    assert probes.rejected_fast("caller", max_ms=250.0, min_rejections=7) is True
    assert probes.success_rate("caller") == 0.0

    clear(target)
    recovered_after = probes.time_to_recover("caller", after_event="clear", consecutive=3, timeout_s=20.0)
    assert recovered_after >= 0.0
    assert probes.circuit_state("caller") == "closed"
    changes = probes.circuit_metrics("caller")["state_changes"]
    assert changes["open->half_open"] >= 1 and changes["half_open->closed"] == 1


def test_retry_count_under_fail_first_n(target):
    actions.create_client(
        "caller", server="target",
        middleware=[{"type": "retry", "max_retries": 4, "initial_delay": 0.01, "max_delay": 0.05}],
    )  # fmt: skip
    inject(target, {"kind": "fail_first", "count": 2})
    summary = probes.send_requests("caller", count=5)
    assert summary["ok"] == 5 and summary["errors"] == {}
    assert probes.retry_count("caller") == 2
    assert probes.retry_metrics("caller") == {
        "total_attempts": 7,
        "successful_first_attempt": 4,
        "successful_on_retry": 1,
        "failed_after_retries": 0,
        "total_retries": 2,
    }


def test_retry_gives_up_after_max_retries_and_says_so(target):
    actions.create_client(
        "caller", server="target",
        middleware=[{"type": "retry", "max_retries": 3, "initial_delay": 0.01, "max_delay": 0.02}],
    )  # fmt: skip
    inject(target, {"kind": "fail_first", "count": 3})
    summary = probes.send_requests("caller", count=2)
    assert summary["errors"] == {"MaxRetriesExceededError": 1}
    assert probes.error_count("caller", "RemoteExecutionError", in_chain=True) == 1
    assert probes.retry_metrics("caller")["failed_after_retries"] == 1
    assert probes.retry_count("caller") == 2  # 3 attempts = 2 retries


def test_no_retry_on_names_errors_agenkit_must_not_retry(target):
    actions.create_client(
        "caller", server="target",
        middleware=[{"type": "retry", "max_retries": 4, "initial_delay": 0.01,
                     "no_retry_on": ["RemoteExecutionError"]}],
    )  # fmt: skip
    inject(target, {"kind": "fail_first", "count": 2})
    summary = probes.send_requests("caller", count=3)
    assert probes.retry_count("caller") == 0
    # agenkit re-raises a non-retryable error as a bare Exception("Non-retryable error: ...")
    assert summary["errors"] == {"Exception": 2}
    assert probes.error_count("caller", "RemoteExecutionError", in_chain=True) == 2


def test_latency_percentiles_under_injected_delay(target):
    actions.create_client("caller", server="target")
    inject(target, {"kind": "delay", "delay_ms": 200})
    delayed = probes.send_requests("caller", count=6)
    assert delayed["ok"] == 6
    assert delayed["latency_ms"]["p50"] >= 200.0
    assert probes.latency("caller", percentile=5) >= 200.0
    clear(target)
    fast = probes.send_requests("caller", count=6)
    assert fast["latency_ms"]["p95"] < 200.0
    # over both batches: half the requests were delayed
    assert probes.latency("caller", percentile=25) < 200.0 <= probes.latency("caller", percentile=75)


def test_timeout_middleware_times_out_delayed_requests(target):
    actions.create_client("caller", server="target", middleware=[{"type": "timeout", "timeout_ms": 100}])
    inject(target, {"kind": "delay", "delay_ms": 400})
    summary = probes.send_requests("caller", count=3)
    assert summary["errors"] == {"TimeoutError": 3}
    metrics = probes.timeout_metrics("caller")
    assert metrics["timed_out_requests"] == 3 and metrics["successful_requests"] == 0


def test_rate_limiter_under_a_burst_rejects_what_cannot_wait(target):
    actions.create_client(
        "caller", server="target", connections=10,
        middleware=[{"type": "rate_limiter", "rate": 10, "capacity": 5, "max_wait_ms": 100}],
    )  # fmt: skip
    summary = probes.send_requests("caller", count=30, concurrency=30)
    metrics = probes.rate_limiter_metrics("caller")
    assert metrics["total_requests"] == 30
    assert metrics["allowed_requests"] + metrics["rejected_requests"] == 30
    assert metrics["allowed_requests"] >= 5 and metrics["rejected_requests"] >= 15
    # our outcomes and agenkit's own count agree
    assert summary["errors"] == {"RateLimitError": metrics["rejected_requests"]}
    assert summary["ok"] == metrics["allowed_requests"]


def test_rate_limiter_without_max_wait_queues_a_burst_and_drops_nothing(target):
    actions.create_client(
        "caller", server="target", connections=10,
        middleware=[{"type": "rate_limiter", "rate": 100, "capacity": 5}],
    )  # fmt: skip
    summary = probes.send_requests("caller", count=30, concurrency=30)
    assert summary["ok"] == 30 and summary["errors"] == {}
    metrics = probes.rate_limiter_metrics("caller")
    assert metrics["allowed_requests"] == 30 and metrics["rejected_requests"] == 0
    assert metrics["total_wait_time"] > 0.0


def test_cache_answers_while_the_target_fails(target):
    actions.create_client(
        "caller", server="target", middleware=[{"type": "caching", "max_cache_size": 10, "default_ttl": 60}]
    )
    assert probes.send_requests("caller", count=3, distinct=3)["ok"] == 3  # warm: 3 misses
    inject(target, {"kind": "failure_rate", "rate": 1.0})
    cached = probes.send_requests("caller", count=9, distinct=3)
    assert cached["ok"] == 9 and cached["wrong_answers"] == 0
    metrics = probes.cache_metrics("caller")
    assert (metrics["cache_hits"], metrics["cache_misses"], metrics["current_size"]) == (9, 3, 3)
    # the target really is failing: requests the cache has not seen fail
    assert probes.send_requests("caller", count=2)["errors"] == {"RemoteExecutionError": 2}


def test_composed_stack_retries_until_the_circuit_opens_then_fails_fast(target):
    actions.create_client(
        "caller", server="target",
        middleware=[
            {"type": "retry", "max_retries": 3, "initial_delay": 0.01, "max_delay": 0.02,
             "no_retry_on": ["CircuitBreakerError"]},
            {"type": "circuit_breaker", "failure_threshold": 4, "recovery_timeout_ms": 60000},
            {"type": "timeout", "timeout_ms": 1000},
        ],
    )  # fmt: skip
    inject(target, {"kind": "failure_rate", "rate": 1.0})
    summary = probes.send_requests("caller", count=4)
    breaker = probes.circuit_metrics("caller")
    assert breaker["failed_requests"] == 4  # request 1: 3 attempts; request 2: 1 attempt opens it
    assert probes.circuit_state("caller") == "open"
    # request 2's second attempt and every later one is rejected and, being CircuitBreakerError, not retried
    assert summary["errors"] == {"MaxRetriesExceededError": 1, "Exception": 3}
    assert probes.error_count("caller", "CircuitBreakerError", in_chain=True) == 3
    assert probes.retry_count("caller") == 3


def test_background_traffic_sees_the_fault_window_and_recovery(target):
    actions.create_client("caller", server="target")
    started = actions.start_traffic("caller", rate_per_s=50, duration_s=60, concurrency=4)
    assert started["mode"] == "open"
    wait_for(lambda: probes.outcomes_summary("caller")["ok"] >= 5, what="traffic before the fault")
    inject(target, {"kind": "failure_rate", "rate": 1.0})
    wait_for(
        lambda: probes.error_count("caller", "RemoteExecutionError") >= 5, what="errors during the fault"
    )
    clear(target)
    recovered_after = probes.time_to_recover("caller", consecutive=5, timeout_s=20.0)
    assert recovered_after >= 0.0
    running = probes.traffic_summary("caller")
    assert running["running"] is True
    summary = actions.stop_traffic("caller")
    assert summary["ended_by"] == "stop" and summary["running"] is False
    assert summary["sent"] >= 15 and summary["errors"]["RemoteExecutionError"] >= 5
    assert summary["ok"] >= 10 and summary["wrong_answers"] == 0
    assert 0.0 < summary["success_ratio"] < 1.0


def test_retry_backoff_times_each_pause_between_attempts(target):
    actions.create_client(
        "caller", server="target",
        middleware=[{"type": "retry", "max_retries": 3, "initial_delay": 0.05, "multiplier": 2.0}],
    )  # fmt: skip
    probes.send_requests("caller", count=2)  # no retry: nothing to time
    assert probes.retry_backoff("caller") == {
        "attempts": 2, "requests_retried": 0, "gaps_ms": [], "min_growth": None,
    }  # fmt: skip
    inject(target, {"kind": "fail_first", "count": 2})
    probes.send_requests("caller", count=1)
    backoff = probes.retry_backoff("caller")
    assert backoff["attempts"] == 3 and backoff["requests_retried"] == 1
    first, second = backoff["gaps_ms"][0]
    assert first >= 50.0 and second >= 100.0  # asyncio.sleep never ends early
    assert backoff["min_growth"] == round(second / first, 3)
    assert probes.retry_backoff("caller", last_batch=False)["attempts"] == 5


def test_retry_backoff_needs_a_retry_middleware(target):
    actions.create_client("caller", server="target")
    probes.send_requests("caller", count=1)
    with pytest.raises(
        ActivityFailed, match=r"^retry_backoff: 'client' client 'caller' has no retry middleware"
    ):
        probes.retry_backoff("caller")
