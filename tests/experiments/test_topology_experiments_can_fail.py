"""Every expectation of the topology experiments that holds somewhere can also be missed.

For each expectation met on some transport (the recorded verdicts and
deviations say which), a weakened setup, made only through the experiment's
own configuration (as a user would with --var), makes THAT expectation miss
its tolerance with a value: its probe ran and returned something the
tolerance rejects. An expectation the record shows deviating on another
transport has already missed with a value there, unweakened. One weakened run may miss several expectations; the
test names each one it must miss. ``test_every_met_expectation_is_covered``
keeps this table complete as the experiments change.

Run them side by side: ``pytest -n 2 tests/experiments/test_topology_experiments_can_fail.py``
(more workers than cores make the steady states' latency bounds miss, and
then a weakened run proves nothing: it stops before its method).
"""

from __future__ import annotations

import json

import pytest

from chaosagenkit.suite import RunPlan
from chaosagenkit.topology.netns import unavailable_reason
from tests.experiments.conftest import EXPERIMENTS, assert_nothing_left_behind, run_plan

TOPOLOGY_EXPERIMENTS = (
    "fallback_to_backup",
    "parallel_partial_results",
    "sequential_fail_fast",
    "cascading_failure_contained",
    "graceful_restart",
    "out_of_order_responses",
    "inconsistent_responses",
    "truncated_response",
    "dns_failure",
)
WEAK = "tests.experiments.topology_weak_targets"
DIVERGENT = '{"tag": "%s", "divergent": true}'

#: (experiment, transport, what is weakened, overrides, the expectations it must miss)
WEAKENED = [
    ("fallback_to_backup", "http", "a backup that answers wrongly", {"backup_worker": DIVERGENT % "backup"},
     ["answers-come-from-the-backup", "answers-come-from-the-backup-during-a-hang"]),
    ("fallback_to_backup", "http", "a slow backup", {"backup_worker": '{"tag": "backup", "work_ms": 400}'},
     ["switch-on-failure-costs-no-more-than-a-normal-request"]),
    ("fallback_to_backup", "http", "a primary edge that always times out", {"primary_timeout_ms": 1},
     ["switch-on-hang-takes-the-edge-timeout", "backup-idle-again"]),
    ("fallback_to_backup", "http", "a primary that does not fail", {"primary_failure_rate": 0.0},
     ["backup-served-every-one"]),
    ("fallback_to_backup", "http", "a primary broken for good and a wrong backup",
     {"primary_agent": f"{WEAK}:echo_then_fail", "backup_worker": DIVERGENT % "backup"},
     ["answers-come-from-the-primary-again", "no-answer-belongs-to-another-request"]),
    ("parallel_partial_results", "http", "a healthy worker that answers wrongly after the steady state",
     {"healthy_agent": f"{WEAK}:echo_then_wrong", "healthy_worker": '{"after": 40}'},
     ["patterns-parallel-returns-partial-results"]),
    ("parallel_partial_results", "http", "an edge timeout longer than the slow worker", {"worker_timeout_ms": 5000},
     ["partial-results-within-the-timeout", "answers-carry-only-the-healthy-workers-result"]),
    ("parallel_partial_results", "http", "a worker that does not fail", {"failing_rate": 0.0},
     ["the-failing-worker-was-called-by-both"]),
    ("sequential_fail_fast", "tcp", "a middle stage that does not fail", {"failure_rate": 0.0},
     ["pipeline-fails", "later-stage-never-called", "later-stage-host-saw-nothing-new", "first-failure-at-the-middle-stage"]),
    ("sequential_fail_fast", "tcp", "the first stage fails instead", {"failing_stage": "stage1"},
     ["failing-stage-called-once-each"]),
    ("sequential_fail_fast", "tcp", "a slow first stage", {"stage1_worker": '{"tag": "stage1", "work_ms": 120}'},
     ["pipeline-stops-at-once"]),
    ("sequential_fail_fast", "tcp", "a caller that retries",
     {"client_middleware": [{"type": "retry", "max_retries": 2, "initial_delay": 0.01}]},
     ["first-stage-called-once-each"]),
    ("cascading_failure_contained", "tcp", "no circuit breaker", {"leaf_middleware": []},
     ["siblings-callers-barely-suffer", "blast-radius-within-bound", "leaf-saw-only-the-threshold",
      "leaf-breaker-opened"]),
    ("cascading_failure_contained", "tcp", "a breaker that never opens",
     {"leaf_middleware": [{"type": "circuit_breaker", "failure_threshold": 1000, "recovery_timeout_ms": 6000}]},
     ["leaf-breaker-opened"]),
    ("cascading_failure_contained", "tcp", "a leaf that stays healthy", {"leaf_failure_rate": 0.0, "leaf_delay_ms": 0},
     ["failing-path-fails"]),
    ("graceful_restart", "http", "traffic that ends before the stops", {"traffic_s": 0.5},
     ["requests-were-in-flight-at-sigterm", "sigkill-fails-requests-in-flight", "traffic-ran-through-both-stops"]),
    ("graceful_restart", "http", "a worker that hangs after the steady state",
     {"worker_agent": f"{WEAK}:echo_then_slow"},
     ["sigterm-drains-requests-in-flight"]),
    ("graceful_restart", "http", "a worker broken for good, across restarts",
     {"worker_agent": f"{WEAK}:echo_then_fail", "worker": '{"after": 20, "state": "{tmp}/seen"}'},
     ["system-recovers-after-sigterm", "system-recovers-after-sigkill"]),
    ("out_of_order_responses", "tcp", "a duplication that never happens", {"duplicate_toxicity": 0.0},
     ["fault-reached-the-traffic"]),
    ("inconsistent_responses", "tcp", "no replica fails", {"replica_failure_rate": 0.0},
     ["two-replicas-voted-on-each"]),
    ("truncated_response", "http", "a truncation that never happens", {"truncation_rate": 0.0},
     ["truncated-answers-are-errors", "fault-reached-the-traffic"]),
    ("truncated_response", "http", "a worker that answers wrongly, untruncated",
     {"truncation_rate": 0.0, "worker_agent": f"{WEAK}:echo_then_wrong"},
     ["never-another-requests-answer"]),
    ("truncated_response", "http", "a worker that hangs after the steady state", {"worker_agent": f"{WEAK}:echo_then_slow"},
     ["errors-come-fast"]),
    ("truncated_response", "http", "a worker broken for good", {"worker_agent": f"{WEAK}:echo_then_fail"},
     ["system-recovers"]),
    ("dns_failure", "tcp", "DNS faults on a name nobody resolves", {"dns_fault_host": "front"},
     ["nxdomain-fails-every-request", "servfail-fails-every-request", "silent-resolver-fails-every-request",
      "no-failed-request-reached-the-backend"]),
    ("dns_failure", "tcp", "a silent resolver instead of NXDOMAIN and SERVFAIL",
     {"first_fault": "silent", "second_fault": "silent"},
     ["nxdomain-fails-fast", "servfail-fails-fast"]),
    ("dns_failure", "tcp", "a backend broken for good", {"backend_agent": f"{WEAK}:echo_then_fail"},
     ["named-path-answers-again"]),
]  # fmt: skip


