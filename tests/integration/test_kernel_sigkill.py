"""SIGKILL the chaos process mid-run: its namespaces, rules, relay, guard and target all go."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from chaosagenkit.kernel import system
from tests.integration.kernel_support import needs_kernel, needs_tun
from tests.polling import wait_for

#: one at a time beside other kernel tests (make test: pytest -n 2 --dist loadgroup)
pytestmark = [needs_kernel, pytest.mark.xdist_group("kernel")]
ROOT = Path(__file__).resolve().parents[2]


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("link", ["veth", pytest.param("relay", marks=needs_tun)])
def test_everything_goes_when_the_chaos_process_is_killed(link):
    victim = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.kernel_victim", link],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = victim.stdout.readline()
        assert line, f"the victim exited with status {victim.wait()} before building its network"
        made = json.loads(line)
        assert set(made["namespaces"]) <= set(system.list_namespaces())
        assert all(running(pid) for pid in made["pids"])
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        victim.stdout.close()
    wait_for(lambda: not set(made["namespaces"]) & set(system.list_namespaces()), what="the namespaces to go")
    wait_for(lambda: not any(running(pid) for pid in made["pids"]), what="guard, relay and target to exit")
    wait_for(lambda: not os.path.exists(made["state_file"]), what="the state file to go")
