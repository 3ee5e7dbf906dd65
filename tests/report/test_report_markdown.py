"""The Markdown summary: a row and a details section per experiment, for every verdict."""

from __future__ import annotations

import re

import pytest

from chaosagenkit.report import markdown
from chaosagenkit.report.markdown import VERDICT_LABEL, markdown_summary
from chaosagenkit.report.model import Verdict, read_result
from tests.report import journals as builders
from tests.report.conftest import KINDS


def table_rows(md: str) -> list[list[str]]:
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| #")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]


@pytest.mark.parametrize(
    "kind, label, decisive",
    [
        ("held", "✔ holds", "retries-absorbed-failures = 0.98 (expected between 0.9 and 1.0: met)"),
        ("deviated_expectation", "✘ deviates", 'circuit-state = "closed" (expected "open": not met)'),
        ("deviated_after", "✘ deviates", "target-answers = false (expected true: not met)"),
        (
            "baseline_not_met",
            "‼ baseline not met",
            "p95-latency-ms = 950 (expected between 0 and 500: not met)",
        ),
        ("failed", "‼ failed", "answers: RuntimeError: backend unreachable"),
        ("aborted", "‼ aborted", "inject-latency: did not finish"),
        ("interrupted", "‼ interrupted", "stop: did not finish"),
        ("interrupted_by_control", "‼ interrupted", "answers: not run"),
    ],
)
def test_each_verdict_kind_has_its_row_and_details(journal, kind, label, decisive):
    result = read_result(journal(kind), f"{kind}.json")
    md = markdown_summary([result])
    (row,) = [r for r in table_rows(md) if r[0] == "1"]
    assert row[3] == label
    assert decisive.replace("_", "\\_") in row[6].replace("\\[", "[").replace("\\]", "]")
    assert f"## 1. {result.name.replace('[', chr(92) + '[').replace(']', chr(92) + ']')}: {label}" in md
    assert markdown._text(result.verdict_sentence) in md
    assert f"status {result.status}" in md


def test_table_links_point_at_existing_anchors(journal):
    results = [read_result(journal(kind), f"{kind}.json") for kind in KINDS]
    md = markdown_summary(results)
    links = re.findall(r"\]\(#([^)]+)\)", md)
    anchors = re.findall(r'<a id="([^"]+)"></a>', md)
    assert len(links) == len(KINDS) and links == anchors and len(set(anchors)) == len(anchors)


def test_tally_counts_every_verdict(journal):
    results = [read_result(journal(kind), f"{kind}.json") for kind in KINDS]
    first = markdown_summary(results).splitlines()[2]
    assert first == ("**9 experiments:** 2 holds, 2 deviates, 1 baseline not met, 1 failed, "
                     "1 aborted, 2 interrupted")  # fmt: skip


def test_what_went_wrong_lists_unmet_and_erroring_entries(journal):
    md = markdown_summary([read_result(journal("interrupted"), "i.json")])
    section = md.split("**What went wrong**")[1].split("**")[0]
    assert "- method: stop: did not finish" in section
    assert "rollbacks not played: clear-faults" in md


def test_recorded_verdict_and_finding_are_shown(journal):
    md = markdown_summary([read_result(journal("deviated_after"), "d.json")])
    assert "recorded deviates, observed deviates" in md
    assert "recorded finding: RemoteAgent never reconnects after the connection breaks" in md
    md = markdown_summary([read_result(journal("deviated_expectation"), "d.json")])
    assert "recorded holds, observed deviates (differs" in md


def test_plain_journal_says_what_is_not_recorded(journal):
    md = markdown_summary([read_result(journal("plain"), "p.json")])
    assert "Fault timeline and client outcomes: not recorded (no chaosagenkit extension" in md
    assert "seed" not in md


def test_fault_windows_and_client_table_from_traffic(journal):
    data = builders.add_traffic(journal("deviated_expectation"), duration_s=20, rate_per_s=40)
    result = read_result(data, "d.json")
    md = markdown_summary([result])
    assert "| target\\_proxy | reset\\_peer | +5.0 s | +10.0 s | 5.0 s | cleared |" in md
    stats = result.client_stats(result.run.clients[0])
    assert f"| caller | {stats.requests} | {stats.good} | {stats.errors} |" in md


def test_text_from_journals_cannot_break_the_table_or_inject_html(journal):
    data = journal("held")
    data["experiment"]["title"] = "a | b <script>alert(1)</script> *bold*"
    md = markdown_summary([read_result(data, "j.json")])
    (row,) = [r for r in table_rows(md) if r[0] == "1"]
    assert len(row) == 7  # the pipe did not add a column
    assert "<script>" not in md and "\\<script\\>" in md and "\\*bold\\*" in md


def test_every_verdict_has_a_label():
    assert set(VERDICT_LABEL) == set(Verdict)
