"""The chaos host's pure fault logic: specs, decisions, determinism, expiry. No sockets."""

from __future__ import annotations

import dataclasses

import pytest

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.faults.service import (
    FAULT_KINDS,
    NO_FAULT,
    CpuPressure,
    Crash,
    Delay,
    FailEvery,
    FailFirst,
    FailureRate,
    FaultPolicy,
    LargeResponse,
    MemoryPressure,
    parse_fault,
    parse_faults,
)
from chaosagenkit.limits import DEFAULT_TTL_S, MAX_TTL_S

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_service]

VALID = [
    ({"kind": "failure_rate", "rate": 0.5}, FailureRate(rate=0.5)),
    (
        {"kind": "failure_rate", "rate": 1, "error": "timeout", "duration_s": 3},
        FailureRate(rate=1, error="timeout", duration_s=3),
    ),
    ({"kind": "fail_first", "count": 3, "error": "connection"}, FailFirst(count=3, error="connection")),
    ({"kind": "fail_every", "nth": 2}, FailEvery(nth=2)),
    ({"kind": "delay", "delay_ms": 0}, Delay(delay_ms=0)),
    (
        {"kind": "delay", "delay_ms": 10, "max_delay_ms": 20, "rate": 0.5},
        Delay(delay_ms=10, max_delay_ms=20, rate=0.5),
    ),
    ({"kind": "delay", "delay_ms": 10, "jitter_ms": 15}, Delay(delay_ms=10, jitter_ms=15)),
    ({"kind": "crash"}, Crash(when="now")),
    ({"kind": "crash", "when": "next_request"}, Crash(when="next_request")),
    (
        {"kind": "crash", "when": "after_requests", "after_requests": 4},
        Crash(when="after_requests", after_requests=4),
    ),
    ({"kind": "large_response", "size_bytes": 1024}, LargeResponse(size_bytes=1024)),
    ({"kind": "memory_pressure", "mib": 64, "duration_s": 0.5}, MemoryPressure(mib=64, duration_s=0.5)),
    ({"kind": "cpu_pressure", "threads": 2, "duration_s": 1}, CpuPressure(threads=2, duration_s=1)),
    ({"kind": "cpu_pressure", "duration_s": 1}, CpuPressure(threads=1, duration_s=1)),
    ({"kind": "cpu_pressure", "threads": 2}, CpuPressure(threads=2)),
]


def with_ttl(spec, ttl_s: float = DEFAULT_TTL_S):
    """``spec`` as parsed from JSON: a fault given without a TTL gets the default one."""
    return spec if spec.duration_s is not None else dataclasses.replace(spec, duration_s=ttl_s)


@pytest.mark.parametrize("data,expected", VALID)
def test_valid_specs_parse(data, expected):
    assert parse_fault(data) == with_ttl(expected)


def test_every_fault_from_json_has_a_ttl_the_default_unless_given():
    assert parse_fault({"kind": "fail_every", "nth": 2}).duration_s == DEFAULT_TTL_S == 300
    assert parse_fault({"kind": "fail_every", "nth": 2, "duration_s": None}).duration_s == DEFAULT_TTL_S
    assert parse_fault({"kind": "fail_every", "nth": 2}, default_ttl_s=7).duration_s == 7
    assert [s.duration_s for s in parse_faults([{"kind": "crash"}], default_ttl_s=9)] == [9]
    assert parse_fault({"kind": "fail_every", "nth": 2, "duration_s": MAX_TTL_S}).duration_s == 86_400


