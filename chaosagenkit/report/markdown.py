"""Journals as a Markdown summary, written for a CI step summary.

First a one-line tally and a table of experiments (verdict, duration, the
values that decided it), each linked to its details below: unmet
tolerances, expectation results, errors, warnings, fault windows and what
the clients saw. Plain text verdicts with simple symbols, so the page reads
the same in a terminal, on GitHub and in any Markdown viewer.
"""

from __future__ import annotations

from pathlib import Path

from chaosagenkit.report.model import ExperimentResult, RunEntry, Verdict
from chaosagenkit.report.text import (
    MISSING,
    checked_value,
    duration_text,
    entry_summary,
    is_expected,
    ms_text,
    observed_vs_recorded,
    offset_text,
    share_text,
    time_text,
    tolerance_text,
    value_text,
    verdict_tally,
)

__all__ = ["EXPECTED_LABEL", "VERDICT_LABEL", "anchor", "markdown_summary", "verdict_label", "write_markdown"]

VERDICT_LABEL = {
    Verdict.HOLDS: "✔ holds",
    Verdict.DEVIATES: "✘ deviates",
    Verdict.BASELINE_NOT_MET: "‼ baseline not met",
    Verdict.FAILED: "‼ failed",
    Verdict.ABORTED: "‼ aborted",
    Verdict.INTERRUPTED: "‼ interrupted",
    Verdict.SKIPPED: "– skipped",
}
#: a deviation exactly as recorded, in a report made against the record: a known finding
EXPECTED_LABEL = "≈ deviates (expected)"


def verdict_label(result: ExperimentResult, against_recorded: bool = False) -> str:
    return EXPECTED_LABEL if is_expected(result, against_recorded) else VERDICT_LABEL[result.verdict]


def anchor(index: int, result: ExperimentResult) -> str:
    """The id of an experiment's details, stable for a given order of journals."""
    return f"exp-{index + 1}-{result.slug}"[:80]


