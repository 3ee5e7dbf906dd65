"""Journals as JUnit XML, the test-results format every CI system reads.

Mapping, stated once (docs/reports.md repeats it for users):

- one ``<testsuite>`` per journal, named by its stable id ``<experiment
  file>.<transport>`` (``retry.tcp``, not the title, so CI tracks it across
  title changes); properties carry title, verdict, reason, status, seed,
  plan, journal path and what was tested (agent, answer check, overrides,
  versions);
- one ``<testcase>`` per steady-state probe (before, after), per method
  activity and per rollback, with the journal's own duration;
- a probe outside its tolerance is a ``<failure>`` whose message holds the
  value and the tolerance; an activity that raised, or never finished, is an
  ``<error>``; declared but never run is ``<skipped>``, and so is a method
  expectation nobody checked;
- a run that was interrupted, aborted, has no status or left no journal
  gets an ``<error>`` on a testcase named ``experiment run`` (a run
  skipped on purpose gets ``<skipped>`` there); that testcase also carries a
  failed or deviated verdict that no other testcase shows (a deviation
  during the method, a failure with no probe to blame), so every verdict
  other than holds is visible as at least one failure or error;
- ``against_recorded``: a deviation exactly as recorded (verdict and set of
  deviations) is a known finding: its unmet tolerances and the ``experiment
  run`` testcase are ``<skipped>`` with the finding as message, not
  failures; a run that differs from its record gets a ``<failure
  type="DiffersFromRecord">`` on ``experiment run`` saying how.

The output follows the Ant/Jenkins ``junit-10.xsd`` shape (checked against
``tests/fixtures/junit-10.xsd``): times are plain decimals in seconds,
timestamps ISO 8601 in UTC without zone suffix.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC
from pathlib import Path

from chaosagenkit.report.model import ExperimentResult, RunEntry
from chaosagenkit.report.text import checked_value, is_expected, tolerance_text, value_text
from chaosagenkit.verdict import Verdict

__all__ = ["RUN_TESTCASE", "junit_xml", "write_junit"]

RUN_TESTCASE = "experiment run"

_PHASE_PREFIX = {
    "before": "steady-state before",
    "after": "steady-state after",
    "method": "method",
    "rollback": "rollback",
}
# characters XML 1.0 cannot carry at all, even escaped
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def junit_xml(results: list[ExperimentResult], against_recorded: bool = False) -> str:
    """The JUnit XML document for ``results``, one testsuite each."""
    root = ET.Element("testsuites", name="chaosagenkit")
    totals: Counter[str] = Counter()
    total_time = 0.0
    for result in results:
        suite = _suite(result, against_recorded)
        root.append(suite)
        for key in ("tests", "failures", "errors"):
            totals[key] += int(suite.get(key, "0"))
        total_time += result.duration_s or 0.0
    for key in ("tests", "failures", "errors"):
        root.set(key, str(totals[key]))
    root.set("time", _seconds(total_time))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(results: list[ExperimentResult], path: Path, against_recorded: bool = False) -> Path:
    path.write_text(junit_xml(results, against_recorded), encoding="utf-8")
    return path


def _suite(result: ExperimentResult, against_recorded: bool) -> ET.Element:
    suite = ET.Element("testsuite", name=_clean(result.test_id))
    if result.duration_s is not None:
        suite.set("time", _seconds(result.duration_s))
    if result.start is not None:
        suite.set("timestamp", result.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    if result.node:
        suite.set("hostname", _clean(result.node))
    if result.source:
        suite.set("file", _clean(result.source))
    suite.append(_properties(result, against_recorded))

    expected = is_expected(result, against_recorded)
    cases = [_testcase(result, e, expected) for e in [*result.before, *result.method]]
    if result.during_iterations:
        cases.append(_during(result))
    cases += [_testcase(result, e, expected) for e in [*result.after, *result.rollbacks]]
    run_case = _run_testcase(result, cases, against_recorded)
    if run_case is not None:
        cases.insert(0, run_case)
    _make_names_unique(cases)

    counts = Counter(child.tag for case in cases for child in case)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(counts["failure"]))
    suite.set("errors", str(counts["error"]))
    suite.set("skipped", str(counts["skipped"]))
    suite.extend(cases)
    out = [result.verdict_sentence, *(f"warning: {w}" for w in result.warnings)]
    ET.SubElement(suite, "system-out").text = _clean("\n".join(out))
    return suite


def _properties(result: ExperimentResult, against_recorded: bool) -> ET.Element:
    props = {
        "id": result.test_id,
        "title": result.title,
        "verdict": result.verdict.value,
        "reason": result.judgement.reason,
        "deviations": ", ".join(result.judgement.deviations),
        "status": result.status or "",
        "deviated": str(result.deviated).lower(),
    }
    if result.source:
        props["journal"] = result.source
    if result.transport:
        props["transport"] = result.transport
    if result.run is not None and result.run.seed is not None:
        props["seed"] = str(result.run.seed)
    if result.plan is not None and result.plan.plan:
        props["plan"] = result.plan.plan
    props.update({name.replace(" ", "_"): value for name, value in result.tested_with})
    if result.recorded_verdict is not None:
        props["recorded_verdict"] = result.recorded_verdict
        props["observed_verdict"] = result.observed_verdict
        if result.recorded_deviations is not None:
            props["recorded_deviations"] = ", ".join(result.recorded_deviations)
        if against_recorded:
            props["against_recorded"] = result.comparison.outcome
    element = ET.Element("properties")
    for name, value in props.items():
        ET.SubElement(element, "property", name=name, value=_clean(value))
    return element


def _testcase(result: ExperimentResult, entry: RunEntry, expected: bool = False) -> ET.Element:
    prefix = _PHASE_PREFIX.get(entry.phase, entry.phase)
    case = ET.Element("testcase", classname=_clean(result.test_id), name=_clean(f"{prefix}: {entry.name}"))
    if entry.duration_s is not None:
        case.set("time", _seconds(entry.duration_s))
    match entry.outcome:
        case "not met" if expected:
            label, value = checked_value(entry)
            finding = result.recorded_finding or "deviates as recorded"
            _child(
                case,
                "skipped",
                None,
                f"expected deviation ({finding}): {label} = {value_text(value)}, "
                f"outside tolerance {tolerance_text(entry.tolerance)}",
            )
        case "not met":
            label, value = checked_value(entry)
            _child(
                case,
                "failure",
                "ToleranceNotMet",
                f"{label} = {value_text(value)}, outside tolerance {tolerance_text(entry.tolerance)}",
                f"output: {value_text(entry.output, 4000)}\ntolerance: {value_text(entry.tolerance, 4000)}",
            )
        case "error":
            error = entry.error or "failed (the journal records no exception)"
            _child(case, "error", _exception_type(error), error, entry.traceback or error)
        case "did not finish":
            _child(
                case,
                "error",
                "Unfinished",
                f"started but never finished: the run was {result.status or 'cut short'}",
            )
        case "not run":
            reason = result.verdict.label if result.verdict.exit_code else "the run took another path"
            _child(case, "skipped", None, f"not run ({reason})")
        case "not checked":
            _child(case, "skipped", None, "tolerance not checked: the journal records no tolerance_met")
        case _:
            if entry.kind == "probe" or entry.output is not None:
                ET.SubElement(case, "system-out").text = _clean(f"output: {value_text(entry.output, 4000)}")
    return case


def _during(result: ExperimentResult) -> ET.Element:
    case = ET.Element("testcase", classname=_clean(result.test_id), name="steady-state during method")
    if result.during_not_met:
        _child(
            case,
            "failure",
            "ToleranceNotMet",
            f"the steady state failed {result.during_not_met} of {result.during_iterations} checks",
        )
    return case


def _run_testcase(
    result: ExperimentResult, cases: list[ET.Element], against_recorded: bool
) -> ET.Element | None:
    shown = {child.tag for case in cases for child in case}
    verdict = result.verdict
    case = ET.Element("testcase", classname=_clean(result.test_id), name=RUN_TESTCASE)
    if result.duration_s is not None:
        case.set("time", _seconds(result.duration_s))
    if verdict == Verdict.SKIPPED:
        _child(case, "skipped", None, result.verdict_sentence)
        return case
    if is_expected(result, against_recorded):
        _child(case, "skipped", None, f"expected deviation: {result.comparison.message}")
        return case
    if against_recorded and result.comparison.outcome == "differs":
        _child(case, "failure", "DiffersFromRecord", result.comparison.message, result.verdict_sentence)
        return case
    needed = (
        verdict in (Verdict.INTERRUPTED, Verdict.ABORTED, Verdict.BASELINE_NOT_MET)
        or (verdict == Verdict.FAILED and "error" not in shown)
        or (verdict == Verdict.DEVIATES and "failure" not in shown)
    )
    if not needed:
        return None
    tag = "failure" if verdict.exit_code == 1 else "error"
    _child(case, tag, verdict.label.title().replace(" ", ""), result.verdict_sentence)
    return case


def _child(case: ET.Element, tag: str, kind: str | None, message: str, body: str | None = None) -> None:
    element = ET.SubElement(case, tag, message=_clean(message))
    if kind:
        element.set("type", kind)
    if body:
        element.text = _clean(body)


def _make_names_unique(cases: list[ET.Element]) -> None:
    seen: Counter[str] = Counter()
    for case in cases:
        name = case.get("name", "")
        seen[name] += 1
        if seen[name] > 1:
            case.set("name", f"{name} #{seen[name]}")


def _exception_type(line: str) -> str:
    """``ActivityFailed`` from ``chaoslib.exceptions.ActivityFailed: ...``."""
    head = line.split(":", 1)[0].strip()
    return head.rsplit(".", 1)[-1] if re.fullmatch(r"[\w.]+", head) else "Error"


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _clean(text: str) -> str:
    return _ILLEGAL_XML.sub("\ufffd", text)
