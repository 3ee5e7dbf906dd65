"""``chaosagenkit run`` stops the suite on Ctrl-C (a real child process and a real SIGINT).

chaoslib catches KeyboardInterrupt itself and returns an "interrupted"
journal; the runner must still stop after that experiment, not go on to the
next one. The first experiment waits in a pause, the test sends SIGINT once
the log shows the pause has begun.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.integration.test_service_support import REPO, wait_for


def experiment(title: str, pause_s: float) -> dict:
    action = {
        "type": "action",
        "name": f"{title}-look",
        "pauses": {"after": pause_s},
        "provider": {"type": "python", "module": "os.path", "func": "exists", "arguments": {"path": "/"}},
    }
    return {"title": title, "description": "runner interruption", "method": [action]}


def start_suite(tmp_path: Path, experiments: dict[str, dict], jobs: int) -> subprocess.Popen[str]:
    """``chaosagenkit run`` over ``experiments`` (file name -> experiment) in a child process."""
    suite = tmp_path / "suite"
    suite.mkdir()
    for name, content in experiments.items():
        (suite / f"{name}.json").write_text(json.dumps(content))
    journals = tmp_path / "journals"
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chaosagenkit",
            "run",
            str(suite),
            "--journals",
            str(journals),
            "--jobs",
            str(jobs),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )


def test_ctrl_c_stops_the_suite_after_the_interrupted_experiment(tmp_path: Path):
    runner = start_suite(tmp_path, {"a_waits": experiment("waits", 120), "b_next": experiment("next", 0)}, 1)
    journals = tmp_path / "journals"
    log = journals / "chaostoolkit.log"
    try:
        wait_for(lambda: log.exists() and "Pausing after activity" in log.read_text(), 60, "the first pause")
        os.kill(runner.pid, signal.SIGINT)
        output, _ = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    assert runner.returncode == 2, output
    assert "[1/2] a_waits [tcp]  interrupted" in output and "interrupted (Ctrl-C)" in output
    assert "[2/2]" not in output, output
    assert json.loads((journals / "a_waits.tcp.json").read_text())["status"] == "interrupted"
    assert not (journals / "b_next.tcp.json").exists()


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, their children, ...)."""
    from tests.conftest import child_pids

    found, todo = set(), [pid]
    while todo:
        for child in child_pids(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def waiting_with_a_host(title: str, pause_s: float) -> dict:
    """A run whose control starts a chaos host, then waits in the method with a fault on."""
    from tests.experiments.test_interrupted_run import EXPERIMENT

    experiment = json.loads(json.dumps(EXPERIMENT))
    experiment["title"] = title
    experiment["method"][0]["pauses"] = {"after": pause_s}
    return experiment


def test_ctrl_c_stops_every_parallel_run_and_tears_their_sandboxes_down(tmp_path: Path):
    runner = start_suite(tmp_path, {name: waiting_with_a_host(name, 120) for name in ("a", "b", "c")}, 2)
    journals = tmp_path / "journals"
    log = journals / "chaostoolkit.log"
    try:
        wait_for(
            lambda: log.exists() and log.read_text().count("Pausing after activity") >= 2, 120, "2 pauses"
        )
        below = descendants(runner.pid)
        assert len(below) >= 4, "two workers, each with its chaos host"
        os.kill(runner.pid, signal.SIGINT)
        output, _ = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    assert runner.returncode == 2, output
    assert "interrupted: stopping 2 running experiment(s)" in output
    lines = [line for line in output.splitlines() if line.startswith("[")]
    assert len(lines) == 3 and all(" interrupted " in line for line in lines), output
    assert "not started: the suite was interrupted" in output  # c never started
    for name in ("a", "b"):
        journal = json.loads((journals / f"{name}.tcp.json").read_text())
        assert journal["status"] == "interrupted"
        ext = next(e for e in journal["extensions"] if e["name"] == "chaosagenkit")
        assert [e["event"] for e in ext["timeline"]][:2] == ["start", "inject"]
    assert not (journals / "c.tcp.json").exists()
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in below), 30, "every process to exit")
