"""``chaos init`` builds a runnable experiment from chaosagenkit's discovery and README's control.

Chaos Toolkit's own commands, driven as a user would: ``chaos discover``,
``chaos init`` answering its prompts, README's control block added, then
``chaos run``. The run must judge the system (here: it holds).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_service_support import REPO

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_service, pytest.mark.slow]


def readme_control() -> list[dict]:
    readme = (REPO / "README.md").read_text()
    block = re.search(r"<!-- chaos-init-control -->\n```json\n(.*?)\n```", readme, re.S)
    assert block, "README shows the control for chaos init experiments"
    return json.loads("{" + block.group(1) + "}")["controls"]


def answers(discovery: dict) -> str:
    """What a user types: a closed-breaker hypothesis, inject then clear failures, a rollback."""
    probes = [a["name"] for a in discovery["activities"] if a["type"] == "probe"]
    everything = [a["name"] for a in discovery["activities"]]
    actions = [a["name"] for a in discovery["activities"] if a["type"] == "action"]
    lines = [
        "Circuit breaker stays closed", "y", "the breaker is closed",
        str(probes.index("circuit_state") + 1), "y", "closed", "caller", "", "", "n",
        "y", str(everything.index("inject_failure_rate") + 1), "y", "target", "1.0", "", "10",
        "y", str(everything.index("clear_faults") + 1), "y", "target", "n",
        "y", str(actions.index("clear_faults") + 1), "y", "target", "n",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def test_chaos_init_with_the_documented_control_runs(tmp_path: Path):
    chaos = str(Path(sys.executable).parent / "chaos")
    discovery, experiment = tmp_path / "discovery.json", tmp_path / "experiment.json"
    subprocess.run(
        [chaos, "--log-file", str(tmp_path / "d.log"), "discover", "chaosagenkit", "--no-install",
         "--discovery-path", str(discovery)],
        check=True, capture_output=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    found = json.loads(discovery.read_text())
    typed = {(a["name"], arg["name"]): arg["type"] for a in found["activities"] for arg in a["arguments"]}
    assert typed["create_client", "middleware"] == "list" and typed["add_toxic", "attributes"] == "mapping"
    assert typed["inject_failure_rate", "rate"] == "number"
    subprocess.run(
        [chaos, "--log-file", str(tmp_path / "i.log"), "init", "--discovery-path", str(discovery),
         "--experiment-path", str(experiment)],
        input=answers(found), text=True, check=True, capture_output=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    built = json.loads(experiment.read_text())
    assert built["method"][0]["provider"]["arguments"] == {
        "server": "target", "rate": 1.0, "error": "exception", "duration_s": 10.0,
    }  # fmt: skip
    built["controls"] = readme_control()
    experiment.write_text(json.dumps(built))
    journal = tmp_path / "journal.json"
    done = subprocess.run(
        [chaos, "--log-file", str(tmp_path / "r.log"), "run", "--journal-path", str(journal), str(experiment)],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, (tmp_path / "r.log").read_text()[-2000:]
    ext = next(e for e in json.loads(journal.read_text())["extensions"] if e["name"] == "chaosagenkit")
    assert ext["verdict"] == "holds" and [e["event"] for e in ext["timeline"]][:3] == [
        "start",
        "inject",
        "clear",
    ]
