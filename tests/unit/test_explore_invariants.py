"""The invariants, table-driven on hand-made histories: each case violates exactly one, one violates none."""

from __future__ import annotations

import pytest

from chaosagenkit.explore.history import Attempt, BreakerSample, FaultWindow, History, HostSample, Request
from chaosagenkit.explore.invariants import (
    INVARIANTS,
    TOLERANCES,
    caller_deadline_ms,
    check_all,
    half_open_limit,
    recovery_s,
)

T0 = 1_000_000.0
STACK = (
    {"type": "retry", "max_retries": 3, "initial_delay": 0.05},
    {"type": "circuit_breaker", "failure_threshold": 5, "recovery_timeout_ms": 500},
    {"type": "timeout", "timeout_ms": 300},
)
# deadline: 3 x 300 + 50 + 100 = 1050 ms; recovery: 0.5 + 1.05 + 1.0 = 2.55 s
HOST = HostSample(T0, pid=7, fds=12, connections=1, tasks=4)


def call(n: int, at: float, latency_ms: float = 5.0, **kw) -> Request:
    return Request(id=f"explorer:{n}", client="explorer", sent=T0 + at, latency_ms=latency_ms, **kw)


def failed(
    n: int,
    at: float,
    error: str = "RemoteExecutionError",
    module: str = "agenkit.adapters.python.errors",
    **kw,
):
    return call(n, at, error=error, error_module=module, chain=(error,), message="boom", **kw)


def stream(start: float, end: float, step: float = 0.05, first: int = 0) -> list[Request]:
    """Healthy calls every ``step`` s from ``start`` to ``end`` (s after T0)."""
    calls, n, t = [], first, start
    while t < end:
        calls.append(call(n, t))
        n, t = n + 1, round(t + step, 3)
    return calls


def history(requests=(), faults=(), breakers=(), before=HOST, after=HOST, stack=STACK, ended=10.0) -> History:
    return History(
        started=T0,
        ended=T0 + ended,
        requests=tuple(sorted(requests, key=lambda r: r.sent)),
        faults=tuple(faults),
        breakers=tuple(breakers),
        host_before=before,
        host_after=after,
        stack=stack,
        remote_timeout_ms=2000.0,
    )


FAULT = FaultWindow("failure_rate", "target", T0 + 1.0, T0 + 2.0)  # errors allowed until 2.0 + 2.55


def breaker(t: float, state: str, admitted: int, **changes: int) -> BreakerSample:
    return BreakerSample(
        T0 + t,
        "explorer",
        state,
        admitted,
        tuple(sorted((k.replace("_to_", "->"), v) for k, v in changes.items())),
    )


# Each case: (the invariant it must violate, a history violating only that one)
CASES = {
    "answers_belong_to_requests": history(
        [*stream(0, 0.9), call(50, 0.95, wrong=True, answer_id="explorer:49")]
    ),
    "requests_end_by_deadline": history([*stream(0, 0.9), call(50, 0.95, latency_ms=1400.0)]),
    "recovers_after_faults": history(
        [*stream(0, 0.9), *stream(2.0, 4.5, first=100), failed(200, 5.0)], faults=[FAULT]
    ),
    "no_errors_without_faults": history([*stream(0, 0.9), failed(50, 0.5)]),
    "errors_are_agenkit_types": history(
        [*stream(0, 0.9), failed(50, 1.5, error="Exception", module="builtins"), *stream(4.6, 5.0, first=60)],
        faults=[FAULT],
    ),
    "open_circuit_fails_fast": history(
        [
            *stream(0, 0.9),
            failed(
                50,
                1.5,
                error="MaxRetriesExceededError",
                module="agenkit.middleware.retry",
                latency_ms=152.0,
                attempts=(
                    Attempt(("CircuitBreakerError",), True),
                    Attempt(("CircuitBreakerError",), True),
                    Attempt(("CircuitBreakerError",), False),
                ),
            ),
            *stream(4.6, 5.0, first=60),
        ],
        faults=[FAULT],
    ),
    "half_open_admits_limited_trials": history(
        [*stream(0, 0.9), *stream(4.6, 5.0, first=60)],
        faults=[FAULT],
        breakers=[
            breaker(0.0, "closed", 0),
            breaker(1.2, "open", 5, closed_to_open=1),
            breaker(1.8, "half_open", 6, closed_to_open=1, open_to_half_open=1),
            breaker(1.8001, "half_open", 9, closed_to_open=1, open_to_half_open=1),
            breaker(1.9, "open", 9, closed_to_open=1, open_to_half_open=1, half_open_to_open=1),
        ],
    ),
    "non_transient_errors_not_retried": history(
        [
            *stream(0, 0.9),
            call(50, 1.5, attempts=(Attempt(("MalformedPayloadError",), True),)),
            *stream(4.6, 5.0, first=60),
        ],
        faults=[FAULT],
    ),
    "host_leaks_nothing": history(
        stream(0, 0.9), after=HostSample(T0 + 9, pid=7, fds=12, connections=1, tasks=9)
    ),
}