INVALID = [
    # (input, field named, words in the message)
    ({"kind": "failure_rate", "rate": 1.5}, "rate", "between 0 and 1, got 1.5"),
    ({"kind": "failure_rate", "rate": -0.1}, "rate", "between 0 and 1"),
    ({"kind": "failure_rate", "rate": "half"}, "rate", "a number, got 'half'"),
    ({"kind": "failure_rate", "rate": True}, "rate", "a number, got True"),
    ({"kind": "failure_rate", "rate": None}, "rate", "a number, got None"),
    ({"kind": "failure_rate"}, "rate", "is missing"),
    (
        {"kind": "failure_rate", "rate": 0.5, "error": "boom"},
        "error",
        "one of exception, connection, timeout",
    ),
    ({"kind": "failure_rate", "rate": 0.5, "ratio": 1}, "ratio", "is not a field of a failure_rate fault"),
    ({"kind": "failure_rate", "rate": 0.5, "duration_s": 0}, "duration_s", "> 0"),
    ({"kind": "failure_rate", "rate": 0.5, "duration_s": -1}, "duration_s", "> 0"),
    (
        {"kind": "failure_rate", "rate": 0.5, "duration_s": 10**400},
        "duration_s",
        "> 0 and <= 86400, got an integer of 401 digits",
    ),
    (
        {"kind": "failure_rate", "rate": 0.5, "duration_s": 86_401},
        "duration_s",
        "must be > 0 and <= 86400, got 86401",
    ),
    ({"kind": "failure_rate", "rate": 0.5, "duration_s": "5"}, "duration_s", "must be a number, got '5'"),
    ({"kind": "fail_first", "count": 0}, "count", ">= 1, got 0"),
    ({"kind": "fail_first", "count": 1.5}, "count", "an integer, got 1.5"),
    ({"kind": "fail_first"}, "count", "is missing"),
    ({"kind": "fail_every", "nth": -2}, "nth", ">= 1"),
    ({"kind": "delay", "delay_ms": -5}, "delay_ms", "must be >= 0, got -5"),
    ({"kind": "delay"}, "delay_ms", "is missing"),
    ({"kind": "delay", "delay_ms": 10, "max_delay_ms": 5}, "max_delay_ms", ">= delay_ms"),
    ({"kind": "delay", "delay_ms": 10, "jitter_ms": -1}, "jitter_ms", ">= 0"),
    (
        {"kind": "delay", "delay_ms": 10, "jitter_ms": 1, "max_delay_ms": 20},
        "jitter_ms",
        "cannot be combined",
    ),
    ({"kind": "delay", "delay_ms": 10, "rate": 2}, "rate", "between 0 and 1"),
    ({"kind": "delay", "delay_ms": float("nan")}, "delay_ms", "a number"),
    ({"kind": "crash", "when": "later"}, "when", "one of now, next_request, after_requests"),
    ({"kind": "crash", "when": "after_requests"}, "after_requests", "is missing"),
    ({"kind": "crash", "when": "after_requests", "after_requests": 0}, "after_requests", ">= 1"),
    ({"kind": "crash", "when": "now", "after_requests": 3}, "after_requests", "only applies"),
    ({"kind": "large_response", "size_bytes": 0}, "size_bytes", ">= 1"),
    ({"kind": "large_response", "size_bytes": 17 * 1024 * 1024}, "size_bytes", "between 1 and 16777216"),
    ({"kind": "memory_pressure", "mib": 0}, "mib", ">= 1"),
    ({"kind": "memory_pressure"}, "mib", "is missing"),
    ({"kind": "cpu_pressure", "threads": 0, "duration_s": 1}, "threads", ">= 1"),
    ({"kind": "cpu_pressure", "threads": 65, "duration_s": 1}, "threads", "between 1 and 64"),
    ({"kind": "teleport"}, "kind", "one of failure_rate"),
    ({"kind": 3}, "kind", "one of failure_rate"),
    ({"rate": 0.5}, "kind", "is missing"),
    ("failure_rate", "fault", "a JSON object"),
    ([], "fault", "a JSON object"),
]


@pytest.mark.parametrize("data,field,words", INVALID)
def test_invalid_specs_name_the_field(data, field, words):
    with pytest.raises(ConfigurationError) as caught:
        parse_fault(data)
    assert caught.value.field == field
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"'{field}' ")


def test_every_kind_has_a_valid_and_an_invalid_case():
    valid_kinds = {d["kind"] for d, _ in VALID}
    invalid_kinds = {d.get("kind") for d, _, _ in INVALID if isinstance(d, dict)}
    assert set(FAULT_KINDS) <= valid_kinds
    assert set(FAULT_KINDS) <= invalid_kinds


