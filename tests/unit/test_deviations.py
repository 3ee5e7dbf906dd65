"""The names of what deviated, read from a journal (the experiments' recorded ``deviations`` format)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from tests.experiments.conftest import observed_deviations

JOURNALS = Path(__file__).resolve().parents[1] / "fixtures" / "journals"


def test_an_unmet_method_expectation_is_named():
    journal = json.loads((JOURNALS / "deviated-expectation.json").read_text())
    assert observed_deviations(journal) == ["circuit-state"]


def test_a_steady_state_probe_is_named_with_its_phase_prefix():
    journal = json.loads((JOURNALS / "deviated-expectation.json").read_text())
    journal = copy.deepcopy(journal)
    journal["steady_states"]["after"]["probes"][0]["tolerance_met"] = False
    assert observed_deviations(journal) == ["circuit-state", "steady-state:success-rate"]


def test_a_held_journal_has_no_deviations():
    assert observed_deviations(json.loads((JOURNALS / "held-with-traffic.json").read_text())) == []
