"""Reports for CI: what was tested, known findings as expected, stable ids, journals of earlier runs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from chaosagenkit.report import earlier_runs, write_reports
from chaosagenkit.report.junit import RUN_TESTCASE, junit_xml
from chaosagenkit.report.markdown import markdown_summary
from chaosagenkit.report.model import read_result
from tests.report import journals as builders


def recorded(data: dict, verdict: str, deviations: list[str] | None, finding: str = "agenkit does X") -> dict:
    """The journal's experiment records ``verdict`` (and ``deviations``) for tcp."""
    extension = next(e for e in data["experiment"]["extensions"] if e["name"] == "chaosagenkit")
    extension.update(verdicts={"tcp": verdict}, findings={"tcp": finding})
    if deviations is not None:
        extension["deviations"] = {"tcp": deviations}
    return data


def suite_of(xml: str) -> ET.Element:
    (suite,) = ET.fromstring(xml).findall("testsuite")
    return suite


def test_a_deviation_as_recorded_is_an_expected_finding_not_a_failure(journal):
    result = read_result(recorded(journal("deviated_expectation"), "deviates", ["circuit-state"]), "j.json")
    assert result.comparison.outcome == "expected"
    suite = suite_of(junit_xml([result], against_recorded=True))
    assert suite.get("failures") == "0" and suite.get("errors") == "0"
    run_case = next(c for c in suite.findall("testcase") if c.get("name") == RUN_TESTCASE)
    assert run_case.find("skipped").get("message") == "expected deviation: known finding: agenkit does X"
    unmet = next(c for c in suite.findall("testcase") if c.get("name") == "method: circuit-state")
    assert (
        unmet.find("skipped").get("message").startswith("expected deviation (agenkit does X): circuit-state")
    )
    md = markdown_summary([result], against_recorded=True)
    assert "≈ deviates (expected)" in md and "**1 experiment:** 1 deviates (expected)" in md
    # without --against-recorded the same journal is a plain deviation
    assert suite_of(junit_xml([result])).get("failures") == "1"
    assert "✘ deviates" in markdown_summary([result])


def test_a_deviation_only_in_an_expectation_recorded_as_unstable_is_expected_and_says_so(journal):
    data = recorded(journal("deviated_expectation"), "holds", None)
    extension = next(e for e in data["experiment"]["extensions"] if e["name"] == "chaosagenkit")
    extension["unstable"] = {"tcp": {"circuit-state": "a race traced to X"}}
    result = read_result(data, "j.json")
    assert result.comparison.outcome == "unstable"
    suite = suite_of(junit_xml([result], against_recorded=True))
    assert suite.get("failures") == "0" and suite.get("errors") == "0"
    run_case = next(c for c in suite.findall("testcase") if c.get("name") == RUN_TESTCASE)
    assert "circuit-state, missed this time, recorded as unstable: a race traced to X" in (
        run_case.find("skipped").get("message")
    )
    assert "≈ deviates (expected)" in markdown_summary([result], against_recorded=True)
    extension["unstable"] = {"http": {"circuit-state": "only over http"}}  # not this transport's
    assert read_result(data, "j.json").comparison.outcome == "differs"


def test_a_new_deviation_inside_a_known_one_is_a_failure_naming_it(journal):
    data = recorded(journal("deviated_expectation"), "deviates", ["steady-state:success-rate"])
    result = read_result(data, "j.json")
    assert result.comparison.outcome == "differs"
    suite = suite_of(junit_xml([result], against_recorded=True))
    run_case = next(c for c in suite.findall("testcase") if c.get("name") == RUN_TESTCASE)
    failure = run_case.find("failure")
    assert failure.get("type") == "DiffersFromRecord"
    assert "new: circuit-state" in failure.get("message")
    assert "no longer: steady-state:success-rate" in failure.get("message")


def test_reports_name_what_was_tested(journal):
    run = builders.experiment(
        "Bounded latency",
        [builders.probe("p95", 120, "${steady_p95_ms}")],
        [builders.probe("fast", 3, [0, 5])],
    )
    run["configuration"].update(steady_p95_ms=[0, 250], api_key="k", count=3)
    data = builders.run(run, experiment_vars=({"count": 4, "steady_p95_ms": [0, 300]}, {}))
    result = read_result(data, "bounded.tcp.json")
    facts = dict(result.tested_with)
    assert facts["transport"] == "tcp"
    assert facts["overridden"] == "steady_p95_ms=[0, 300], count=4"
    assert "agenkit 0.92" in facts["versions"] and "python 3." in facts["versions"]
    (p95,) = result.before
    assert p95.tolerance == [0, 300] and p95.declared_tolerance == "${steady_p95_ms}"  # resolved
    md = markdown_summary([result])
    assert "between 0 and 300" in md and "steady\\_p95\\_ms}" not in md
    assert "tested with: transport tcp · overridden steady\\_p95\\_ms=\\[0, 300\\], count=4" in md
    assert "api_key" not in json.dumps(data["extensions"])
    props = {p.get("name"): p.get("value") for p in suite_of(junit_xml([result])).find("properties")}
    assert props["id"] == "bounded.tcp" and props["overridden"] == "steady_p95_ms=[0, 300], count=4"
    assert props["versions"].startswith("chaosagenkit ")


def test_the_markdown_clients_table_counts_wrong_answers(journal):
    data = builders.add_traffic(journal("held"), seed=1, duration_s=4, rate_per_s=10)
    ext = next(e for e in data["extensions"] if e["name"] == "chaosagenkit")
    (client,) = ext["clients"].values()
    client["outcomes"]["wrong"] = [1 if i < 3 else 0 for i in range(len(client["outcomes"]["t"]))]
    client["outcomes"]["ok"] = [1] * len(client["outcomes"]["t"])
    md = markdown_summary([read_result(data, "j.json")])
    header = next(line for line in md.splitlines() if line.startswith("| Client |"))
    assert header.split(" | ")[4] == "Wrong answers"
    row = next(line for line in md.splitlines() if line.startswith("| caller |"))
    assert row.split(" | ")[4] == "3"


def test_a_report_over_a_folder_warns_about_journals_of_earlier_runs(journal, tmp_path):
    folder = tmp_path / "journals"
    folder.mkdir()
    for name, suite, start in (("a", "run-1", "2026-01-01T10:00:00"), ("b", "run-2", "2026-01-02T10:00:00"),
                               ("c", "run-2", "2026-01-02T10:01:00")):  # fmt: skip
        data = journal("held")
        data["start"] = start
        ext = next(e for e in data["extensions"] if e["name"] == "chaosagenkit")
        ext["suite"] = {"id": suite}
        (folder / f"{name}.tcp.json").write_text(json.dumps(data))
    from chaosagenkit.report import load_results

    (warning,) = earlier_runs(load_results([folder]))
    assert warning.startswith("1 of 3 journals are not from the latest run (run-2): a.tcp.json")
    paths = write_reports([folder], tmp_path / "r")
    assert (
        "> warning: 1 of 3 journals" not in (tmp_path / "r" / "summary.md").read_text()
    )  # API: caller's call
    from click.testing import CliRunner

    from chaosagenkit.report.cli import report

    done = CliRunner().invoke(report, [str(folder), "--markdown", str(tmp_path / "s.md")])
    assert "warning: 1 of 3 journals are not from the latest run" in done.output
    assert "> warning: 1 of 3 journals" in (tmp_path / "s.md").read_text()
    assert paths["junit"]
