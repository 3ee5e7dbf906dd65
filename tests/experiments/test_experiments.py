"""Every experiment, on every transport it declares, gives the verdict recorded in it, for the same reasons.

The recorded verdicts are what agenkit 0.92.x did when we ran them (see
docs/FINDINGS.md), and beside each the names of what deviated (method
expectations, ``steady-state:<probe>``): a new deviation inside an
experiment already recorded as deviating is a change too. A difference means
agenkit, chaosagenkit or the machine changed behaviour, and must be looked
at, not papered over.
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
def test_experiment_gives_its_recorded_verdict(plan, tmp_path):
    if plan.skip_reason:
        pytest.skip(f"{plan.label}: {plan.skip_reason}")
    result, journal = run_plan(plan, tmp_path)
    assert plan.recorded in ("holds", "deviates"), f"{plan.label} has no recorded verdict"
    assert result.verdict == plan.recorded, f"{plan.label}: {result.detail}"
    assert observed_deviations(journal) == recorded_deviations(plan), f"{plan.label}: {result.detail}"
    assert_nothing_left_behind(journal)
