"""Journals read into results: verdicts, phases, what is missing, the chaosagenkit extension."""

from __future__ import annotations

import pytest

from chaosagenkit.report import suite_exit_code
from chaosagenkit.report.model import Verdict, read_result
from chaosagenkit.report.outcomes import parse_client
from tests.report import journals as builders

EXPECTED = [
    ("held", Verdict.HOLDS, "completed"),
    ("deviated_after", Verdict.DEVIATES, "completed"),
    ("deviated_expectation", Verdict.DEVIATES, "completed"),
    # chaoslib says "completed", not deviated; chaosagenkit's control marks it failed (chaos run exits 1)
    ("baseline_not_met", Verdict.BASELINE_NOT_MET, "failed"),
    ("failed", Verdict.FAILED, "failed"),
    ("aborted", Verdict.ABORTED, "aborted"),
    ("interrupted", Verdict.INTERRUPTED, "interrupted"),
    ("interrupted_by_control", Verdict.INTERRUPTED, "interrupted"),
    ("plain", Verdict.HOLDS, "completed"),
]


@pytest.mark.parametrize("kind, verdict, status", EXPECTED, ids=[e[0] for e in EXPECTED])
def test_verdict_of_each_real_journal(journal, kind, verdict, status):
    data = journal(kind)
    assert data["status"] == status  # chaoslib really ended the run this way
    result = read_result(data, f"{kind}.json")
    assert result.verdict == verdict
    assert result.verdict_sentence


def test_deviated_by_expectation_shows_the_unmet_expectation(journal):
    result = read_result(journal("deviated_expectation"), "j.json")
    (expectation,) = result.expectations
    assert (expectation.name, expectation.output, expectation.tolerance) == (
        "circuit-state",
        "closed",
        "open",
    )
    assert expectation.outcome == "not met"
    assert [e.name for e in result.decisive()] == ["circuit-state"]
    assert "circuit-state" in result.verdict_sentence
    assert result.recorded_verdict == "holds" and result.observed_verdict == "deviates"


def test_held_run_reports_expectation_values_as_decisive(journal):
    result = read_result(journal("held"), "j.json")
    assert [(e.name, e.outcome) for e in result.decisive()] == [("retries-absorbed-failures", "met")]
    assert result.plan.plan == "3.2" and result.transport == "tcp"
    assert result.recorded_verdict == "holds"
    assert result.run.seed is not None and result.run.version == "0.1.0"


def test_failed_probe_keeps_the_exception_line_without_chaoslib_wrapper(journal):
    result = read_result(journal("failed"), "j.json")
    (before,) = result.before
    assert before.outcome == "error"
    assert before.error == "RuntimeError: backend unreachable"
    assert "Traceback" in before.traceback or "ActivityFailed" in before.traceback
    assert [e.outcome for e in result.after] == ["not run"]
    assert [e.outcome for e in result.method] == ["not run"]


def test_interrupted_run_shows_unfinished_and_unplayed_entries(journal):
    result = read_result(journal("interrupted"), "j.json")
    assert [e.outcome for e in result.method] == ["succeeded", "did not finish", "not run"]
    assert [e.outcome for e in result.after] == ["not run"]
    assert any("rollbacks not played: clear-faults" in w for w in result.warnings)
    assert "Interrupted (Ctrl-C, a termination signal" in result.verdict_sentence
    # the fault injected before the interruption is still a window, until the run's end
    (window,) = result.windows
    assert (window.target, window.kind, window.ended_by) == ("target_proxy", "reset_peer", "run ended")
    assert window.end == result.end.timestamp()


def test_interruption_reason_is_read_when_the_journal_records_one(journal):
    data = journal("interrupted_by_control")
    data["interruption"] = {"kind": "control", "name": "chaosagenkit", "reason": "no sandbox"}
    result = read_result(data, "j.json")
    assert "chaosagenkit: no sandbox" in result.verdict_sentence


