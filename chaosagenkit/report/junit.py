"""Journals as JUnit XML, the test-results format every CI system reads.

Mapping, stated once (docs/reports.md repeats it for users):

- one ``<testsuite>`` per journal, named after the experiment's title and
  transport; properties carry verdict, status, seed, plan and journal path;
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
  other than held/completed is visible as at least one failure or error.

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

from chaosagenkit.report.model import ExperimentResult, RunEntry, Verdict
from chaosagenkit.report.text import checked_value, tolerance_text, value_text

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


def junit_xml(results: list[ExperimentResult]) -> str:
    """The JUnit XML document for ``results``, one testsuite each."""
    root = ET.Element("testsuites", name="chaosagenkit")
    totals: Counter[str] = Counter()
    total_time = 0.0
    for result in results:
        suite = _suite(result)
        root.append(suite)
        for key in ("tests", "failures", "errors"):
            totals[key] += int(suite.get(key, "0"))
        total_time += result.duration_s or 0.0
    for key in ("tests", "failures", "errors"):
        root.set(key, str(totals[key]))
    root.set("time", _seconds(total_time))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(results: list[ExperimentResult], path: Path) -> Path:
    path.write_text(junit_xml(results), encoding="utf-8")
    return path


def _suite(result: ExperimentResult) -> ET.Element:
    suite = ET.Element("testsuite", name=_clean(result.name))
    if result.duration_s is not None:
        suite.set("time", _seconds(result.duration_s))
    if result.start is not None:
        suite.set("timestamp", result.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    if result.node:
        suite.set("hostname", _clean(result.node))
    if result.source:
        suite.set("file", _clean(result.source))
    suite.append(_properties(result))

    cases = [_testcase(result, e) for e in [*result.before, *result.method]]
    if result.during_iterations:
        cases.append(_during(result))
    cases += [_testcase(result, e) for e in [*result.after, *result.rollbacks]]
    run_case = _run_testcase(result, cases)
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


def _properties(result: ExperimentResult) -> ET.Element:
    props = {
        "verdict": result.verdict.value,
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
    if result.recorded_verdict is not None:
        props["recorded_verdict"] = result.recorded_verdict
        props["observed_verdict"] = result.observed_verdict
    element = ET.Element("properties")
    for name, value in props.items():
        ET.SubElement(element, "property", name=name, value=_clean(value))
    return element


def _testcase(result: ExperimentResult, entry: RunEntry) -> ET.Element:
    prefix = _PHASE_PREFIX.get(entry.phase, entry.phase)
    case = ET.Element("testcase", classname=_clean(result.name), name=_clean(f"{prefix}: {entry.name}"))
    if entry.duration_s is not None:
        case.set("time", _seconds(entry.duration_s))
    match entry.outcome:
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
            reason = result.verdict.value if result.verdict.severity else "the run took another path"
            _child(case, "skipped", None, f"not run ({reason})")
        case "not checked":
            _child(case, "skipped", None, "tolerance not checked: the journal records no tolerance_met")
        case _:
            if entry.kind == "probe" or entry.output is not None:
                ET.SubElement(case, "system-out").text = _clean(f"output: {value_text(entry.output, 4000)}")
    return case


def _during(result: ExperimentResult) -> ET.Element:
    case = ET.Element("testcase", classname=_clean(result.name), name="steady-state during method")
    if result.during_not_met:
        _child(
            case,
            "failure",
            "ToleranceNotMet",
            f"the steady state failed {result.during_not_met} of {result.during_iterations} checks",
        )
    return case


def _run_testcase(result: ExperimentResult, cases: list[ET.Element]) -> ET.Element | None:
    shown = {child.tag for case in cases for child in case}
    verdict = result.verdict
    if verdict == Verdict.SKIPPED:
        case = ET.Element("testcase", classname=_clean(result.name), name=RUN_TESTCASE)
        _child(case, "skipped", None, result.verdict_sentence)
        return case
    needed = (
        verdict in (Verdict.INTERRUPTED, Verdict.ABORTED, Verdict.UNKNOWN, Verdict.NO_JOURNAL)
        or (verdict == Verdict.FAILED and "error" not in shown)
        or (verdict in (Verdict.DEVIATED, Verdict.BASELINE_NOT_MET) and "failure" not in shown)
    )
    if not needed:
        return None
    case = ET.Element("testcase", classname=_clean(result.name), name=RUN_TESTCASE)
    if result.duration_s is not None:
        case.set("time", _seconds(result.duration_s))
    tag = "failure" if verdict.severity == 1 else "error"
    _child(case, tag, verdict.value.title().replace(" ", ""), result.verdict_sentence)
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
