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


def test_ctrl_c_stops_the_suite_after_the_interrupted_experiment(tmp_path: Path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "a_waits.json").write_text(json.dumps(experiment("waits", 120)))
    (suite / "b_next.json").write_text(json.dumps(experiment("next", 0)))
    journals = tmp_path / "journals"
    log = journals / "chaostoolkit.log"
    runner = subprocess.Popen(
        [sys.executable, "-m", "chaosagenkit", "run", str(suite), "--journals", str(journals)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    try:
        wait_for(lambda: log.exists() and "Pausing after activity" in log.read_text(), 60, "the first pause")
        os.kill(runner.pid, signal.SIGINT)
        output, _ = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    assert runner.returncode == 2, output
    assert "[1/2] a_waits [tcp]  error" in output and "interrupted (Ctrl-C)" in output
    assert "[2/2]" not in output, output
    assert json.loads((journals / "a_waits.tcp.json").read_text())["status"] == "interrupted"
    assert not (journals / "b_next.tcp.json").exists()
