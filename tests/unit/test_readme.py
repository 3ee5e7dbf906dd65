"""README stays true: it shows every activity, and the test command CI runs."""

from __future__ import annotations

from pathlib import Path

import chaosagenkit

ROOT = Path(__file__).resolve().parents[2]


def test_readme_has_an_example_for_every_activity():
    readme = (ROOT / "README.md").read_text()
    missing = [
        a["name"] for a in chaosagenkit.load_exported_activities() if f"`{a['name']}` | `{{" not in readme
    ]
    assert not missing, f"README has no example row for: {missing}"


def test_ci_runs_readme_commands():
    readme = (ROOT / "README.md").read_text()
    commands = [
        line.strip()
        for line in (ROOT / ".ci/run").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert commands == ["make test", "make demo"]
    for command in commands:
        assert command in readme