def test_a_list_is_all_or_nothing_and_the_error_names_the_index():
    specs = parse_faults([{"kind": "fail_every", "nth": 2}, {"kind": "delay", "delay_ms": 1}])
    assert [s.kind for s in specs] == ["fail_every", "delay"]
    with pytest.raises(ConfigurationError) as caught:
        parse_faults([{"kind": "fail_every", "nth": 2}, {"kind": "delay", "delay_ms": -1}])
    assert caught.value.field == "[1].delay_ms"
    with pytest.raises(ConfigurationError) as caught:
        parse_faults([])
    assert caught.value.field == "faults"


def test_spec_round_trips_through_its_json():
    for _, spec in VALID:
        assert parse_fault(spec.to_json()) == with_ttl(spec)


# -- decisions ---------------------------------------------------------------


def decisions(policy: FaultPolicy, n: int, now: float = 0.0) -> list:
    return [policy.decide(now) for _ in range(n)]


def test_no_fault_is_the_shared_clean_decision():
    policy = FaultPolicy(seed=1)
    assert decisions(policy, 3) == [NO_FAULT] * 3
    assert not (NO_FAULT.crash or NO_FAULT.error or NO_FAULT.delay_ms or NO_FAULT.pad_bytes)
    assert policy.stats()["requests"] == 3


@pytest.mark.parametrize("error", ["exception", "connection", "timeout"])
def test_fail_first_fails_exactly_n_counted_from_when_added(error):
    policy = FaultPolicy(seed=1)
    decisions(policy, 5)  # requests before the fault do not count
    fault = policy.add(FailFirst(count=3, error=error), now=0)
    errors = [d.error for d in decisions(policy, 6)]
    assert errors == [error] * 3 + [None] * 3
    assert fault.injected == 3 and fault.seen == 6
    assert policy.stats()["injected"] == {"fail_first": 3}


def test_fail_every_fails_every_nth_counted_from_when_added():
    policy = FaultPolicy(seed=1)
    decisions(policy, 2)
    policy.add(FailEvery(nth=3), now=0)
    failed = [i for i, d in enumerate(decisions(policy, 10), start=1) if d.error]
    assert failed == [3, 6, 9]


def test_failure_rate_extremes_and_ratio():
    always = FaultPolicy(seed=5)
    always.add(FailureRate(rate=1.0), now=0)
    assert all(d.error == "exception" for d in decisions(always, 50))
    never = FaultPolicy(seed=5)
    never.add(FailureRate(rate=0.0), now=0)
    assert not any(d.error for d in decisions(never, 50))
    half = FaultPolicy(seed=5)
    half.add(FailureRate(rate=0.5), now=0)
    ratio = sum(1 for d in decisions(half, 2000) if d.error) / 2000
    assert 0.45 < ratio < 0.55


def test_same_seed_same_sequence_gives_same_decisions_and_other_seed_differs():
    def run(seed: int) -> list:
        policy = FaultPolicy(seed=seed)
        policy.add(FailureRate(rate=0.3), now=0)
        policy.add(Delay(delay_ms=10, max_delay_ms=50, rate=0.5), now=0)
        policy.add(LargeResponse(size_bytes=100, rate=0.2), now=0)
        return decisions(policy, 200)

    assert run(42) == run(42)
    assert run(42) != run(43)


def test_draws_do_not_depend_on_the_clock():
    a, b = FaultPolicy(seed=9), FaultPolicy(seed=9)
    a.add(FailureRate(rate=0.5), now=0)
    b.add(FailureRate(rate=0.5), now=1000)
    assert [a.decide(1.0) for _ in range(100)] == [b.decide(2000.0 + i) for i in range(100)]


def test_reseed_restarts_the_random_sequence():
    policy = FaultPolicy(seed=3)
    policy.add(FailureRate(rate=0.5), now=0)
    first = [d.error for d in decisions(policy, 50)]
    policy.reseed(3)
    assert [d.error for d in decisions(policy, 50)] == first


def test_delay_fixed_range_and_jitter_stay_in_bounds():
    fixed = FaultPolicy(seed=2)
    fixed.add(Delay(delay_ms=25), now=0)
    assert {d.delay_ms for d in decisions(fixed, 20)} == {25}
    ranged = FaultPolicy(seed=2)
    ranged.add(Delay(delay_ms=10, max_delay_ms=20), now=0)
    values = [d.delay_ms for d in decisions(ranged, 500)]
    assert all(10 <= v <= 20 for v in values) and max(values) - min(values) > 5
    jitter = FaultPolicy(seed=2)
    jitter.add(Delay(delay_ms=5, jitter_ms=10), now=0)
    values = [d.delay_ms for d in decisions(jitter, 500)]
    assert all(0 <= v <= 15 for v in values) and min(values) == 0  # clamped at 0


