"""README's "Testing your own agent" works as written, for an agent that is not the echo target.

The order-status agent and its answer check are taken from README.md and
written into a fresh directory as ``orders.py``; the command is README's own,
run by the real ``chaosagenkit`` in that directory (so the module is found
the way a team's would be: from the current directory, not installed).
Configuration alone makes the experiment hold; the same run with the default
echo check must not hold (every answer of this agent is wrong for an echo
check), and a check that raises is one configuration error.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.experiments.conftest import EXPERIMENTS, addresses_used

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_middleware, pytest.mark.slow]

ROOT = EXPERIMENTS.parent
CHAOSAGENKIT = Path(sys.executable).parent / "chaosagenkit"


def readme_section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Testing your own agent")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def readme_blocks() -> list[tuple[str, str]]:
    """The section's fenced blocks, as (language, text)."""
    blocks, language, lines = [], None, []
    for line in readme_section().splitlines():
        if line.startswith("```"):
            if language is None:
                language, lines = line[3:].strip(), []
            else:
                blocks.append((language, "\n".join(lines) + "\n"))
                language = None
        elif language is not None:
            lines.append(line)
    return blocks


def readme_module() -> str:
    return next(text for language, text in readme_blocks() if language == "python")


def readme_command() -> list[str]:
    block = next(text for language, text in readme_blocks() if "chaosagenkit run" in text)
    argv = shlex.split(block.replace("\\\n", " "))
    assert argv[:2] == ["chaosagenkit", "run"]
    return [str(CHAOSAGENKIT), *(str(ROOT / a) if a.startswith("experiments/") else a for a in argv[1:])]


def run_in(team: Path, argv: list[str]) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    done = subprocess.run(argv, cwd=team, capture_output=True, text=True, timeout=300)
    journal = json.loads((team / "journals" / "retry.tcp.json").read_text())
    return done, journal


def without(argv: list[str], key: str) -> list[str]:
    """``argv`` without its ``--var key=...`` pair."""
    out = list(argv)
    i = next(i for i, arg in enumerate(out) if arg.startswith(f"{key}=") and out[i - 1] == "--var")
    del out[i - 1 : i + 1]
    return out


@pytest.fixture
def team(tmp_path: Path) -> Path:
    """A team's project directory holding README's ``orders.py`` (nothing installed)."""
    (tmp_path / "orders.py").write_text(readme_module())
    return tmp_path


def steady_state_batch(journal: dict[str, Any]) -> dict[str, Any]:
    return journal["steady_states"]["before"]["probes"][0]


def test_readme_example_holds_on_a_non_echo_agent_through_configuration_only(team: Path):
    done, journal = run_in(team, readme_command())
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^retry\s+tcp\s+holds", done.stdout, re.M), done.stdout
    assert journal["status"] == "completed" and journal["deviated"] is False
    batch = steady_state_batch(journal)["output"]
    assert batch["sent"] == 20 and batch["success_ratio"] == 1.0 and batch["wrong_answers"] == 0
    extension = next(e for e in journal["extensions"] if e["name"] == "chaosagenkit")
    assert extension["configuration"]["target_agent"] == "orders:order_status"
    assert extension["configuration"]["answer_check"] == "orders:answer_is_for_this_order"
    assert extension["configuration"]["request_content"] == "status of order {n}"
    assert all(e["met"] for e in extension["expectations"])
    assert addresses_used(journal)


def test_the_same_agent_with_the_default_echo_check_fails_its_baseline_and_the_run(team: Path):
    done, journal = run_in(team, without(readme_command(), "answer_check"))
    before = journal["steady_states"]["before"]
    assert before["steady_state_met"] is False
    batch = steady_state_batch(journal)["output"]
    assert batch["ok"] == 20 and batch["wrong_answers"] == 20  # answered, but not an echo
    assert journal["run"] == []  # nothing was injected into a system that was not healthy
    assert not re.search(r"^retry\s+tcp\s+holds", done.stdout, re.M), done.stdout
    assert re.search(r"^retry\s+tcp\s+baseline_not_met", done.stdout, re.M), done.stdout
    assert done.returncode != 0


def test_an_answer_check_that_raises_is_one_configuration_error(team: Path):
    argv = [*without(readme_command(), "answer_check"), "--var", "answer_check=orders:OrderStatus"]
    done, journal = run_in(team, argv)
    assert done.returncode != 0
    probe = steady_state_batch(journal)
    assert probe["status"] == "failed"
    message = probe["exception"][-1].strip()
    assert "send_requests: 'answer_check' orders:OrderStatus raised TypeError" in message
    assert probe.get("output") is None  # no batch of wrong answers: the run stopped at the broken check
