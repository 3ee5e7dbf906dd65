"""The suite runner's pure parts: planning runs, verdicts, exit codes, the summary table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaosagenkit.suite import RunPlan, RunResult, exit_code, plan_runs, summary_table, verdict_of


def write_experiment(folder: Path, name: str, extension: dict | None) -> Path:
    experiment = {"title": name, "description": "", "method": []}
    if extension is not None:
        experiment["extensions"] = [{"name": "chaosagenkit", **extension}]
    path = folder / f"{name}.json"
    path.write_text(json.dumps(experiment))
    return path


@pytest.mark.parametrize(
    "journal,verdict",
    [
        ({"status": "completed", "deviated": False}, "holds"),
        ({"status": "completed", "deviated": True}, "deviates"),
        ({"status": "failed", "deviated": True}, "error"),
        ({"status": "failed", "deviated": False}, "error"),
        ({"status": "aborted", "deviated": False}, "error"),
        ({"status": "interrupted", "deviated": False}, "error"),
    ],
)
def test_verdict_of_journal(journal, verdict):
    assert verdict_of(journal) == verdict


def test_plan_runs_one_per_declared_transport_with_skips_and_recorded_verdicts(tmp_path):
    write_experiment(
        tmp_path,
        "a",
        {"transports": ["tcp", "http"], "skip": {"http": "no meaning"}, "verdicts": {"tcp": "holds"}},
    )
    write_experiment(tmp_path, "b", None)
    (tmp_path / "notes.json").write_text('{"not": "an experiment"}')
    plans = plan_runs([tmp_path])
    assert [(p.path.stem, p.transport, p.skip_reason, p.recorded) for p in plans] == [
        ("a", "tcp", None, "holds"),
        ("a", "http", "no meaning", None),
        ("b", "tcp", None, None),
    ]
    assert [p.transport for p in plan_runs([tmp_path], ("http",))] == ["http"]


def result(verdict: str, recorded: str | None = None) -> RunResult:
    return RunResult(RunPlan(Path("x.json"), "tcp", recorded=recorded), verdict)


@pytest.mark.parametrize(
    "verdicts,against,code",
    [
        (["holds", "skipped"], False, 0),
        (["holds", "deviates"], False, 1),
        (["deviates", "error"], False, 2),
        ([("deviates", "deviates"), ("holds", "holds")], True, 0),
        ([("deviates", "holds")], True, 1),
        ([("error", "holds")], True, 2),
    ],
)
def test_exit_codes(verdicts, against, code):
    results = [result(*v) if isinstance(v, tuple) else result(v) for v in verdicts]
    assert exit_code(results, against) == code


def test_summary_table_marks_differences_from_recorded():
    table = summary_table([result("holds", "holds"), result("deviates", "holds")], True)
    lines = table.splitlines()
    assert lines[0].split() == ["experiment", "transport", "verdict", "time", "recorded", "same"]
    assert lines[2].split()[-1] == "yes"
    assert lines[3].split()[-1] == "NO"
