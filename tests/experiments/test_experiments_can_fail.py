"""Every expectation of every experiment that holds can fail: a weakened system makes THAT one miss.

A hypothesis or expectation that cannot deviate proves nothing. For every
method expectation (a method probe with a tolerance) of every experiment
recorded as holding on some transport, one weakened variant below makes it
miss its tolerance WITH A VALUE: the probe ran and returned, the baseline
(steady state before the fault) still held, and the value is outside the
tolerance. Nothing here breaks the target generically (a dead target, a
wrong port); each variant weakens what the expectation is about, the way a
team's real system could be weak:

- configuration overrides, as a user would pass with ``--var``: a retry stack
  with fewer attempts, a breaker with a higher threshold or a longer
  recovery, a fault that is too weak, a caller timeout that is too short;
- a weak agent (``tests/experiments/weak_targets.py``, served by a real
  chaos host): too slow under CPU pressure, or mishandling its own memory
  running out;
- traffic that bypasses the fault: the caller talks straight to a chaos host
  running elsewhere (``target_control_url`` + ``target_endpoint``) while the
  network faults go to the proxy, the misconfiguration the "fault reached
  the traffic" checks exist to catch.

Coverage is checked too: an expectation is covered by a variant here, or by
a deviation recorded on another transport (which ``test_experiments``
checks on every run), or is listed in ``UNREACHABLE`` with the reason, and
then also in docs/FINDINGS.md.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chaosagenkit.suite import RunPlan, experiment_extension
from tests.experiments.conftest import EXPERIMENTS, assert_nothing_left_behind, run_plan

ROOT = EXPERIMENTS.parent
WEAK = "tests.experiments.weak_targets"


@dataclass(frozen=True)
class Weakening:
    """One weakened run: ``experiment`` over ``transport`` with ``overrides``; ``misses`` must all miss."""

    experiment: str
    transport: str
    what: str
    misses: tuple[str, ...]
    overrides: dict[str, Any] = field(default_factory=dict)
    bypass: bool = False  # the caller goes straight to an external chaos host, past the proxy
    #: how the run ends: "completed", or "failed" when the weakness kills the host, so the next
    #: fault cannot be injected (the named expectations still miss, with values, before that)
    ends: str = "completed"

    @property
    def id(self) -> str:
        return f"{self.experiment}-{self.transport}-{self.what.replace(' ', '-')}"


def retry(**params: Any) -> dict[str, Any]:
    return {"type": "retry", **params}


def breaker(**params: Any) -> dict[str, Any]:
    return {"type": "circuit_breaker", **params}


def timeout(ms: int) -> dict[str, Any]:
    return {"type": "timeout", "timeout_ms": ms}


BREAKER_5 = {"failure_threshold": 5, "recovery_timeout_ms": 500, "success_threshold": 2}

WEAKENINGS = [
    Weakening("demo", "tcp", "a stronger fault than about half", ("measured-success-ratio-near-half",),
              {"failure_rate": 0.9}),
    Weakening("cache_fallback_hardened", "http", "a cache too small for the keys",
              ("cached-answers-while-fresh", "served-from-the-cache", "cached-answers-when-stale"),
              {"client_middleware": [{"type": "caching", "default_ttl": 30.0, "max_cache_size": 1}]}),
    Weakening("cache_fallback_hardened", "tcp", "an outage that never fails a request",
              ("service-really-fails",), {"failure_rate": 0.0}),
    Weakening("circuit_breaker", "tcp", "a fault that never fails a request",
              ("four-failures", "fifth-failure", "open-after-exactly-5", "rejected-fast",
               "rejected-requests-never-reached-the-server"), {"failure_rate": 0.0}),
    Weakening("circuit_breaker", "http", "a breaker that opens after 3",
              ("still-closed-after-4",), {"client_middleware": [breaker(**{**BREAKER_5, "failure_threshold": 3})]}),
    Weakening("circuit_breaker", "tcp", "a breaker that stays open 5 s",
              ("first-success-after-recovery-timeout", "half-open-after-one-success", "second-success",
               "closed-after-two-successes", "recovery-was-attempted"),
              {"client_middleware": [breaker(**{**BREAKER_5, "recovery_timeout_ms": 5000})]}),
    Weakening("circuit_breaker", "http", "a breaker that closes after one success",
              ("half-open-after-one-success",),
              {"client_middleware": [breaker(**{**BREAKER_5, "success_threshold": 1})]}),
    Weakening("connection_drop", "http", "a retry stack without retries",
              ("retrying-caller-gets-every-answer", "answers-came-after-retries"),
              {"client_middleware": [retry(max_retries=1, initial_delay=0.05)]}),
    Weakening("connection_drop", "http", "a cut that comes after the answer",
              ("bare-caller-sees-the-drop", "fault-reached-the-traffic"), {"drop_after_bytes": 10_000_000}),
    Weakening("connection_refused", "tcp", "a caller that retries refusals",
              ("late_caller-errors-are-ConnectionError", "refusal-is-fast"),
              {"client_middleware": [retry(max_retries=3, initial_delay=0.1)]}),
    Weakening("connection_refused", "http", "a breaker that keeps the caller away",
              ("late-caller-connects",),
              {"client_middleware": [breaker(failure_threshold=2, recovery_timeout_ms=60000)]}),
    Weakening("connection_refused", "tcp", "traffic that bypasses the proxy",
              ("late-caller-sends-while-down",), bypass=True),
    Weakening("connection_timeout", "http", "a timeout longer than configured",
              ("timeout-fires-after-configured-duration",), {"client_middleware": [timeout(1500)]}),
    Weakening("connection_timeout", "http", "no timeout middleware",
              ("caller-errors-are-TimeoutError",), {"client_middleware": [], "client_timeout_ms": 1000}),
    Weakening("cpu_pressure", "tcp", "a fault too short to measure",
              ("host-really-burns-cpu",), {"cpu_threads": 1, "cpu_pressure_s": 0.1}),
    Weakening("cpu_pressure", "http", "a CPU-bound agent with no time to spare",
              ("requests-still-succeed", "slowdown-within-bounds"),
              {"target_agent": f"{WEAK}:cpu_bound_echo", "cpu_threads": 8, "client_timeout_ms": 250,
               "pressure_requests": 10, "steady_requests": 10}),
    Weakening("memory_exhaustion", "http", "a host with room to spare",
              ("host-is-at-its-memory-limit", "allocations-fail-at-the-limit"), {"memory_headroom_mib": 1024}),
    Weakening("memory_exhaustion", "http", "an agent that waits for memory",
              ("failures-are-clean-errors",),
              {"target_agent": f"{WEAK}:hangs_when_memory_is_short", "client_timeout_ms": 1000,
               "at_limit_requests": 2}),
    Weakening("memory_exhaustion", "http", "an agent that answers empty without memory",
              ("no-wrong-answers-at-the-limit",),
              {"target_agent": f"{WEAK}:wrong_when_memory_is_short", "large_bytes": 1048576}),
    Weakening("memory_exhaustion", "http", "an agent that exits without memory",
              ("server-stays-up",), {"target_agent": f"{WEAK}:dies_when_memory_is_short"}, ends="failed"),
    Weakening("memory_exhaustion", "http", "an agent broken after an allocation failed",
              ("large-answers-arrive-once-memory-is-free",), {"target_agent": f"{WEAK}:broken_after_memory_error"}),
    Weakening("memory_exhaustion", "http", "a caller timeout too short for large answers",
              ("caller-fails-only-with-a-clean-payload-error",), {"client_timeout_ms": 60}),
    Weakening("middleware_composition_hardened", "http", "a retry that retries an open circuit",
              ("fails-fast",),
              {"client_middleware": [retry(max_retries=3, initial_delay=0.05),
                                     breaker(failure_threshold=5, recovery_timeout_ms=1000), timeout(200)]}),
    Weakening("middleware_composition_hardened", "http", "a timeout longer than the slow server",
              ("first-requests-retry", "retries-happened", "until-the-circuit-opened", "next-request",
               "without-reaching-the-server"),
              {"client_middleware": [retry(max_retries=3, initial_delay=0.05, no_retry_on=["CircuitBreakerError"]),
                                     breaker(failure_threshold=5, recovery_timeout_ms=1000), timeout(1500)]}),
    Weakening("network_latency", "http", "a timeout shorter than the slow answers",
              ("slow-requests-complete", "they-complete-slowly", "timeout-fires-at-the-limit"),
              {"client_middleware": [timeout(400)]}),
    Weakening("network_latency", "http", "no timeout middleware",
              ("caller-errors-are-TimeoutError",), {"client_middleware": []}),
    Weakening("network_partition", "http", "a breaker that opens after 10",
              ("circuit-opened",), {"client_middleware": [breaker(failure_threshold=10, recovery_timeout_ms=300)]}),
    Weakening("network_partition", "http", "a breaker that stays open 10 s",
              ("caller-recovers",), {"client_middleware": [breaker(failure_threshold=3, recovery_timeout_ms=10000)]}),
    Weakening("network_partition", "http", "a retry in front of the breaker",
              ("caller-fails-only-with-connection-errors-or-open-circuit",),
              {"client_middleware": [retry(max_retries=2, initial_delay=0.01),
                                     breaker(failure_threshold=3, recovery_timeout_ms=300)]}),
    Weakening("packet_loss", "tcp", "a loss that never happens",
              ("performance-degrades", "fault-reached-the-traffic"), {"loss_rate": 0.0}),
    Weakening("packet_loss", "tcp", "a timeout shorter than a retransmission",
              ("most-requests-eventually-succeed", "no-answer-belongs-to-another-request-under-loss"),
              {"client_middleware": [timeout(150)], "loss_rate": 0.5}),
    Weakening("packet_loss", "http", "the connection's own timeout shorter than a retransmission",
              ("caller-fails-only-with-timeouts",), {"client_timeout_ms": 150, "loss_rate": 0.5}),
    Weakening("partial_failures", "tcp", "a retry stack without retries and a breaker that opens after 50",
              ("retries-succeed-for-most", "retries-happened", "circuit-breaker-opened"),
              {"client_middleware": [retry(max_retries=1, initial_delay=0.01)],
               "breaker_middleware": [breaker(failure_threshold=50, recovery_timeout_ms=60000)]}),
    Weakening("partial_failures", "http", "a fault that never fails a request",
              ("fault-reached-the-traffic",), {"failure_rate": 0.0}),
    Weakening("rate_limiter", "tcp", "a limiter that lets the burst through",
              ("burst-was-paced",), {"client_middleware": [{"type": "rate_limiter", "rate": 1000, "capacity": 100}]}),
    Weakening("rate_limiter", "http", "a limiter that rejects what it cannot serve soon",
              ("burst-all-answered", "nothing-rejected"),
              {"client_middleware": [{"type": "rate_limiter", "rate": 50, "capacity": 10, "max_wait_ms": 100}]}),
    Weakening("retry", "tcp", "a retry stack with one attempt fewer",
              ("request-succeeds", "after-2-retries", "on-a-retry", "each-backoff-grows-by-the-factor",
               "within-the-expected-total-backoff"),
              {"client_middleware": [retry(max_retries=2, initial_delay=0.05, multiplier=2.0)]}),
    Weakening("retry", "http", "a constant 75 ms backoff",
              ("each-backoff-grows-by-the-factor",),
              {"client_middleware": [retry(max_retries=3, initial_delay=0.075, max_delay=0.075)]}),
    Weakening("retry", "http", "no retry at all",
              ("fault-reached-the-traffic",), {"client_middleware": [retry(max_retries=1, initial_delay=0.05)]}),
    Weakening("server_crash", "http", "a crash that never comes",
              ("request-in-flight-when-it-crashes", "server-really-died"),
              {"crash_when": "after_requests", "crash_after_requests": 1000}),
    Weakening("server_crash", "http", "a caller that retries the crash",
              ("caller-fails-only-with-connection-errors",),
              {"client_middleware": [retry(max_retries=2, initial_delay=0.01)]}),
    Weakening("server_crash", "http", "a breaker that keeps the caller away",
              ("next-requests-reconnect",),
              {"client_middleware": [breaker(failure_threshold=1, recovery_timeout_ms=60000)]}),
    Weakening("slow_response", "http", "a timeout longer than configured",
              ("caller-errors-are-TimeoutError", "timeout-fires-at-the-limit"),
              {"client_middleware": [timeout(700)], "server_delay_ms": 600}),
    Weakening("slow_response", "http", "a caller that cannot wait for the delay",
              ("patient-caller-waits", "for-the-whole-delay"), {"client_timeout_ms": 800}),
    Weakening("timeout", "http", "no timeout middleware",
              ("caller-errors-are-TimeoutError", "times-out-at-the-limit"), {"client_middleware": []}),
    Weakening("timeout", "http", "a 350 ms agent",
              ("promptly",),
              {"target_agent": f"{WEAK}:slow_echo", "steady_p95_ms": [0, 500],
               "client_middleware": [timeout(600)], "expected_timeout_ms": [580, 900]}),
    Weakening("two_tier_circuit_breaker", "tcp", "a fault that never fails a request",
              ("five-failures", "send-while-open"), {"failure_rate": 0.0}),
    Weakening("two_tier_circuit_breaker", "http", "a relay breaker that opens after 10",
              ("relay-circuit-opened", "relay-rejected-them", "backend-saw-only-the-first-five"),
              {"relay_middleware": json.dumps([breaker(**{**BREAKER_5, "failure_threshold": 10})])}),
    Weakening("two_tier_circuit_breaker", "tcp", "a relay breaker that stays open 5 s",
              ("requests-succeed-again", "relay-circuit-closed"),
              {"relay_middleware": json.dumps([breaker(**{**BREAKER_5, "recovery_timeout_ms": 5000})])}),
]  # fmt: skip

#: (experiment, expectation) -> why no weakening of the system under test can make it miss.
#: docs/FINDINGS.md lists the same, with the same reasons.
UNREACHABLE = {
    ("cache_fallback_hardened", "warm-the-cache"): (
        "a precondition: the healthy service answers the keys the cache is about to hold; only a "
        "generically broken service misses it, which proves nothing about the cache"
    ),
    ("connection_drop", "bare_caller-fails-only-with-connection-errors"): (
        "agenkit raises ConnectionError or ConnectionClosedError for every cut connection over tcp and "
        "http; no setting of the caller without middleware changes that class"
    ),
    ("connection_timeout", "fault-reached-the-traffic"): (
        "only traffic that bypasses the fault proxy escapes this fault, and the configuration check refuses such a run before it starts (a client endpoint beside its proxy: tests/unit/test_configuration.py)"
    ),
    ("network_latency", "moderate-latency-reached-the-traffic"): (
        "only traffic that bypasses the fault proxy escapes this fault, and the configuration check refuses such a run before it starts (a client endpoint beside its proxy: tests/unit/test_configuration.py)"
    ),
    ("network_partition", "send-while-partitioned"): (
        "only traffic that bypasses the fault proxy escapes this fault, and the configuration check refuses such a run before it starts (a client endpoint beside its proxy: tests/unit/test_configuration.py)"
    ),
    ("memory_exhaustion", "server-still-up"): (
        "a host that died makes the run fail before this probe (the next fault cannot be injected on it), "
        "so only a host that survives reaches it; server-stays-up is what misses for a host that dies"
    ),
    ("memory_exhaustion", "memory-really-held"): (
        "checks chaosagenkit's own fault through the kernel (the host's RSS grew by the memory it holds); "
        "nothing in the system under test can make held, written pages non-resident"
    ),
}


def holding_expectations() -> dict[tuple[str, str], set[str]]:
    """(experiment, expectation) -> the transports where it is recorded as deviating, for holding experiments."""
    found: dict[tuple[str, str], set[str]] = {}
    for path in sorted(EXPERIMENTS.glob("*.json")):
        experiment = json.loads(path.read_text())
        extension = experiment_extension(experiment)
        if "holds" not in (extension.get("verdicts") or {}).values():
            continue
        if extension.get("group") == "topology":  # per expectation: test_topology_experiments_can_fail.py
            continue
        if "kernel" in extension.get("requires", []):  # per expectation: test_kernel_experiments.py
            continue
        if extension.get("group") == "llm":  # test_llm_experiments_can_fail.py (one expectation each)
            continue
        deviations = extension.get("deviations") or {}
        for activity in experiment["method"]:
            if activity["type"] == "probe" and "tolerance" in activity:
                name = activity["name"]
                found[(path.stem, name)] = {t for t, names in deviations.items() if name in names}
    return found


def test_every_expectation_of_a_holding_experiment_can_be_made_to_miss():
    expectations = holding_expectations()
    weakened = {(w.experiment, name) for w in WEAKENINGS for name in w.misses}
    by_recorded = {key for key, transports in expectations.items() if transports}
    uncovered = sorted(set(expectations) - weakened - by_recorded - set(UNREACHABLE))
    assert not uncovered, f"no weakened variant makes these miss: {uncovered}"
    unknown = sorted((weakened | set(UNREACHABLE)) - set(expectations))
    assert not unknown, f"not an expectation of a holding experiment: {unknown}"
    assert not set(UNREACHABLE) & weakened, "an expectation listed as unreachable is reached"


def test_every_weakened_run_is_on_a_transport_where_the_experiment_holds():
    for w in WEAKENINGS:
        recorded = experiment_extension(json.loads((EXPERIMENTS / f"{w.experiment}.json").read_text()))
        assert recorded["verdicts"][w.transport] == "holds", w.id


def test_unreachable_expectations_are_listed_in_the_findings():
    findings = (ROOT / "docs" / "FINDINGS.md").read_text()
    for experiment, name in UNREACHABLE:
        assert f"`{experiment}` / `{name}`" in findings, (
            f"docs/FINDINGS.md does not list {experiment} / {name}"
        )


@contextlib.contextmanager
def external_host(transport: str) -> Iterator[dict[str, str]]:
    """A chaos host running outside the run (echo target), as ``target_control_url`` + ``target_endpoint``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "chaosagenkit", "serve", "--endpoint", f"{transport}://127.0.0.1:0",
         "--control", "127.0.0.1:0", "--seed", "42"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline() or "{}")
        assert ready.get("event") == "ready", f"external chaos host did not start (exit {process.poll()})"
        yield {"target_control_url": ready["control"], "target_endpoint": ready["endpoint"]}
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def assert_misses(journal: dict[str, Any], weakening: Weakening) -> None:
    """The baseline held, and each named expectation ran, returned a value and missed its tolerance."""
    label = f"{weakening.experiment} [{weakening.transport}] with {weakening.what}"
    before = (journal.get("steady_states") or {}).get("before") or {}
    assert before.get("steady_state_met") is True, f"{label}: the baseline did not hold: {before}"
    runs = {run["activity"]["name"]: run for run in journal["run"]}
    extension = next(e for e in journal["extensions"] if e["name"] == "chaosagenkit")
    checked = {e["activity"]: e for e in extension["expectations"]}
    for name in weakening.misses:
        run = runs.get(name)
        assert run is not None, f"{label}: {name} did not run"
        assert run["status"] == "succeeded", f"{label}: {name} raised instead of returning a value: {run}"
        assert run["tolerance_met"] is False, f"{label}: {name} still met its tolerance: {run['output']!r}"
        assert checked[name]["met"] is False and checked[name]["output"] == run["output"]


@pytest.mark.chaos
@pytest.mark.slow
@pytest.mark.parametrize("weakening", WEAKENINGS, ids=lambda w: w.id)
def test_the_weakened_system_makes_the_expectation_miss(weakening: Weakening, tmp_path: Path):
    plan = RunPlan(EXPERIMENTS / f"{weakening.experiment}.json", weakening.transport)
    with contextlib.ExitStack() as stack:
        overrides = dict(weakening.overrides)
        if weakening.bypass:
            overrides.update(stack.enter_context(external_host(weakening.transport)))
        result, journal = run_plan(plan, tmp_path, **overrides)
    assert journal is not None, f"{weakening.id}: no journal: {result.detail}"
    assert journal["status"] == weakening.ends, f"{weakening.id}: {result.detail}"
    assert_misses(journal, weakening)
    assert_nothing_left_behind(journal)
