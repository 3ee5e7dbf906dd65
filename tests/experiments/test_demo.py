"""The demo experiment: its journal shows the failure ratio the caller measured."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosagenkit.suite import RunPlan
from tests.experiments.conftest import EXPERIMENTS, addresses_used, assert_nothing_left_behind, run_plan

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_service]


@pytest.mark.parametrize("transport", ["tcp", "http"])
def test_demo_journal_shows_failure_ratio_near_half(transport, tmp_path: Path):
    result, journal = run_plan(RunPlan(EXPERIMENTS / "demo.json", transport), tmp_path)
    assert journal["status"] == "completed" and journal["deviated"] is False, result.detail
    measured = next(r for r in journal["run"] if r["activity"]["name"] == "measured-success-ratio-near-half")
    assert measured["output"]["sent"] == 200
    assert 0.4 <= measured["output"]["success_ratio"] <= 0.6
    assert measured["tolerance_met"] is True
    stats = next(r for r in journal["run"] if r["activity"]["name"] == "host-counted-the-injected-failures")
    assert stats["output"]["requests"] >= 200
    assert len(addresses_used(journal)) >= 2  # the agent endpoint and the control API
    assert_nothing_left_behind(journal)


def test_demo_deviates_when_the_fault_is_stronger_than_expected(tmp_path: Path):
    """The expectation can fail: a 90% failure rate is not 'near half'."""
    result, journal = run_plan(RunPlan(EXPERIMENTS / "demo.json", "tcp"), tmp_path, failure_rate=0.9)
    assert result.verdict == "deviates"
    assert journal["run"][1]["tolerance_met"] is False
    assert_nothing_left_behind(journal)