def markdown_summary(
    results: list[ExperimentResult], against_recorded: bool = False, warnings: list[str] | None = None
) -> str:
    """The summary; ``against_recorded`` shows deviations as recorded as expected findings."""
    count, verdicts = verdict_tally(results, against_recorded)
    lines = ["# Chaos experiments", "", f"**{count}:** {verdicts}", ""]
    lines += [f"> warning: {_text(w)}" for w in warnings or []]
    if warnings:
        lines.append("")
    lines += [
        "| # | Experiment | Plan | Verdict | Recorded | Duration | Decisive values |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(results):
        plan = r.plan.plan if r.plan and r.plan.plan else ""
        recorded = observed_vs_recorded(r) or ""
        decisive = "<br>".join(_text(entry_summary(e, 60)) for e in r.decisive()) or "—"
        lines.append(
            f"| {i + 1} | [{_text(r.name)}](#{anchor(i, r)}) | {_text(plan)} | "
            f"{verdict_label(r, against_recorded)} | {_text(recorded)} | {duration_text(r.duration_s)} | {decisive} |"
        )
    for i, r in enumerate(results):
        lines += ["", *_details(i, r, against_recorded)]
    return "\n".join(lines) + "\n"


def write_markdown(results: list[ExperimentResult], path: Path) -> Path:
    path.write_text(markdown_summary(results), encoding="utf-8")
    return path


def _details(i: int, r: ExperimentResult, against_recorded: bool) -> list[str]:
    out = [
        f'<a id="{anchor(i, r)}"></a>',
        f"## {i + 1}. {_text(r.name)}: {verdict_label(r, against_recorded)}",
        "",
        _text(r.verdict_sentence),
        "",
    ]
    if not r.has_journal:
        return out[:-1]
    facts = [
        f"id `{r.test_id}`",
        f"journal `{r.source}`",
        f"status {r.status or MISSING}",
        f"started {time_text(r.start)}",
        f"duration {duration_text(r.duration_s)}",
    ]
    if r.run is not None and r.run.seed is not None:
        facts.append(f"seed {r.run.seed}")
    if r.plan and r.plan.plan:
        facts.append(f"plan {_text(r.plan.plan)}")
    out += ["- " + " · ".join(facts)]
    tested = r.tested_with
    if tested:
        out.append("- tested with: " + " · ".join(f"{k} {_text(v)}" for k, v in tested))
    comparison = observed_vs_recorded(r)
    if comparison:
        out.append(f"- verdict: {comparison}")
    if r.recorded_finding:
        out.append(f"- recorded finding: {_text(r.recorded_finding)}")
    out += [f"- warning: {_text(w)}" for w in r.warnings]

    problems = [e for e in r.entries if e.outcome in ("not met", "error", "did not finish")]
    if problems:
        out += ["", "**What went wrong**", ""]
        out += [f"- {_phase(e)}: {_text(entry_summary(e, 200))}" for e in problems]

    hypothesis = [*r.before, *r.after]
    if hypothesis:
        out += ["", f"**Steady-state hypothesis** ({_text(r.hypothesis_title or 'untitled')})", ""]
        out += _entry_table(hypothesis)
    if r.during_iterations:
        out += [
            "",
            f"During the method: {r.during_iterations - r.during_not_met} of "
            f"{r.during_iterations} checks held.",
        ]
    if r.expectations:
        out += ["", "**Method expectations**", ""]
        out += _entry_table(r.expectations)
    if r.run is None:
        out += [
            "",
            "Fault timeline and client outcomes: not recorded (no chaosagenkit extension in the journal).",
        ]
        return out
    out += ["", "**Fault windows**", ""]
    if r.windows:
        out += ["| Target | Fault | From | To | Lasted | Ended by |", "|---|---|---|---|---|---|"]
        out += [
            f"| {_text(w.target)} | {_text(w.kind)} | {offset_text(w.start, r.t_ref)} | "
            f"{offset_text(w.end, r.t_ref)} | {duration_text(w.end - w.start)} | {w.ended_by} |"
            for w in r.windows
        ]
    else:
        out.append("No fault was recorded on the timeline.")
    if r.run.clients:
        out += ["", "**Clients**", ""]
        out += [
            "| Client | Requests | Good | Errors | Wrong answers | p50 / p95 latency | Good in faults / outside |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in r.run.clients:
            if not c.t:
                out.append(f"| {_text(c.name)} | {_text(c.problem or 'no requests')} | | | | | |")
                continue
            s = r.client_stats(c)
            wrong = MISSING if s.wrong is None else str(s.wrong)
            out.append(
                f"| {_text(c.name)} | {s.requests} | {s.good} | {s.errors} | {wrong} | "
                f"{ms_text(s.latency_p50_ms)} / {ms_text(s.latency_p95_ms)} | "
                f"{share_text(s.good_in_faults)} / {share_text(s.good_outside_faults)} |"
            )
    return out


def _entry_table(entries: list[RunEntry]) -> list[str]:
    rows = ["| Phase | Probe | Value | Tolerance | Result |", "|---|---|---|---|---|"]
    for e in entries:
        if e.ran and e.status == "succeeded":
            label, checked = checked_value(e)
            value = (
                value_text(checked, 80)
                if label == e.name
                else f"{label[len(e.name) + 1 :]} = {value_text(checked, 60)}"
            )
        else:
            value = e.error or "—"
        tolerance = tolerance_text(e.tolerance, 80) if e.has_tolerance else "—"
        rows.append(f"| {e.phase} | {_text(e.name)} | {_text(value)} | {_text(tolerance)} | {e.outcome} |")
    return rows


def _phase(entry: RunEntry) -> str:
    return {"before": "before the method", "after": "after the method"}.get(entry.phase, entry.phase)


def _text(text: str) -> str:
    """Markdown-inert text: no HTML, no emphasis, no links."""
    for ch in "\\`*_[]<>|#":
        text = text.replace(ch, "\\" + ch)
    return " ".join(text.split())
