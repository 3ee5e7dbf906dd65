"""The suite runner's pure parts: planning runs, configuration checks, exit codes, the table, --record."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from chaosagenkit.suite import (
    RunPlan,
    RunResult,
    check_configuration,
    plan_runs,
    record_observed,
    run,
    suite_exit_code,
    summary_table,
)
from chaosagenkit.verdict import Judgement, Verdict


def write_experiment(
    folder: Path, name: str, extension: dict | None, configuration: dict | None = None
) -> Path:
    experiment = {"title": name, "description": "", "method": []}
    if configuration is not None:
        experiment["configuration"] = configuration
    if extension is not None:
        experiment["extensions"] = [{"name": "chaosagenkit", **extension}]
    path = folder / f"{name}.json"
    path.write_text(json.dumps(experiment))
    return path


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
    assert plans[0].id == "a.tcp"


def test_plan_runs_reads_recorded_deviations_and_findings(tmp_path):
    write_experiment(
        tmp_path,
        "a",
        {
            "transports": ["tcp", "http"],
            "verdicts": {"tcp": "deviates", "http": "deviates"},
            "deviations": {"tcp": ["z", "steady-state:b", "z"]},
            "findings": {"tcp": "agenkit does X"},
        },
    )
    tcp, http = plan_runs([tmp_path])
    assert tcp.recorded_deviations == ("steady-state:b", "z") and tcp.finding == "agenkit does X"
    assert http.recorded_deviations is None  # not recorded: said, never failed


def test_plan_runs_reads_unstable_expectations_and_refuses_them_without_a_reason(tmp_path):
    write_experiment(
        tmp_path,
        "a",
        {
            "transports": ["tcp", "http"],
            "verdicts": {"http": "holds"},
            "unstable": {"http": {"drains": "why"}},
        },
    )
    tcp, http = plan_runs([tmp_path])
    assert (tcp.unstable, http.unstable) == ((), (("drains", "why"),))
    unstable = RunResult(http, Judgement(Verdict.DEVIATES, "x", ("drains",)))
    assert unstable.comparison.outcome == "unstable" and suite_exit_code([unstable], True) == 0
    assert summary_table([unstable], True).splitlines()[2].endswith("yes (unstable)")
    write_experiment(tmp_path, "a", {"transports": ["http"], "unstable": {"http": {"drains": ""}}})
    with pytest.raises(click.BadParameter, match=r"unstable\.http"):
        plan_runs([tmp_path])


def result(verdict: str, recorded: str | None = None, deviations=(), recorded_deviations=None) -> RunResult:
    plan = RunPlan(Path("x.json"), "tcp", recorded=recorded, recorded_deviations=recorded_deviations)
    return RunResult(plan, Judgement(Verdict(verdict), "why", tuple(deviations)))


@pytest.mark.parametrize(
    "results,against,code",
    [
        ([result("holds"), result("skipped")], False, 0),
        ([result("holds"), result("deviates")], False, 1),
        ([result("deviates"), result("baseline_not_met")], False, 2),
        ([result("failed")], False, 2),
        ([result("interrupted")], False, 2),
        ([result("deviates", "deviates", ["a"], ("a",)), result("holds", "holds")], True, 0),
        ([result("deviates", "deviates", ["a", "b"], ("a",))], True, 1),  # a new deviation is caught
        ([result("deviates", "deviates", ["a"], None)], True, 0),  # deviations not recorded yet
        ([result("deviates", "holds")], True, 1),
        ([result("baseline_not_met", "holds")], True, 2),
    ],
)
def test_exit_codes(results, against, code):
    assert suite_exit_code(results, against) == code


def test_summary_table_marks_differences_from_recorded():
    table = summary_table(
        [
            result("holds", "holds"),
            result("deviates", "holds"),
            result("deviates", "deviates", ["a"], ("a",)),
        ],
        True,
    )
    lines = table.splitlines()
    assert lines[0].split() == ["experiment", "transport", "verdict", "time", "recorded", "same"]
    assert lines[2].split()[-1] == "yes"
    assert lines[3].split()[-1] == "NO"
    assert lines[4].endswith("yes (finding)")


def test_configuration_checks_name_the_key(tmp_path):
    write_experiment(tmp_path, "a", None, {"steady_requests": 20, "failure_rate": 0.5})
    write_experiment(tmp_path, "b", None, {"steady_requests": 20})
    plans = plan_runs([tmp_path])
    problems, notes = check_configuration(
        plans, {"steady_requsts": 5, "transport": "http", "failure_rate": 0.9, "steady_requests": 5}
    )
    assert problems == [
        "--var transport=http: use --transport (each experiment runs once per transport it declares)",
        "--var steady_requsts: no experiment run declares this configuration key "
        "(did you mean 'steady_requests'?)",
    ]
    assert notes == ["--var failure_rate applies to 1 of 2 experiments (a)"]


def test_a_bad_var_stops_chaosagenkit_run_before_anything_runs(tmp_path):
    write_experiment(tmp_path, "a", None, {"steady_requests": 20})
    journals = tmp_path / "journals"
    done = CliRunner().invoke(
        run, [str(tmp_path / "a.json"), "--journals", str(journals), "--var", "steady=5"]
    )
    assert done.exit_code == 2
    assert "--var steady: no experiment run declares this configuration key" in done.output
    assert not journals.exists()


def test_record_writes_verdicts_and_deviations_and_keeps_the_format(tmp_path):
    path = write_experiment(tmp_path, "a", {"transports": ["tcp", "http"], "verdicts": {"tcp": "holds"}})
    path.write_text(json.dumps(json.loads(path.read_text()), indent=2) + "\n")
    tcp, http = plan_runs([tmp_path])
    results = [
        RunResult(tcp, Judgement(Verdict.DEVIATES, "x", ("b", "steady-state:a"))),
        RunResult(http, Judgement(Verdict.HOLDS, "ok")),
    ]
    assert record_observed(results, out=io.StringIO()) == [path]
    extension = json.loads(path.read_text())["extensions"][0]
    assert extension["verdicts"] == {"tcp": "deviates", "http": "holds"}
    assert extension["deviations"] == {"tcp": ["b", "steady-state:a"]}
    assert path.read_text() == json.dumps(json.loads(path.read_text()), indent=2) + "\n"
    assert record_observed(results, out=io.StringIO()) == []  # nothing changes twice


def test_record_leaves_an_experiment_alone_when_a_run_did_not_judge(tmp_path):
    path = write_experiment(tmp_path, "a", {"transports": ["tcp"], "verdicts": {"tcp": "holds"}})
    before = path.read_text()
    (tcp,) = plan_runs([tmp_path])
    assert record_observed([RunResult(tcp, Judgement(Verdict.FAILED, "x"))], out=io.StringIO()) == []
    assert path.read_text() == before


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
            "'transports' must be a list of tcp, unix, ws, http, h2c, grpc, got \"http\"",
        ),
        (
            {"transports": ["tcp", "smtp"]},
            '\'transports\' must be a list of tcp, unix, ws, http, h2c, grpc, got ["tcp", "smtp"]',
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


def test_left_behind_names_live_processes_of_the_run_and_a_registry_not_emptied():
    import subprocess
    import sys

    from chaosagenkit.sandbox import SANDBOX
    from chaosagenkit.suite import left_behind

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    journal = {
        "extensions": [
            {
                "name": "chaosagenkit",
                "timeline": [{"event": "start", "target": "target", "detail": {"pid": child.pid}}],
            }
        ]
    }
    try:
        assert left_behind(journal, wait_s=0.1) == [f"process {child.pid} (target) still runs"]
        SANDBOX.clients["caller"] = object()
        assert left_behind({}, wait_s=0) == ["the run's registry still holds clients caller"]
    finally:
        SANDBOX.reset()
        child.kill()
        child.wait()
    assert left_behind(journal, wait_s=0) == []  # reaped: gone


def test_a_parallel_worker_that_writes_no_journal_fails_and_an_old_journal_is_not_read(tmp_path):
    from chaosagenkit.suite import run_suite

    # forked workers need a single-threaded runner: a thread left by an earlier test is a leak
    assert threading.active_count() == 1, f"threads still running: {threading.enumerate()}"
    for name in ("a", "b"):
        write_experiment(tmp_path, name, None)  # no activity: chaoslib refuses it before running
    journals = tmp_path / "journals"
    journals.mkdir()
    stale = {"status": "completed", "extensions": [{"name": "chaosagenkit", "verdict": "holds"}]}
    (journals / "a.tcp.json").write_text(json.dumps(stale))
    out = io.StringIO()
    results = run_suite(plan_runs([tmp_path]), journals, jobs=2, out=out)
    assert [r.verdict for r in results] == [Verdict.FAILED, Verdict.FAILED]
    assert all(r.detail.startswith("could not run: InvalidExperiment:") for r in results), out.getvalue()
    assert not (journals / "a.tcp.json").exists()
    assert sorted(line.split()[0] for line in out.getvalue().splitlines()) == ["[1/2]", "[2/2]"]
