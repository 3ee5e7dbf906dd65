"""``chaosagenkit report`` and ``write_reports``: inputs, outputs, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from chaosagenkit.cli import main
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.report import REPORT_FILES, load_results, write_reports
from tests.report import journals as builders


def run_cli(*args: str):
    return CliRunner().invoke(main, ["report", *map(str, args)])


def test_without_output_options_prints_the_markdown_summary(write_journal):
    path = write_journal("deviated_expectation")
    result = run_cli(path)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# Chaos experiments\n")
    assert "✘ deviates" in result.output and str(path) in result.output


def test_writes_each_requested_format_and_prints_its_path(write_journal, tmp_path):
    write_journal("held", traffic=True, duration_s=8, rate_per_s=20)
    write_journal("interrupted")
    out = tmp_path / "out"
    result = run_cli(tmp_path / "journals", "--junit", out / "r.xml", "--markdown", out / "s.md",
                     "--html", out / "r.html", "--plot-format", "png")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"junit: {out / 'r.xml'}", f"markdown: {out / 's.md'}",
                                          f"html: {out / 'r.html'}"]  # fmt: skip
    assert len(ET.parse(out / "r.xml").getroot().findall("testsuite")) == 2
    assert "‼ interrupted" in (out / "s.md").read_text()
    assert (out / "r.html").read_text().count("data:image/png;base64,") == 1
    assert sorted(p.name for p in out.iterdir()) == ["r.html", "r.xml", "s.md"]  # no temporary left


def test_only_the_requested_formats_are_written(write_journal, tmp_path):
    path = write_journal("held")
    assert run_cli(path, "--junit", tmp_path / "only.xml").exit_code == 0
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["only.xml"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "is not JSON (line 1, column 2"),
        ("[1, 2]", "is not a Chaos Toolkit journal (no 'experiment' object)"),
        (json.dumps({"title": "an experiment", "method": []}), "no 'experiment' object"),
        (json.dumps({"experiment": {"title": "x"}}), "an experiment, not the journal of a run?"),
        (b"\xff\xfe\x00", "cannot read"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_is_written(write_journal, tmp_path, content, message):
    good = write_journal("held")
    bad = tmp_path / "journals" / "zz-bad.json"
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    existing = tmp_path / "old.xml"
    existing.write_text("previous report")
    result = run_cli(good.parent, "--junit", existing, "--html", tmp_path / "new.html")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("chaosagenkit report: 'journal' ")
    assert message in result.output and "zz-bad.json" in result.output
    assert existing.read_text() == "previous report" and not (tmp_path / "new.html").exists()


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.json", "does not exist"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "holds no *.json file"),
])  # fmt: skip
def test_missing_paths_are_one_line_errors(tmp_path, make, message):
    result = run_cli(make(tmp_path))
    assert result.exit_code == 2 and message in result.output and result.output.count("\n") == 1


def test_unwritable_output_is_a_one_line_error(write_journal, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli(write_journal("held"), "--junit", blocker / "sub" / "junit.xml")
    assert result.exit_code == 2 and result.output.startswith("chaosagenkit report: cannot write")


def test_no_journal_argument_is_a_usage_error():
    assert run_cli().exit_code == 2


def test_write_reports_api_for_the_suite_runner(write_journal, tmp_path):
    write_journal("held", traffic=True, duration_s=6, rate_per_s=20)
    write_journal("failed")
    paths = write_reports([tmp_path / "journals"], tmp_path / "reports")
    assert paths == {fmt: str(tmp_path / "reports" / name) for fmt, name in REPORT_FILES.items()}
    assert "data:image/svg+xml;base64," in (tmp_path / "reports" / "report.html").read_text()
    with pytest.raises(ConfigurationError, match="does not exist"):
        write_reports([tmp_path / "nope"], tmp_path / "reports")
    with pytest.raises(ConfigurationError, match="plot_format"):
        write_reports([tmp_path / "journals"], tmp_path / "reports", plot_format="gif")


def test_help_and_text_reports_do_not_import_matplotlib_or_agenkit(write_journal, tmp_path):
    journal_path = write_journal("held")
    code = (
        "import sys; from click.testing import CliRunner; from chaosagenkit.cli import main;"
        f"r = CliRunner().invoke(main, ['report', {str(journal_path)!r}, '--junit', {str(tmp_path / 'j.xml')!r},"
        f" '--markdown', {str(tmp_path / 's.md')!r}]); assert r.exit_code == 0, r.output;"
        "print(sorted(m for m in ('matplotlib', 'agenkit', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_installed_command_runs(write_journal):
    done = subprocess.run([sys.executable, "-m", "chaosagenkit", "report", str(write_journal("plain"))],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "✔ holds" in done.stdout


def test_runs_without_a_journal_are_listed_after_the_journals(write_journal, tmp_path):
    write_journal("held")
    not_run = [
        {"title": "Packet loss", "transport": "http", "verdict": "skipped", "reason": "no meaning over HTTP"},
        {"title": "Broken experiment", "verdict": "error", "reason": "InvalidExperiment: no method"},
    ]
    paths = write_reports([tmp_path / "journals"], tmp_path / "r", not_run=not_run)
    junit = ET.parse(paths["junit"]).getroot()
    suites = {s.get("name"): s for s in junit.findall("testsuite")}
    assert list(suites) == ["retry_under_transient_failures.tcp", "packet_loss.http", "broken_experiment"]
    skipped = suites["packet_loss.http"].find("testcase/skipped")
    assert skipped.get("message") == "No meaning over HTTP."
    error = suites["broken_experiment"].find("testcase/error")
    assert error.get("message") == "Could not run: InvalidExperiment: no method."
    md = (tmp_path / "r" / "summary.md").read_text()
    assert "– skipped" in md and "‼ failed" in md and "1 holds, 1 failed, 1 skipped" in md
    html = (tmp_path / "r" / "report.html").read_text()
    assert "No meaning over HTTP." in html and "no steady-state hypothesis" not in html
    # only runs without journals is fine too; nothing at all is not
    assert write_reports([], tmp_path / "r2", not_run=not_run[:1])["junit"].endswith("junit.xml")
    with pytest.raises(ConfigurationError, match="no journal given"):
        write_reports([], tmp_path / "r3")


HUGE = 10**400  # JSON allows integers of any length; a float cannot hold this one


def test_integers_too_large_for_a_float_are_shown_as_missing_not_a_traceback(journal, tmp_path):
    data = journal("held")
    builders.add_traffic(data, duration_s=6, rate_per_s=20)
    extension = next(e for e in data["extensions"] if e["name"] == "chaosagenkit")
    data["duration"] = HUGE
    data["run"][0]["duration"] = HUGE
    inject = next(e for e in extension["timeline"] if e["event"] == "inject")
    inject["duration_s"] = HUGE
    extension["timeline"].append({"t": HUGE, "event": "clear", "target": inject["target"]})
    (client,) = extension["clients"].values()
    client["outcomes"]["latency_ms"][0] = HUGE
    other = json.loads(json.dumps(client))
    other["outcomes"]["t"][0] = HUGE
    extension["clients"]["other"] = other
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    out = tmp_path / "out"

    result = run_cli(path, "--junit", out / "r.xml", "--markdown", out / "s.md", "--html", out / "r.html")
    assert result.exit_code == 0, result.output

    (read,) = load_results([path])
    assert read.duration_s is None and read.method[0].duration_s is None, "shown as missing"
    assert read.run.unplaced_events == 1 and "1 timeline entries have no usable time" in read.warnings
    window = next(w for w in read.windows if w.fault_id == inject["id"])
    assert window.ended_by != "expired", "a duration no float can hold is no duration"
    caller, other_client = read.run.clients
    assert caller.problem is None and caller.latency_ms[0] is None
    assert "not a number" in other_client.problem
    assert "## 1." in (out / "s.md").read_text()
