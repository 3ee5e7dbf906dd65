"""A real ``chaos run`` stopped with Ctrl-C (SIGINT) leaves a journal the reports read correctly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from chaosagenkit.report import write_reports
from tests.polling import wait_for
from tests.report import journals as builders

ROOT = Path(__file__).resolve().parents[2]


def test_sigint_during_the_method_gives_an_interrupted_report(tmp_path):
    marker = tmp_path / "blocking"
    experiment = builders.experiment(
        "Ctrl-C during the method",
        [builders.probe("answers", True, True)],
        [
            builders.action("slow-action", "block_until_interrupted", marker=str(marker), timeout_s=60),
            builders.probe("never-reached", 1, 1),
        ],
        controls=[],
    )
    exp_path, journal_path = tmp_path / "exp.json", tmp_path / "journal.json"
    exp_path.write_text(json.dumps(experiment))
    chaos = Path(sys.executable).with_name("chaos")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.Popen(
        [str(chaos), "--no-version-check", "run", "--journal-path", str(journal_path), str(exp_path)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for(marker.exists, 60, "the method's action to start")
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert journal_path.exists(), err.decode(errors="replace")[-2000:]
    journal = json.loads(journal_path.read_text())
    assert journal["status"] == "interrupted"

    paths = write_reports([journal_path], tmp_path / "reports")
    (suite,) = ET.parse(paths["junit"]).getroot().findall("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["experiment run"].find("error").get("type") == "Interrupted"
    assert cases["method: never-reached"].find("skipped") is not None
    assert cases["steady-state after: answers"].find("skipped") is not None
    summary = Path(paths["markdown"]).read_text()
    assert "‼ interrupted" in summary and "slow-action" in summary
