"""JUnit XML: valid against the junit-10 schema, and what CI shows is what the journal says."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import xmlschema

from chaosagenkit.report.junit import RUN_TESTCASE, junit_xml
from chaosagenkit.report.model import read_result
from tests.report import journals as builders
from tests.report.conftest import FIXTURES, KINDS

SCHEMA = xmlschema.XMLSchema(str(FIXTURES / "junit-10.xsd"))


def suites_of(xml: str) -> dict[str, ET.Element]:
    SCHEMA.validate(xml)  # raises with the offending path when invalid
    root = ET.fromstring(xml)
    assert root.tag == "testsuites"
    return {s.get("name"): s for s in root.findall("testsuite")}


def cases(suite: ET.Element) -> dict[str, ET.Element]:
    return {c.get("name"): c for c in suite.findall("testcase")}


def outcome(case: ET.Element) -> str:
    tags = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
    return tags[0] if tags else "passed"


def properties(suite: ET.Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in suite.find("properties")}


def test_schema_rejects_what_ci_tools_reject():
    # the schema is a real check: each of these breaks a rule CI tools rely on
    for bad in (
        "<testsuites><testsuite name='x' tests='1' failures='0'/></testsuites>",  # no errors count
        "<testsuites><testsuite name='x' tests='1' failures='0' errors='0' time='1e-3'/></testsuites>",
        "<testsuites><testsuite name='x' tests='1' failures='0' errors='0'><testcase/></testsuite></testsuites>",
        "<testsuites><testsuite name='x' tests='0' failures='0' errors='0' timestamp='2024-01-01T00:00:00+00:00'/>"
        "</testsuites>",
    ):
        assert not SCHEMA.is_valid(bad), bad


def test_every_kind_of_journal_gives_valid_junit(journal):
    results = [read_result(journal(kind), f"{kind}.json") for kind in KINDS]
    xml = junit_xml(results)
    root = ET.fromstring(xml)
    SCHEMA.validate(xml)
    suites = root.findall("testsuite")
    assert len(suites) == len(KINDS)
    for suite in suites:  # counts match the test cases, as CI tools trust the counts
        found = [outcome(c) for c in suite.findall("testcase")]
        assert int(suite.get("tests")) == len(found)
        assert int(suite.get("failures")) == found.count("failure")
        assert int(suite.get("errors")) == found.count("error")
        assert int(suite.get("skipped")) == found.count("skipped")
    assert int(root.get("tests")) == sum(int(s.get("tests")) for s in suites)


def test_held_run_passes_with_one_case_per_probe_and_activity(journal):
    result = read_result(journal("held"), "held.json")
    (suite,) = suites_of(junit_xml([result])).values()
    assert suite.get("name") == "retry_under_transient_failures.tcp"  # stable: not the title
    assert properties(suite)["title"] == "Retry under transient failures"
    assert {n: outcome(c) for n, c in cases(suite).items()} == {
        "steady-state before: success-rate": "passed",
        "method: inject-failures": "passed",
        "method: retries-absorbed-failures": "passed",
        "method: clear-faults": "passed",
        "steady-state after: success-rate": "passed",
    }
    props = properties(suite)
    assert props["verdict"] == "holds" and props["status"] == "completed" and props["plan"] == "3.2"
    assert props["seed"] == str(result.run.seed) and props["journal"] == "held.json"
    assert props["recorded_verdict"] == props["observed_verdict"] == "holds"
    case = cases(suite)["method: retries-absorbed-failures"]
    assert case.get("time") == f"{result.method[1].duration_s:.3f}"
    assert case.find("system-out").text == "output: 0.98"


def test_deviated_probe_is_a_failure_with_value_and_tolerance(journal):
    (suite,) = suites_of(junit_xml([read_result(journal("deviated_expectation"), "d.json")])).values()
    failure = cases(suite)["method: circuit-state"].find("failure")
    assert failure.get("type") == "ToleranceNotMet"
    assert '"closed"' in failure.get("message") and '"open"' in failure.get("message")
    assert int(suite.get("failures")) == 1 and int(suite.get("errors")) == 0
    assert RUN_TESTCASE not in cases(suite)  # the probe already carries the deviation


def test_after_hypothesis_deviation_fails_the_after_probe(journal):
    (suite,) = suites_of(junit_xml([read_result(journal("deviated_after"), "d.json")])).values()
    failure = cases(suite)["steady-state after: target-answers"].find("failure")
    assert "false" in failure.get("message") and "outside tolerance true" in failure.get("message")
    assert outcome(cases(suite)["steady-state before: target-answers"]) == "passed"


@pytest.mark.parametrize("kind", ["aborted", "interrupted", "interrupted_by_control"])
def test_aborted_and_interrupted_runs_are_errors(journal, kind):
    (suite,) = suites_of(junit_xml([read_result(journal(kind), "j.json")])).values()
    run = cases(suite)[RUN_TESTCASE]
    error = run.find("error")
    assert error is not None and error.get("type") == kind.split("_")[0].title()
    assert int(suite.get("errors")) >= 1
    assert next(iter(cases(suite))) == RUN_TESTCASE


def test_failed_probe_is_an_error_with_its_traceback(journal):
    (suite,) = suites_of(junit_xml([read_result(journal("failed"), "f.json")])).values()
    error = cases(suite)["steady-state before: answers"].find("error")
    assert error.get("message") == "RuntimeError: backend unreachable"
    assert error.get("type") == "RuntimeError"
    assert "backend unreachable" in error.text
    assert RUN_TESTCASE not in cases(suite)  # the probe carries it
    assert outcome(cases(suite)["steady-state after: answers"]) == "skipped"
    assert outcome(cases(suite)["method: inject-malformed"]) == "skipped"


def test_interrupted_run_keeps_unfinished_and_not_run_entries_visible(journal):
    (suite,) = suites_of(junit_xml([read_result(journal("interrupted"), "i.json")])).values()
    found = {n: outcome(c) for n, c in cases(suite).items()}
    assert found["method: stop"] == "error"
    assert "never finished" in cases(suite)["method: stop"].find("error").get("message")
    assert found["method: errors-seen"] == "skipped"
    assert found["rollback: clear-faults"] == "skipped"
    assert "rollbacks not played" in suite.find("system-out").text


def test_deviation_during_the_method_without_a_failing_probe_gets_the_run_case(journal):
    data = journal("held")
    data["steady_states"]["during"] = [{"steady_state_met": False, "probes": []}]
    data["deviated"] = True
    (suite,) = suites_of(junit_xml([read_result(data, "j.json")])).values()
    assert outcome(cases(suite)["steady-state during method"]) == "failure"
    # the during case carries the failure, so no extra run case is needed
    assert RUN_TESTCASE not in cases(suite)


def test_repeated_activity_names_get_unique_case_names_and_text_is_xml_safe(journal):
    data = journal("plain")
    data["run"].append(dict(data["run"][0]))
    data["run"][1]["output"] = "bell \x07 and nul \x00 and <tag> & 'quotes'"
    data["experiment"]["title"] = "T\x01 <&>"
    xml = junit_xml([read_result(data, "j.json")])
    (suite,) = suites_of(xml).values()  # parses and validates: no illegal character leaked
    names = list(cases(suite))
    assert "method: do-something" in names and "method: do-something #2" in names
    assert "<tag> & 'quotes'" in cases(suite)["method: look-around"].find("system-out").text
    assert properties(suite)["title"] == "T\ufffd <&>"


def test_timestamp_duration_and_host_come_from_the_journal(journal):
    data = builders.add_traffic(journal("held"), duration_s=12.5)
    result = read_result(data, "j.json")
    (suite,) = suites_of(junit_xml([result])).values()
    assert suite.get("time") == "12.500"
    assert suite.get("timestamp") == result.start.strftime("%Y-%m-%dT%H:%M:%S")
    assert suite.get("hostname") == data["node"]


def test_missing_durations_are_left_out_not_made_up(journal):
    data = journal("held")
    del data["duration"]
    for run in data["run"]:
        del run["duration"]
    (suite,) = suites_of(junit_xml([read_result(data, "j.json")])).values()
    assert suite.get("time") is None
    assert all(c.get("time") is None for n, c in cases(suite).items() if n.startswith("method"))
