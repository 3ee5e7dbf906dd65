"""Every experiment, on every transport it declares, gives the verdict and deviations recorded in it.

The golden master: the recorded verdict and, for a deviating transport, the
names of the expectations and steady-state probes that deviate
(``"deviations"`` in the experiment's extension), so a new deviation inside
an experiment already recorded as deviating is caught. A deviating transport
whose deviations are not recorded yet is said (printed), not failed. The
recorded verdicts are what agenkit 0.92.x did when we ran them (see
docs/FINDINGS.md); a difference means agenkit, chaosagenkit or the machine
changed behaviour, and must be looked at, not papered over.

`make demo` (`chaosagenkit run experiments --against-recorded`) checks the
same for every run (the same comparison, ``chaosagenkit.verdict.compare``,
and ``chaosagenkit.suite.left_behind``), so `make test` leaves this module
out and CI runs the 48 runs once.
"""

from __future__ import annotations

import pytest

from tests.experiments.conftest import (
    assert_nothing_left_behind,
    experiment_plans,
    observed_deviations,
    recorded_deviations,
    run_plan,
)


@pytest.mark.parametrize("plan", experiment_plans())
def test_experiment_gives_its_recorded_verdict_and_deviations(plan, tmp_path):
    if plan.skip_reason:
        pytest.skip(f"{plan.label}: {plan.skip_reason}")
    result, journal = run_plan(plan, tmp_path)
    assert plan.recorded in ("holds", "deviates"), f"{plan.label} has no recorded verdict"
    comparison = result.comparison
    assert comparison.outcome in ("same", "expected", "not recorded"), f"{plan.label}: {comparison.message}"
    if comparison.outcome == "not recorded":
        print(f"{plan.label}: {comparison.message}")
    assert not result.extra.get("left_behind"), result.extra["left_behind"]
    assert_nothing_left_behind(journal)
