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


def test_the_per_transport_table_is_what_the_experiments_record():
    """docs/FINDINGS-transports.md's "Recorded verdicts now" row by row against experiments/*.json."""
    import json

    text = (ROOT / "docs/FINDINGS-transports.md").read_text()
    table = text.split("## Recorded verdicts now", 1)[1].split("\n## ", 1)[0]
    rows = [
        line.strip("|").split("|")
        for line in table.splitlines()
        if line.startswith("| ") and "---" not in line
    ]
    header = [cell.strip() for cell in rows[0]]
    assert header[0] == "experiment"
    shown = {
        cells[0].strip(): dict(zip(header[1:], (c.strip() for c in cells[1:]), strict=True))
        for cells in rows[1:]
    }
    experiments = sorted((ROOT / "experiments").glob("*.json"))
    assert sorted(shown) == [path.stem for path in experiments]
    for path in experiments:
        extension = next(e for e in json.loads(path.read_text())["extensions"] if e["name"] == "chaosagenkit")
        for transport in header[1:]:
            if transport in (extension.get("skip") or {}):
                expected = "n/a"
            elif transport not in (extension.get("verdicts") or {}):
                expected = "not recorded"
            else:
                expected = extension["verdicts"][transport]
                if expected == "deviates":
                    expected += f" ({len(extension['deviations'][transport])})"
            assert shown[path.stem][transport] == expected, (path.stem, transport)
