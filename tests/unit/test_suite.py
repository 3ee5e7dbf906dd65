"""The suite runner's pure parts: planning runs, verdicts, exit codes, the summary table."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from chaosagenkit.suite import RunPlan, RunResult, exit_code, plan_runs, run, summary_table, verdict_of


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


def test_a_broken_json_file_in_a_folder_is_reported_not_dropped(tmp_path):
    write_experiment(tmp_path, "a", None)
    (tmp_path / "b.json").write_text('{"title": "b", "method": [}')
    (tmp_path / "notes.json").write_text('["valid JSON, not an experiment"]')
    with pytest.raises(click.BadParameter) as caught:
        plan_runs([tmp_path])
    message = caught.value.format_message()
    assert f"{tmp_path / 'b.json'}: not a JSON experiment: Expecting value" in message
    assert "\n" not in message


def test_a_broken_folder_file_stops_chaosagenkit_run_with_exit_2(tmp_path):
    (tmp_path / "b.json").write_bytes(b"\xff\xfe not JSON")
    done = CliRunner().invoke(run, [str(tmp_path), "--journals", str(tmp_path / "journals")])
    assert done.exit_code == 2
    assert "b.json: not a JSON experiment" in done.output
    assert not (tmp_path / "journals").exists()  # nothing ran


@pytest.mark.parametrize(
    "extension,words",
    [
        (
            {"transports": "http"},
            "'transports' must be a list of tcp, http, unix, ws, h2c, grpc, got \"http\"",
        ),
        (
            {"transports": ["tcp", "smtp"]},
            '\'transports\' must be a list of tcp, http, unix, ws, h2c, grpc, got ["tcp", "smtp"]',
        ),
        ({"skip": ["http"]}, "'skip' must be an object of TRANSPORT: ..., got [\"http\"]"),
        ({"verdicts": "holds"}, "'verdicts' must be an object of TRANSPORT: ..., got \"holds\""),
    ],
)
def test_a_malformed_extension_is_a_one_line_error_naming_the_file(tmp_path, extension, words):
    path = write_experiment(tmp_path, "x", extension)
    with pytest.raises(click.BadParameter) as caught:
        plan_runs([tmp_path])
    message = caught.value.format_message()
    assert message == f"Invalid value for PATH: {path}: the chaosagenkit extension's {words}"