def test_plain_journal_has_no_invented_extension_data(journal):
    result = read_result(journal("plain"), "j.json")
    assert result.run is None and result.windows == [] and result.plan is None
    assert result.transport is None and result.name == "Plain experiment"
    look = result.method[1]
    assert (look.kind, look.output, look.has_tolerance) == ("probe", {"items": 3}, False)
    assert result.expectations == []


def test_method_probe_tolerance_without_a_check_is_not_checked(journal):
    data = journal("plain")
    data["run"][1]["activity"]["tolerance"] = {"type": "jsonpath", "path": "$.items", "expect": 3}
    result = read_result(data, "j.json")
    assert result.method[1].outcome == "not checked"
    assert result.verdict == Verdict.HOLDS  # nothing unmet: the journal's verdict stands
    assert "every method expectation was met" not in result.verdict_sentence
    assert "0 of 1 method expectations were checked and met" in result.verdict_sentence
    assert "method expectations not checked: look-around" in result.warnings


def test_the_held_sentence_claims_met_expectations_only_when_they_were_met(journal):
    assert "every method expectation was met" in read_result(journal("held"), "j.json").verdict_sentence
    plain = read_result(journal("plain"), "j.json")
    assert (plain.verdict, plain.verdict_sentence) == (
        Verdict.HOLDS,
        "The steady state held before and after; the method has no expectation.",
    )


def test_an_expectation_that_raised_failed_the_run_it_never_held(journal):
    data = journal("plain")  # a journal without chaosagenkit's control: nobody marked tolerance_met
    data["run"][1]["activity"]["tolerance"] = {"type": "jsonpath", "path": "$.items", "expect": 3}
    data["run"][1].update(status="failed", output=None, exception=["RuntimeError: no answer\n"])
    assert (data["status"], data.get("deviated")) == ("completed", False)  # chaoslib's own status stands
    result = read_result(data, "j.json")
    assert result.method[1].outcome == "error"
    assert result.verdict == Verdict.FAILED
    assert result.verdict_sentence == "Method probe: look-around raised: RuntimeError: no answer."


def test_expectation_met_is_taken_from_the_extension_when_the_entry_lacks_it(journal):
    data = journal("deviated_expectation")
    del data["run"][1]["tolerance_met"]
    result = read_result(data, "j.json")
    assert result.expectations[0].tolerance_met is False


def test_no_steady_state_and_no_expectation_is_a_failure_not_held(journal):
    data = journal("plain")
    del data["experiment"]["steady-state-hypothesis"]
    data["steady_states"] = {"before": None, "after": None, "during": []}
    result = read_result(data, "j.json")
    assert result.verdict == Verdict.FAILED
    assert "Nothing was checked" in result.verdict_sentence


def test_deviation_during_the_method_counts(journal):
    data = journal("held")
    data["steady_states"]["during"] = [{"steady_state_met": True, "probes": []},
                                       {"steady_state_met": False, "probes": []}]  # fmt: skip
    result = read_result(data, "j.json")
    assert (result.during_iterations, result.during_not_met) == (2, 1)
    assert result.verdict == Verdict.DEVIATES


def test_missing_status_is_unknown_and_missing_fields_stay_missing():
    result = read_result({"experiment": {"title": "t"}, "start": "not a time"}, "j.json")
    assert result.verdict == Verdict.FAILED
    assert result.start is None and result.duration_s is None and result.before == []
    assert "no final status" in result.verdict_sentence


def test_transport_comes_from_the_experiment_configuration_without_extension(journal):
    data = journal("plain")
    data["experiment"]["configuration"] = {"transport": "http"}
    assert read_result(data, "j.json").name == "Plain experiment [http]"


def test_exit_code_follows_the_worst_verdict(journal):
    results = {k: read_result(journal(k), k) for k in ("held", "deviated_after", "aborted")}
    assert suite_exit_code([results["held"]]) == 0
    assert suite_exit_code([results["held"], results["deviated_after"]]) == 1
    assert suite_exit_code(results.values()) == 2
    assert suite_exit_code([]) == 0


