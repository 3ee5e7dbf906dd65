"""The exploration loop on a simulated system: budget, shrinking, confirmation, de-duplication, exit codes.

``SimulatedExplorer`` replaces only the real run (``_execute``) by an oracle
that says which invariants a schedule violates and advances a fake clock by
what a real run would take; everything else is the explorer's own code.
Nothing here opens a socket or starts a process.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

from chaosagenkit.explore.cli import DEFAULT_STACKS
from chaosagenkit.explore.explorer import ExploreOptions, Explorer, Trial
from chaosagenkit.explore.invariants import INVARIANTS
from chaosagenkit.explore.schedule import Fault, Schedule

RUN_S = 10.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class SimulatedExplorer(Explorer):
    def __init__(
        self, options: ExploreOptions, oracle: Callable[[Schedule, int], dict[str, list[str]]]
    ) -> None:
        self.clock_ = FakeClock()
        super().__init__(options, out=io.StringIO(), clock=self.clock_)
        self.oracle = oracle
        self.executed: list[Trial] = []

    def _configure_logging(self) -> None:  # no Chaos Toolkit log for a simulation
        pass

    def _execute(self, trial: Trial) -> None:
        self.clock_.now += RUN_S
        self.executed.append(trial)
        violations = self.oracle(trial.schedule, len(self.executed))
        trial.status, trial.baseline_met = "completed", True
        for name in INVARIANTS:
            kinds = violations.get(name, [])
            trial.verdicts[name] = {
                "invariant": name,
                "violations": len(kinds),
                "kinds": kinds,
                "examples": kinds,
            }


def options(tmp_path: Path, **changes) -> ExploreOptions:
    return ExploreOptions(
        **{"out": tmp_path, "stacks": DEFAULT_STACKS, "seed": 4, "budget_s": 300.0, **changes}
    )


def kinds_of(schedule: Schedule) -> set[str]:
    return {f.kind for f in schedule.faults}


def reset_breaks_recovery(schedule: Schedule, n: int) -> dict[str, list[str]]:
    """A system that never recovers from a reset connection, and retries an open circuit slowly."""
    violations = {}
    if "network.reset_peer" in kinds_of(schedule) or "network.limit_data" in kinds_of(schedule):
        violations["recovers_after_faults"] = ["ConnectionError"]
    if kinds_of(schedule) & {"service.failure_rate", "service.crash", "network.partition"}:
        violations["open_circuit_fails_fast"] = ["slow_rejection"]
    return violations


def test_findings_are_shrunk_confirmed_deduplicated_and_within_budget(tmp_path: Path) -> None:
    explorer = SimulatedExplorer(options(tmp_path), reset_breaks_recovery)
    assert explorer.run() == 1
    assert explorer.clock_.now <= 300.0  # every run started only if it fitted
    findings = json.loads((tmp_path / "findings.json").read_text())
    assert findings and {f["invariant"] for f in findings} <= {
        "recovers_after_faults",
        "open_circuit_fails_fast",
    }
    confirmed = {"reproduced": 3, "runs": 3, "rate": 1.0, "confirmed": True}
    # the last finding may come when no confirmation run fits the budget: then it says so
    unconfirmed = {"reproduced": 0, "runs": 0, "rate": None, "confirmed": False}
    assert findings[0]["reproduction"] == confirmed
    for finding in findings:
        minimal = Schedule.from_json(finding["minimal_schedule"])
        assert len(minimal.faults) == 1 and not minimal.traffic.events
        assert finding["reproduction"] in (confirmed, unconfirmed), finding["reproduction"]
        assert (tmp_path / finding["experiment"]).exists()
    assert all(f["reproduction"] == confirmed for f in findings[:-1])
    # open_circuit_fails_fast is one finding whatever opened the circuit: same kinds, same stack
    fail_fast = [f for f in findings if f["invariant"] == "open_circuit_fails_fast"]
    assert len({(*tuple(f["signature"]["kinds"]), f["signature"]["stack"]) for f in fail_fast}) == len(
        fail_fast
    )
    trials = json.loads((tmp_path / "trials.json").read_text())["trials"]
    assert [t["trial"] for t in trials] == list(range(1, len(trials) + 1))
    assert {t["purpose"] for t in trials} == {"explore", "shrink", "confirm"}
    summary = json.loads((tmp_path / "explore.json").read_text())
    assert summary["runs"] == len(trials) and summary["stopped_by"] == "budget"
    assert "finding 1:" in explorer.out.getvalue()


def test_the_same_seed_explores_the_same_way(tmp_path: Path) -> None:
    first = SimulatedExplorer(options(tmp_path / "a"), reset_breaks_recovery)
    second = SimulatedExplorer(options(tmp_path / "b"), reset_breaks_recovery)
    first.run(), second.run()
    assert [t.schedule.key() for t in first.trials] == [t.schedule.key() for t in second.trials]


def test_a_minimal_schedule_that_does_not_reproduce_is_traded_for_the_one_before(tmp_path: Path) -> None:
    reset = Fault("network.reset_peer", 1.0, 1.0, {"timeout_ms": 0, "stream": "downstream", "toxicity": 1.0})
    fail = Fault("service.failure_rate", 2.0, 1.0, {"rate": 1.0, "error": "exception"})
    original = Schedule(faults=(reset, fail), stack=DEFAULT_STACKS[0], seed=3)
    lucky = {"used": False}

    def oracle(schedule: Schedule, n: int) -> dict[str, list[str]]:
        # violated while the reset has company; once (a lucky run) with the reset alone
        alone = kinds_of(schedule) == {"network.reset_peer"}
        if alone and not lucky["used"]:
            lucky["used"] = True
            return {"recovers_after_faults": ["ConnectionError"]}
        if {"network.reset_peer", "service.failure_rate"} <= kinds_of(schedule):
            return {"recovers_after_faults": ["ConnectionError"]}
        return {}

    explorer = SimulatedExplorer(options(tmp_path, budget_s=1000.0), oracle)
    explorer.started = 0.0
    (tmp_path / "trials").mkdir(parents=True)
    trial = explorer._run(original, "explore")
    explorer._pursue(trial)
    [finding] = explorer.findings
    assert finding["reproduction"] == {"reproduced": 3, "runs": 3, "rate": 1.0, "confirmed": True}
    assert sorted(f["kind"] for f in finding["minimal_schedule"]["faults"]) == [
        "network.reset_peer",
        "service.failure_rate",
    ]
    assert "reproduced 0/3; trying the schedule before it" in explorer.out.getvalue()


def test_nothing_violated_exits_0_and_an_unjudged_run_exits_2(tmp_path: Path) -> None:
    assert SimulatedExplorer(options(tmp_path / "clean", budget_s=60.0), lambda s, n: {}).run() == 0

    class Broken(SimulatedExplorer):
        def _execute(self, trial: Trial) -> None:
            self.clock_.now += RUN_S
            trial.status, trial.baseline_met = "completed", False
            trial.problems.append("the steady state before the method was not met")

    broken = Broken(options(tmp_path / "broken", budget_s=60.0), lambda s, n: {})
    assert broken.run() == 2
    assert "trials cannot run" in broken.out.getvalue()


def test_a_budget_too_small_for_one_run_runs_nothing(tmp_path: Path) -> None:
    explorer = SimulatedExplorer(options(tmp_path, budget_s=5.0), reset_breaks_recovery)
    assert explorer.run() == 2 and explorer.executed == []
    assert json.loads((tmp_path / "findings.json").read_text()) == []


def test_an_invariant_violated_only_while_shrinking_becomes_a_finding_too(tmp_path: Path) -> None:
    def oracle(schedule: Schedule, n: int) -> dict[str, list[str]]:
        if not schedule.faults:  # the system misbehaves on its own once the faults are gone
            return {"no_errors_without_faults": ["ConnectionClosedError"]}
        if "network.reset_peer" in kinds_of(schedule):
            return {"recovers_after_faults": ["ConnectionError"]}
        return {}

    explorer = SimulatedExplorer(options(tmp_path, budget_s=600.0), oracle)
    explorer.run()
    invariants = {f["invariant"] for f in json.loads((tmp_path / "findings.json").read_text())}
    assert "no_errors_without_faults" in invariants
    assert "violated on the way" in explorer.out.getvalue()


def test_one_idle_gap_trial_at_most(tmp_path: Path) -> None:
    explorer = SimulatedExplorer(options(tmp_path, budget_s=2000.0), lambda s, n: {})
    explorer.run()
    idle = [t for t in explorer.trials if "idle" in t.schedule.event_kinds]
    assert len(idle) == 1 and len(explorer.trials) > 100
