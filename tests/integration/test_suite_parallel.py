"""``chaosagenkit run --jobs N`` gives the journals ``--jobs 1`` gives: same verdicts, deviations, seeds, timelines.

A few real experiments (one of them deviating) run serially in the runner's
process, then in parallel worker processes. Journals cannot be equal byte
for byte (times, latencies, ports); what decides and explains a verdict must
be: the verdict, the deviations, the seed, the fault timeline's sequence and
each method expectation's result.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_service_support import REPO

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

EXPERIMENTS = ["circuit_breaker", "retry", "cache_fallback"]  # cache_fallback deviates over tcp


def run(jobs: int, journals: Path) -> subprocess.CompletedProcess:
    paths = [str(REPO / "experiments" / f"{name}.json") for name in EXPERIMENTS]
    return subprocess.run(
        [sys.executable, "-m", "chaosagenkit", "run", *paths, "--transport", "tcp", "--against-recorded",
         "--journals", str(journals), "--jobs", str(jobs)],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip


def essence(journal: dict) -> dict:
    ext = next(e for e in journal["extensions"] if e["name"] == "chaosagenkit")
    return {
        "status": journal["status"],
        "verdict": ext["verdict"],
        "deviations": ext["deviations"],
        "seed": ext["seed"],
        "timeline": [(e["event"], e["target"], e.get("kind")) for e in ext["timeline"]],
        "expectations": [(e["activity"], e["met"]) for e in ext["expectations"]],
        "left_behind": ext.get("left_behind"),
    }


def test_parallel_runs_give_the_serial_journals(tmp_path: Path):
    serial, parallel = run(1, tmp_path / "serial"), run(3, tmp_path / "parallel")
    assert serial.returncode == 0, serial.stdout
    assert parallel.returncode == 0, parallel.stdout
    assert "3 at a time" in parallel.stdout
    assert [line.split()[0] for line in parallel.stdout.splitlines() if line.startswith("[")] == [
        "[1/3]", "[2/3]", "[3/3]",
    ]  # fmt: skip
    for name in EXPERIMENTS:
        one = json.loads((tmp_path / "serial" / f"{name}.tcp.json").read_text())
        many = json.loads((tmp_path / "parallel" / f"{name}.tcp.json").read_text())
        assert essence(many) == essence(one), name
    assert essence(one)["verdict"] == "deviates"  # the last, cache_fallback: a deviation too