# -- client outcomes -----------------------------------------------------------------------


def test_traffic_outcomes_and_their_stats(journal):
    data = builders.add_traffic(journal("deviated_after"), seed=3, duration_s=20, rate_per_s=50)
    result = read_result(data, "j.json")
    (client,) = result.run.clients
    assert client.problem is None and len(client) > 500
    stats = result.client_stats(client)
    assert stats.requests == len(client) == stats.ok + stats.errors
    assert stats.error_kinds == {"ConnectionError": stats.errors}
    # the crash lasts until the run's end: nothing good inside it, everything good before
    assert stats.good_in_faults == 0.0 and stats.good_outside_faults == 1.0
    assert stats.requests_in_faults == stats.errors
    assert stats.latency_p50_ms <= stats.latency_p95_ms <= stats.latency_max_ms


@pytest.mark.parametrize(
    "record, problem",
    [
        ("junk", "not an object"),
        ({"t0": 1.0}, "no request outcomes recorded"),
        ({"t0": 1.0, "outcomes": {"t": [1], "ok": [1]}}, "missing: latency_ms"),
        ({"t0": 1.0, "outcomes": {"t": [1, 2], "latency_ms": [3], "ok": [1, 1]}}, "different lengths"),
        ({"t0": 1.0, "outcomes": {"t": ["x"], "latency_ms": [3], "ok": [1]}}, "not a number"),
        ({"outcomes": {"t": [1], "latency_ms": [3], "ok": [1]}}, "no 't0'"),
    ],
)
def test_unusable_client_records_say_why(record, problem):
    client = parse_client("caller", record)
    assert problem in client.problem


def test_optional_columns_stay_unknown_when_absent():
    client = parse_client("c", {"t0": 0.0, "outcomes": {"t": [1, 2], "latency_ms": [5, None], "ok": [1, 0]}})
    stats = client.stats([])
    assert client.problem is None and client.wrong is None and stats.wrong is None
    assert stats.error_kinds == {"unknown error": 1}
    assert stats.good_in_faults is None and stats.latency_max_ms == 5


def test_expectation_shows_the_tolerance_the_control_checked_and_the_value_it_targets():
    from chaosagenkit.report.text import entry_summary

    tolerance = {"type": "range", "target": "success_ratio", "range": "${expected_ratio}"}
    exp = builders.experiment("Half fail", [], [builders.probe("measured", {"sent": 200, "success_ratio": 0.5},
                                                                tolerance)])  # fmt: skip
    exp["configuration"]["expected_ratio"] = [0.4, 0.6]
    result = read_result(builders.run(exp), "j.json")
    (expectation,) = result.expectations
    assert expectation.tolerance_met is True
    assert expectation.tolerance == {"type": "range", "target": "success_ratio", "range": [0.4, 0.6]}
    assert expectation.declared_tolerance == tolerance
    assert entry_summary(expectation) == (
        "measured.success_ratio = 0.5 (expected between 0.4 and 0.6 of success_ratio: met)"
    )


@pytest.mark.parametrize(
    "value, text", [(None, "—"), (0.543, "0.54 ms"), (7.94, "7.9 ms"), (412.4, "412 ms")]
)
def test_latency_text(value, text):
    from chaosagenkit.report.text import ms_text

    assert ms_text(value) == text


def test_after_probe_raising_is_failed_although_chaoslib_also_marks_it_deviated():
    answers = builders.probe("answers", None, True, func="answer_or_raise")
    exp = builders.experiment(
        "Crash", [answers], [builders.action("crash", "record", event="crash", target="target")]
    )
    data = builders.run(exp)
    assert (data["status"], data["deviated"]) == ("failed", True)  # what chaoslib writes
    result = read_result(data, "j.json")
    # a probe that raised could not judge the system: like `chaos run --output agent` (probe-error)
    assert result.verdict == Verdict.FAILED and result.verdict.exit_code == 2
    assert [e.outcome for e in result.after] == ["error"]
    assert result.after[0].error == "ConnectionError: target does not answer"
