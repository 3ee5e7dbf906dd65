"""The GitHub Actions workflow users copy: valid YAML, the right steps, and its scripts really work.

Its ``run:`` scripts are executed here with bash, as the runner would, with
the variables GitHub sets (GITHUB_STEP_SUMMARY) pointing at temporary files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.report import journals as builders

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the workflow")

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "chaos.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps(workflow: dict) -> dict[str, dict]:
    (job,) = workflow["jobs"].values()
    return {step.get("name") or step["uses"].split("@")[0]: step for step in job["steps"]}


def test_triggers_permissions_and_python(workflow):
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request", "workflow_dispatch"} <= set(on)
    assert workflow["permissions"] == {"contents": "read", "checks": "write"}
    assert steps(workflow)["actions/setup-python"]["with"]["python-version"] == "3.12"


def test_reports_are_published_and_kept_even_when_the_run_failed(workflow):
    found = steps(workflow)
    names = list(found)
    assert names.index("Run the experiments") < names.index("Publish the JUnit results")
    for name in ("Publish the JUnit results", "Summary", "Keep journals and reports"):
        assert found[name]["if"] == "always()", name
    assert found["Publish the JUnit results"]["uses"].startswith("mikepenz/action-junit-report@v")
    assert (
        found["Publish the JUnit results"]["with"]["report_paths"] == "${{ env.ARTIFACTS }}/reports/junit.xml"
    )
    upload = found["Keep journals and reports"]
    assert upload["uses"].startswith("actions/upload-artifact@v")
    assert upload["with"]["path"].splitlines() == [
        "${{ env.ARTIFACTS }}/journals/",
        "${{ env.ARTIFACTS }}/reports/",
    ]
    assert workflow["env"]["ARTIFACTS"] == "artifacts"


def test_the_run_command_is_the_suite_runner_with_journals_and_reports(workflow):
    command = steps(workflow)["Run the experiments"]["run"]
    assert (
        'chaosagenkit run "$EXPERIMENTS" --journals "$ARTIFACTS/journals" --report "$ARTIFACTS/reports" '
        "$CHAOS_FLAGS" in command
    )
    assert workflow["env"]["CHAOS_FLAGS"] == ""


def test_in_chaosagenkits_own_repository_it_runs_the_tests_and_the_suite_against_the_record(workflow):
    """.ci/run: make test (lint, tests), then make demo (the suite --against-recorded into artifacts/)."""
    command = steps(workflow)["Run the experiments"]["run"]
    assert "grep -qs '^name = \"chaosagenkit\"' pyproject.toml" in command and ".ci/run" in command
    assert (ROOT / "pyproject.toml").read_text().count('name = "chaosagenkit"') == 1
    ci = [line for line in (ROOT / ".ci/run").read_text().splitlines() if line.startswith("make")]
    assert ci == ["make test", "make demo"]
    makefile = (ROOT / "Makefile").read_text()
    demo = makefile[makefile.index("\ndemo:") :].split("\n\n")[0]
    assert "chaosagenkit run experiments" in demo and "--against-recorded" in demo
    assert "--journals $(ARTIFACTS)/journals --report $(ARTIFACTS)/reports" in demo
    assert workflow["env"]["ARTIFACTS"] == "artifacts"  # where make demo writes, the later steps read


def fake_commands(tmp_path: Path) -> tuple[Path, Path]:
    """``python`` and ``chaosagenkit`` that only log their arguments (nothing is installed in a test)."""
    fake, log = tmp_path / "fake-bin", tmp_path / "calls.log"
    fake.mkdir()
    for name in ("python", "chaosagenkit"):
        (fake / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\n')
        (fake / name).chmod(0o755)
    return fake, log


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash runs the workflow's scripts")
def test_a_teams_copy_installs_chaosagenkit_and_the_teams_own_package(workflow, tmp_path):
    install = steps(workflow)["Install chaosagenkit and your package"]["run"]
    team = tmp_path / "team"
    team.mkdir()
    (team / "pyproject.toml").write_text('[project]\nname = "myteam"\n')
    fake, log = fake_commands(tmp_path)
    done = subprocess.run(["bash", "-e", "-c", install], cwd=team, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", **workflow["env"]})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert log.read_text().splitlines() == [
        "python -m pip install --upgrade pip",
        "python -m pip install chaosagenkit",
        "python -m pip install -e .",
        "chaosagenkit --version",
    ]
    log.unlink()
    done = subprocess.run(["bash", "-e", "-c", install], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", **workflow["env"]})  # fmt: skip
    assert done.returncode == 0 and log.read_text().splitlines() == ["python -m pip install --upgrade pip"]


def bash(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    bin_dir = str(Path(sys.executable).parent)  # the venv's chaosagenkit, as pip installs it
    environment = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", **env}
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash runs the workflow's scripts")
def test_run_and_summary_scripts_leave_reports_when_an_experiment_deviates(workflow, tmp_path):
    found = steps(workflow)
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    deviating = builders.experiment(
        "Circuit breaker opens",
        [builders.probe("success-rate", 1.0, [0.95, 1.0])],
        [builders.probe("circuit-state", "closed", "open")],
    )
    (experiments / "breaker.json").write_text(json.dumps(deviating))
    env = {**workflow["env"], "PYTHONPATH": str(ROOT)}  # the experiment's providers live in tests/

    run = bash(found["Run the experiments"]["run"], tmp_path, **env)
    assert run.returncode == 1, run.stdout + run.stderr  # 1: an experiment deviated
    reports = tmp_path / "artifacts" / "reports"
    assert sorted(p.name for p in reports.iterdir()) == ["junit.xml", "report.html", "summary.md"]
    assert (tmp_path / "artifacts" / "journals" / "breaker.tcp.json").exists()
    (suite,) = ET.parse(reports / "junit.xml").getroot().findall("testsuite")
    assert suite.get("name") == "breaker.tcp" and suite.get("failures") == "1"

    summary_file = tmp_path / "step-summary.md"
    summary_file.write_text("earlier step\n")
    done = bash(found["Summary"]["run"], tmp_path, GITHUB_STEP_SUMMARY=str(summary_file), **env)
    assert done.returncode == 0, done.stderr
    text = summary_file.read_text()
    assert text.startswith("earlier step\n# Chaos experiments\n") and "✘ deviates" in text


def test_summary_script_says_so_when_no_report_was_written(workflow, tmp_path):
    summary_file = tmp_path / "step-summary.md"
    done = bash(steps(workflow)["Summary"]["run"], tmp_path, GITHUB_STEP_SUMMARY=str(summary_file),
                ARTIFACTS="artifacts")  # fmt: skip
    assert done.returncode == 0 and "No chaos report was written" in summary_file.read_text()