@pytest.mark.parametrize("invariant", sorted(CASES))
def test_each_case_violates_exactly_its_invariant(invariant: str) -> None:
    verdicts = check_all(CASES[invariant])
    violated = sorted(name for name, verdict in verdicts.items() if not verdict.holds)
    assert violated == [invariant]
    verdict = verdicts[invariant]
    assert verdict.count >= 1 and verdict.violations and verdict.checked >= 1 and verdict.kinds
    assert all(not v.kinds for v in verdicts.values() if v.holds)


def test_kinds_name_what_went_wrong() -> None:
    kinds = {name: check_all(case)[name].kinds for name, case in CASES.items()}
    assert kinds["recovers_after_faults"] == ("RemoteExecutionError",)
    assert kinds["errors_are_agenkit_types"] == ("builtins.Exception",)
    assert kinds["host_leaks_nothing"] == ("tasks",)
    assert kinds["requests_end_by_deadline"] == ("late:ok",)


def test_every_invariant_has_a_case() -> None:
    assert sorted(CASES) == sorted(INVARIANTS)


def test_a_healthy_run_with_a_handled_fault_violates_nothing() -> None:
    calls = [
        *stream(0, 0.95),
        failed(50, 1.2),  # during the fault
        call(51, 1.5, attempts=(Attempt(("RemoteExecutionError",), True),)),  # answered on a retry
        *stream(2.5, 5.0, first=60),  # within the grace, then after the recovery time
    ]
    verdicts = check_all(history(calls, faults=[FAULT]))
    assert all(v.holds for v in verdicts.values()), {
        n: v.violations for n, v in verdicts.items() if not v.holds
    }
    assert verdicts["recovers_after_faults"].checked > 0
    assert verdicts["no_errors_without_faults"].checked > 0


def test_deadline_and_recovery_follow_the_stack() -> None:
    assert caller_deadline_ms(STACK, 2000) == pytest.approx(3 * 300 + 50 + 100)
    assert caller_deadline_ms((), 2000) == 2000
    assert caller_deadline_ms(({"type": "timeout", "timeout_ms": 300},), 2000) == 300
    assert caller_deadline_ms(({"type": "rate_limiter", "max_wait_ms": None},), 2000) == float("inf")
    capped = ({"type": "retry", "max_retries": 4, "initial_delay": 1.0, "multiplier": 10, "max_delay": 2.0},)
    assert caller_deadline_ms(capped, 100) == pytest.approx(4 * 100 + (1 + 2 + 2) * 1000)
    assert recovery_s(STACK, 2000) == pytest.approx(0.5 + 1.05 + TOLERANCES.recovery_slack_s)
    assert half_open_limit(STACK) == 2
    assert half_open_limit(()) is None


def test_half_open_counts_only_what_is_certain() -> None:
    # an interval that contains a transition out of half-open is ambiguous: nothing counted there
    ambiguous = history(
        faults=[FAULT],
        breakers=[
            breaker(1.2, "open", 5, closed_to_open=1),
            breaker(1.8, "half_open", 6, closed_to_open=1, open_to_half_open=1),
            breaker(1.9, "closed", 20, closed_to_open=1, open_to_half_open=1, half_open_to_closed=1),
        ],
        requests=stream(0, 0.9),
    )
    verdict = check_all(ambiguous)["half_open_admits_limited_trials"]
    assert verdict.holds and verdict.checked == 1


def test_not_checked_says_why() -> None:
    verdicts = check_all(history(stream(0, 0.5), before=None, stack=()))
    assert verdicts["recovers_after_faults"].not_checked == "no fault was injected"
    assert verdicts["half_open_admits_limited_trials"].not_checked == "the callers have no circuit breaker"
    assert "not measured" in verdicts["host_leaks_nothing"].not_checked
    assert verdicts["errors_are_agenkit_types"].not_checked == "no call failed"
    restarted = check_all(history(stream(0, 0.5), after=HostSample(T0 + 9, pid=8, fds=1, connections=0)))
    assert restarted["host_leaks_nothing"].not_checked == "the host was restarted during the run"


def test_builtin_timeout_error_is_documented_by_agenkit() -> None:
    verdict = check_all(history([failed(1, 1.5, error="TimeoutError", module="builtins")], faults=[FAULT]))
    assert verdict["errors_are_agenkit_types"].holds


def test_first_violation_time_is_when_the_violating_call_ended() -> None:
    verdict = check_all(CASES["answers_belong_to_requests"])["answers_belong_to_requests"]
    assert verdict.first_at_s == pytest.approx(0.955)
    assert verdict.to_json()["first_at_s"] == pytest.approx(0.955)


def test_an_open_circuit_is_not_what_went_wrong_when_something_else_did() -> None:
    breaker_open = failed(201, 5.2, error="MaxRetriesExceededError", module="agenkit.middleware.retry")
    breaker_open = Request(
        **{**breaker_open.__dict__, "chain": ("MaxRetriesExceededError", "CircuitBreakerError")}
    )
    cut = failed(202, 5.4, error="ConnectionError")
    calls = [*stream(0, 0.9), *stream(2.0, 4.5, first=100), breaker_open]
    only_open = check_all(history(calls, faults=[FAULT]))["recovers_after_faults"]
    assert only_open.kinds == ("CircuitBreakerError",)
    both = check_all(history([*calls, cut], faults=[FAULT]))["recovers_after_faults"]
    assert both.kinds == ("ConnectionError",)
