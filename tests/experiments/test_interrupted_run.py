"""A run interrupted by SIGINT during the method still cleans up everything.

Real `chaos run` in a child process: the control starts a chaos host, the
method injects a fault and then waits; the test sends SIGINT while it waits
and checks that the run is recorded as interrupted, the chaosagenkit
extension was still written, the host process is gone and its ports free.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import child_pids
from tests.experiments.conftest import addresses_used
from tests.polling import wait_for
from tests.ports import assert_released

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_service, pytest.mark.slow]

EXPERIMENT = {
    "title": "interrupted while a fault is on",
    "description": "SIGINT arrives during the method.",
    "configuration": {"seed": 3},
    "controls": [
        {
            "name": "chaosagenkit",
            "provider": {
                "type": "python",
                "module": "chaosagenkit.control",
                "arguments": {
                    "seed": "${seed}",
                    "servers": [{"name": "target", "transport": "tcp"}],
                    "clients": [{"name": "caller", "server": "target"}],
                },
            },
        }
    ],
    "steady-state-hypothesis": {
        "title": "answers",
        "probes": [
            {
                "type": "probe",
                "name": "answers",
                "tolerance": {"type": "range", "target": "success_ratio", "range": [1, 1]},
                "provider": {
                    "type": "python",
                    "module": "chaosagenkit.client.probes",
                    "func": "send_requests",
                    "arguments": {"client": "caller", "count": 3},
                },
            }
        ],
    },
    "method": [
        {
            "type": "action",
            "name": "inject-delay",
            "provider": {
                "type": "python",
                "module": "chaosagenkit.service.actions",
                "func": "inject_delay",
                "arguments": {"server": "target", "delay_ms": 100, "duration_s": 120},
            },
            "pauses": {"after": 60},
        },
        {
            "type": "action",
            "name": "never-reached",
            "provider": {
                "type": "python",
                "module": "chaosagenkit.service.actions",
                "func": "clear_faults",
                "arguments": {"server": "target"},
            },
        },
    ],
}


def test_sigint_during_the_method_still_tears_everything_down(tmp_path: Path):
    experiment = tmp_path / "experiment.json"
    experiment.write_text(json.dumps(EXPERIMENT))
    journal_path = tmp_path / "journal.json"
    log = tmp_path / "chaostoolkit.log"
    chaos = Path(sys.executable).parent / "chaos"
    process = subprocess.Popen(
        [str(chaos), "--log-file", str(log), "run", "--journal-path", str(journal_path), str(experiment)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: log.exists() and "Pausing after activity" in log.read_text(), 60, "the method's pause"
        )
        hosts = child_pids(process.pid)
        assert hosts, "the control started a chaos host"
        os.kill(process.pid, signal.SIGINT)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    journal = json.loads(journal_path.read_text())
    assert journal["status"] == "interrupted"
    assert [r["activity"]["name"] for r in journal["run"]] == ["inject-delay"]
    extension = next(e for e in journal["extensions"] if e["name"] == "chaosagenkit")
    assert [e["event"] for e in extension["timeline"]][:2] == ["start", "inject"]
    for pid in hosts:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    used = addresses_used(journal)
    assert used, "the journal records the host's addresses"
    assert_released(used)
