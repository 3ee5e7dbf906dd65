"""The explorer against real processes: each invariant caught on a setup built to violate exactly it.

Every case is one explored schedule run as its experiment through chaoslib
(as the explorer runs trials), against a real ``chaosagenkit serve`` and real
agenkit clients. Each setup says what is weak about it: a target from
``explore_targets`` that misbehaves for the explorer's calls only, or a
middleware stack with a known agenkit behaviour. The journal must show the
one invariant violated and every other one holding (or not applicable).
A healthy setup violates none. Finally ``chaosagenkit explore`` itself runs
with a short budget and its minimal experiment deviates under ``chaos run``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chaosagenkit.explore.experiment import build_experiment, invariant_probe_name
from chaosagenkit.explore.invariants import INVARIANTS
from chaosagenkit.explore.schedule import Fault, Schedule, Traffic, TrafficEvent
from chaosagenkit.suite import RunPlan
from tests.experiments.conftest import assert_nothing_left_behind, run_plan

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

TARGETS = "tests.experiments.explore_targets"
RETRY = {"type": "retry", "max_retries": 3, "initial_delay": 0.05}
DEFAULT_STACK = (
    RETRY,
    {"type": "circuit_breaker", "failure_threshold": 5, "recovery_timeout_ms": 500},
    {"type": "timeout", "timeout_ms": 300},
)
FAIL_ONE = Fault("service.fail_first", 0.3, 0.5, {"count": 1, "error": "exception"})
FAIL_ALL = Fault("service.failure_rate", 0.3, 1.0, {"rate": 1.0, "error": "exception"})

# invariant: (what is weak, agent, stack, RemoteAgent timeout ms, faults, traffic)
CASES: dict[str, tuple[str, str, tuple, int, tuple, Traffic]] = {
    "answers_belong_to_requests": (
        "a target answering with the previous call's id",
        f"{TARGETS}:wrong_ids",
        (),
        2000,
        (),
        Traffic(50.0),
    ),
    "requests_end_by_deadline": (
        "no timeout middleware: a burst queues behind agenkit's per-connection lock, outside its timeout",
        f"{TARGETS}:slow",
        (),
        400,
        (),
        Traffic(50.0, (TrafficEvent("burst", 0.3, size=8),)),
    ),
    "recovers_after_faults": (
        "a target that breaks for good 1.5 s in",
        f"{TARGETS}:breaks_later",
        (),
        300,
        (FAIL_ONE,),
        Traffic(50.0),
    ),
    "no_errors_without_faults": (
        "a target failing one call with no fault injected",
        f"{TARGETS}:fails_once",
        (),
        2000,
        (),
        Traffic(50.0),
    ),
    "errors_are_agenkit_types": (
        "retry told not to retry RemoteExecutionError: agenkit raises a bare Exception",
        "chaosagenkit.targets:echo",
        ({**RETRY, "no_retry_on": ["RemoteExecutionError"]},),
        2000,
        (FAIL_ONE,),
        Traffic(50.0),
    ),
    "open_circuit_fails_fast": (
        "retry over a circuit breaker: agenkit retries the open circuit with backoff",
        "chaosagenkit.targets:echo",
        (RETRY, {"type": "circuit_breaker", "failure_threshold": 2, "recovery_timeout_ms": 500}),
        300,
        (FAIL_ALL,),
        Traffic(50.0),
    ),
    "half_open_admits_limited_trials": (
        "a burst reaching a half-open breaker: agenkit admits all of it",
        "chaosagenkit.targets:echo",
        (
            {
                "type": "circuit_breaker",
                "failure_threshold": 2,
                "recovery_timeout_ms": 100,
                "success_threshold": 1,
            },
        ),
        300,
        (Fault("service.failure_rate", 0.2, 2.0, {"rate": 1.0, "error": "exception"}),),
        Traffic(500.0, (TrafficEvent("burst", 1.3, size=6),)),
    ),
    "non_transient_errors_not_retried": (
        "retry with agenkit's default should_retry: every error is retried",
        "chaosagenkit.targets:echo",
        (RETRY,),
        2000,
        (
            Fault(
                "frame.malformed_frame",
                0.3,
                0.6,
                {"kind": "invalid_json", "stream": "downstream", "toxicity": 1.0},
            ),
        ),
        Traffic(50.0),
    ),
    "host_leaks_nothing": (
        "a target leaving a task behind every call",
        f"{TARGETS}:leaks_tasks",
        (),
        2000,
        (),
        Traffic(50.0),
    ),
}


def run_schedule(tmp_path: Path, agent: str, schedule: Schedule, timeout_ms: int) -> dict[str, Any]:
    experiment = build_experiment(schedule, agent=agent, remote_timeout_ms=timeout_ms)
    path = tmp_path / "explored.json"
    path.write_text(json.dumps(experiment))
    result, journal = run_plan(RunPlan(path, "tcp"), tmp_path)
    assert journal is not None, result.detail
    assert journal["status"] == "completed", result.detail
    assert journal["steady_states"]["before"]["steady_state_met"], "the steady state must hold first"
    failed = [r["activity"]["name"] for r in journal["run"] if r["status"] != "succeeded"]
    assert not failed, f"activities failed: {failed}"
    assert_nothing_left_behind(journal)
    return journal


def verdicts_of(journal: dict[str, Any]) -> dict[str, dict[str, Any]]:
    names = {invariant_probe_name(name): name for name in INVARIANTS}
    return {
        names[r["activity"]["name"]]: r["output"] for r in journal["run"] if r["activity"]["name"] in names
    }


@pytest.mark.parametrize("invariant", sorted(CASES))
def test_each_invariant_catches_a_setup_built_to_violate_it(invariant: str, tmp_path: Path) -> None:
    weakness, agent, stack, timeout_ms, faults, traffic = CASES[invariant]
    journal = run_schedule(
        tmp_path, agent, Schedule(faults=faults, traffic=traffic, stack=stack, seed=5), timeout_ms
    )
    verdicts = verdicts_of(journal)
    assert sorted(verdicts) == sorted(INVARIANTS)
    violated = sorted(name for name, v in verdicts.items() if v["violations"] > 0)
    assert violated == [invariant], (
        f"{weakness}: {json.dumps({n: verdicts[n]['examples'] for n in violated})}"
    )
    assert verdicts[invariant]["examples"]
    assert journal["deviated"] is True
    expectations = next(e for e in journal["extensions"] if e["name"] == "chaosagenkit")["expectations"]
    assert [e["activity"] for e in expectations if not e["met"]] == [invariant_probe_name(invariant)]


def test_a_healthy_setup_with_a_handled_fault_violates_none(tmp_path: Path) -> None:
    schedule = Schedule(faults=(FAIL_ONE,), traffic=Traffic(50.0), stack=DEFAULT_STACK, seed=5)
    journal = run_schedule(tmp_path, "chaosagenkit.targets:echo", schedule, 2000)
    verdicts = verdicts_of(journal)
    assert {n: v["examples"] for n, v in verdicts.items() if v["violations"]} == {}
    for checked in ("answers_belong_to_requests", "recovers_after_faults", "host_leaks_nothing"):
        assert verdicts[checked]["checked"] > 0, verdicts[checked]
    assert journal["deviated"] is False


def test_chaosagenkit_explore_writes_minimal_experiments_that_deviate_under_chaos_run(tmp_path: Path) -> None:
    out = tmp_path / "explored"
    command = [
        sys.executable, "-m", "chaosagenkit", "explore", "--seed", "3", "--budget-s", "90",
        "--sources", "frame", "--max-faults", "1", "--middleware", json.dumps([RETRY]),
        "--confirm-runs", "1", "--max-shrink-runs", "2", "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[2])
    assert done.returncode == 1, done.stdout + done.stderr
    assert "explore: seed 3, budget 90 s" in done.stdout and "finding 1:" in done.stdout
    findings = json.loads((out / "findings.json").read_text())
    trials = json.loads((out / "trials.json").read_text())["trials"]
    assert findings and all(t["seed"] >= 0 and t["schedule"]["seed"] == t["seed"] for t in trials)
    assert sum(t["duration_s"] for t in trials) <= 90
    assert (out / "findings.md").read_text().startswith("# Exploration findings")
    confirmed = [f for f in findings if f["reproduction"]["confirmed"]]
    assert confirmed, findings
    finding = confirmed[0]
    assert set(finding) >= {
        "invariant",
        "minimal_schedule",
        "experiment",
        "reproduction",
        "time_to_first_violation_s",
    }
    experiment = out / finding["experiment"]
    chaos = Path(sys.executable).with_name("chaos")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    assert subprocess.run([chaos, "validate", str(experiment)], capture_output=True, env=env).returncode == 0
    journal_path = tmp_path / "replay.json"
    replay = subprocess.run(
        [
            chaos,
            "--log-file",
            str(tmp_path / "replay.log"),
            "run",
            str(experiment),
            "--journal-path",
            str(journal_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert replay.returncode == 1, replay.stdout + replay.stderr
    journal = json.loads(journal_path.read_text())
    assert journal["status"] == "completed" and journal["deviated"] is True
    probe = next(
        r for r in journal["run"] if r["activity"]["name"] == invariant_probe_name(finding["invariant"])
    )
    assert probe["tolerance_met"] is False and probe["output"]["violations"] > 0