def _extension(name: str) -> dict:
    experiment = json.loads((EXPERIMENTS / f"{name}.json").read_text())
    return next(e for e in experiment["extensions"] if e["name"] == "chaosagenkit")


def met_somewhere(name: str) -> set[str]:
    """The method expectations of ``name`` met on at least one transport (recorded)."""
    experiment = json.loads((EXPERIMENTS / f"{name}.json").read_text())
    expectations = {a["name"] for a in experiment["method"] if a["type"] == "probe" and "tolerance" in a}
    extension = _extension(name)
    met: set[str] = set()
    for transport in extension["transports"]:
        if transport in (extension.get("skip") or {}) or transport not in (extension.get("verdicts") or {}):
            continue  # not applicable, or not recorded yet: nothing is known to be met there
        met |= expectations - set((extension.get("deviations") or {}).get(transport) or [])
    return met


def missed_somewhere(name: str) -> set[str]:
    """The method expectations of ``name`` recorded as deviating on some transport."""
    deviations = _extension(name).get("deviations") or {}
    return {expectation for names in deviations.values() for expectation in names}


def test_every_met_expectation_is_covered():
    # An expectation met on one transport and recorded as deviating on another has already
    # missed with a value in a real run of the unweakened system (dns_failure's silent resolver:
    # 2.1 s over tcp and http, 3 ms over grpc, T4), and `make demo` / `make matrix` miss it again.
    covered = {name: missed_somewhere(name) for name in TOPOLOGY_EXPERIMENTS}
    for name, _transport, _what, _overrides, misses in WEAKENED:
        covered[name].update(misses)
    for name in TOPOLOGY_EXPERIMENTS:
        assert met_somewhere(name) <= covered.get(name, set()), (
            f"{name}: no weakened setup misses {sorted(met_somewhere(name) - covered.get(name, set()))}"
        )


def unmet_expectations(journal: dict) -> dict[str, dict]:
    extension = next(
        e for e in journal["extensions"] if e.get("name") == "chaosagenkit" and "expectations" in e
    )
    return {e["activity"]: e for e in extension["expectations"] if not e["met"]}


@pytest.mark.chaos
@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "transport", "weakened", "overrides", "misses"),
    # dns_failure builds a network namespace: one at a time beside the kernel tests
    [
        pytest.param(*w, marks=pytest.mark.xdist_group("kernel")) if w[0] == "dns_failure" else w
        for w in WEAKENED
    ],
    ids=[f"{w[0]}-{w[2].replace(' ', '_')}" for w in WEAKENED],
)
def test_a_weakened_setup_misses_the_expectation(name, transport, weakened, overrides, misses, tmp_path):
    if name == "dns_failure" and (reason := unavailable_reason()):
        pytest.skip(f"dns_failure: {reason}")
    overrides = {key: value.replace("{tmp}", str(tmp_path)) if isinstance(value, str) else value
                 for key, value in overrides.items()}  # fmt: skip
    result, journal = run_plan(RunPlan(EXPERIMENTS / f"{name}.json", transport), tmp_path, **overrides)
    assert journal is not None and journal["status"] == "completed", (
        f"{name} with {weakened}: {result.detail}"
    )
    before = (journal.get("steady_states") or {}).get("before") or {}
    assert before.get("steady_state_met"), (
        f"{name} [{transport}] with {weakened}: the steady state did not hold, so the method never ran"
    )
    unmet = unmet_expectations(journal)
    for expectation in misses:
        assert expectation in unmet, f"{name} [{transport}] with {weakened}: {expectation!r} was met"
        missed = unmet[expectation]
        assert missed["status"] == "succeeded", f"{expectation}: its probe raised, it did not return a value"
        assert missed["output"] is not None and missed["tolerance"] is not None
    assert_nothing_left_behind(journal)
