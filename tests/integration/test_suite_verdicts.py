"""No false "holds": a team's own agent that answers something else never passes (issue 9).

The issue's reproduction, with real processes: an order-status agent (answers
"Order 1 is shipped." whatever it is asked) served from the current folder
through ``--var target_agent=...``. retry.json checks echo answers, so its
baseline cannot be met: nothing is injected, and both ``chaosagenkit run``
and plain ``chaos run`` must say so and exit non-zero.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_service_support import REPO

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_middleware, pytest.mark.slow]

AGENT = """
from agenkit.interfaces import Agent, Message


class OrderStatus(Agent):
    @property
    def name(self):
        return "order-status"

    async def process(self, message):
        return Message(role="agent", content="Order 1 is shipped.", metadata=dict(message.metadata or {}))


def order_status():
    return OrderStatus()
"""


@pytest.fixture
def team(tmp_path: Path) -> Path:
    (tmp_path / "order_agents.py").write_text(AGENT)
    return tmp_path


def test_chaosagenkit_run_says_the_baseline_was_not_met_and_exits_2(team: Path):
    done = subprocess.run(
        [sys.executable, "-m", "chaosagenkit", "run", str(REPO / "experiments" / "retry.json"),
         "--transport", "tcp", "--journals", str(team / "journals"),
         "--var", "target_agent=order_agents:order_status"],
        cwd=team, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "[1/1] retry [tcp]  baseline_not_met" in done.stdout
    assert (
        "BASELINE_NOT_MET: retry [tcp]: baseline not met, nothing was injected: steady state before: "
        "every-request-answered-correctly.success_ratio = 0.0, outside tolerance" in done.stdout
    )
    journal = json.loads((team / "journals" / "retry.tcp.json").read_text())
    assert journal["status"] == "failed" and journal["run"] == []  # nothing was injected
    ext = next(e for e in journal["extensions"] if e["name"] == "chaosagenkit")
    assert ext["agents"] == {"target": "order_agents:order_status"}
    assert ext["overrides"] == {"target_agent": "order_agents:order_status"}  # tcp is the default


def test_plain_chaos_run_exits_non_zero_for_it_too(team: Path):
    chaos = Path(sys.executable).parent / "chaos"
    journal_path = team / "journal.json"
    done = subprocess.run(
        [str(chaos), "--log-file", str(team / "chaos.log"), "run", "--journal-path", str(journal_path),
         "--var", "target_agent=order_agents:order_status", str(REPO / "experiments" / "retry.json")],
        cwd=team, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "chaosagenkit verdict: baseline not met" in (team / "chaos.log").read_text()
    assert json.loads(journal_path.read_text())["status"] == "failed"
