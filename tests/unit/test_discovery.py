"""Discovery lists every exported activity with its docstring and real argument types."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import chaosagenkit
from chaosagenkit import ACTIVITY_MODULES


def exported_names() -> dict[tuple[str, str], str]:
    names = {}
    for module_name, kind in ACTIVITY_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            names[(module_name, name)] = kind
    return names


def test_discovery_lists_every_exported_activity_with_its_kind():
    discovery = chaosagenkit.discover(discover_system=False)
    assert discovery["extension"]["name"] == "chaosagenkit"
    found = {(a["mod"], a["name"]): a["type"] for a in discovery["activities"]}
    assert found == exported_names()


@pytest.mark.parametrize("module_name,kind", ACTIVITY_MODULES)
def test_every_activity_has_a_docstring_and_typed_arguments(module_name, kind):
    from chaoslib.discovery.discover import discover_activities

    for activity in discover_activities(module_name, kind):
        assert activity["type"] == kind
        doc = activity.get("doc") or ""
        assert doc.strip(), f"{module_name}.{activity['name']} has no docstring"
        for arg in activity.get("arguments", []):
            if arg["name"] in ("configuration", "secrets"):
                continue
            assert arg.get("type") not in (None, "object"), (
                f"{module_name}.{activity['name']}({arg['name']}) has no portable type"
            )


def test_chaos_discover_command_writes_discovery_json(tmp_path: Path):
    chaos = shutil.which("chaos", path=str(Path(sys.executable).parent))
    assert chaos, "the chaos command is installed with chaostoolkit"
    out = tmp_path / "discovery.json"
    result = subprocess.run(
        [
            chaos,
            "--log-file",
            str(tmp_path / "chaostoolkit.log"),
            "discover",
            "chaosagenkit",
            "--no-install",
            "--discovery-path",
            str(out),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    discovery = json.loads(out.read_text())
    found = {(a["mod"], a["name"]): a["type"] for a in discovery["activities"]}
    assert found == exported_names()