def test_delay_rate_applies_to_a_fraction_and_delays_add_up():
    policy = FaultPolicy(seed=4)
    policy.add(Delay(delay_ms=10, rate=0.25), now=0)
    delayed = sum(1 for d in decisions(policy, 2000) if d.delay_ms)
    assert 400 < delayed < 600
    both = FaultPolicy(seed=4)
    both.add(Delay(delay_ms=10), now=0)
    both.add(Delay(delay_ms=5), now=0)
    decision = both.decide(0)
    assert decision.delay_ms == 15 and decision.delay_faults == ("f1", "f2")


def test_oldest_failing_fault_wins_and_padding_skips_failed_requests():
    policy = FaultPolicy(seed=1)
    policy.add(FailFirst(count=1, error="timeout"), now=0)
    policy.add(FailFirst(count=2, error="connection"), now=0)
    policy.add(LargeResponse(size_bytes=10), now=0)
    first, second, third = decisions(policy, 3)
    assert (first.error, first.error_fault, first.pad_bytes) == ("timeout", "f1", 0)
    assert (second.error, second.error_fault) == ("connection", "f2")
    assert (third.error, third.pad_bytes) == (None, 10)


@pytest.mark.parametrize(
    "spec,crashes_on",
    [
        (Crash(when="next_request"), 1),
        (Crash(when="after_requests", after_requests=3), 4),
    ],
)
def test_crash_on_the_right_request(spec, crashes_on):
    policy = FaultPolicy(seed=1)
    policy.add(spec, now=0)
    policy.add(FailureRate(rate=1.0), now=0)
    outcomes = decisions(policy, crashes_on)
    assert [d.crash for d in outcomes] == [False] * (crashes_on - 1) + [True]
    assert outcomes[-1].error_fault == "f1"


def test_crash_now_and_host_faults_make_no_request_decision():
    policy = FaultPolicy(seed=1)
    policy.add(Crash(when="now"), now=0)
    policy.add(MemoryPressure(mib=1), now=0)
    policy.add(CpuPressure(threads=1, duration_s=1), now=0)
    assert all(not d.fault_ids for d in decisions(policy, 5))
    assert [f.seen for f in policy.active(0)] == [5, 0, 0]


def test_faults_expire_with_an_injected_clock():
    policy = FaultPolicy(seed=1)
    policy.add(FailureRate(rate=1.0, duration_s=10), now=100.0)
    forever = policy.add(FailEvery(nth=1), now=100.0)
    assert policy.decide(109.9).error_fault == "f1"
    assert policy.next_expiry == pytest.approx(110.0)
    assert [f.id for f in policy.active(110.0)] == ["f2"]
    assert policy.decide(111.0).error_fault == "f2"
    assert policy.expire(10_000.0) == [] and forever.expires_at is None


def test_expired_faults_are_dropped_on_the_next_decision():
    policy = FaultPolicy(seed=1)
    policy.add(FailureRate(rate=1.0, duration_s=1), now=0.0)
    assert policy.decide(0.5).error == "exception"
    assert policy.decide(1.0) is not None and policy.get("f1") is None


def test_ids_remove_clear_and_json():
    policy = FaultPolicy(seed=1)
    a = policy.add(Delay(delay_ms=1, duration_s=5), now=10.0)
    b = policy.add(FailEvery(nth=2), now=11.0)
    assert (a.id, b.id) == ("f1", "f2")
    assert a.to_json() == {
        "id": "f1",
        "kind": "delay",
        "params": {"delay_ms": 1, "max_delay_ms": None, "jitter_ms": None, "rate": 1.0},
        "duration_s": 5,
        "added_at": 10.0,
        "expires_at": 15.0,
        "requests_seen": 0,
        "injected": 0,
    }
    assert policy.remove("f1") is a and policy.remove("f1") is None
    assert policy.next_expiry is None
    assert policy.clear() == [b] and policy.active(0) == []
    assert policy.add(FailEvery(nth=2), now=0).id == "f3"  # ids are never reused
