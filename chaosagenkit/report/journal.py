"""Finding and reading journal files.

All input is checked before any report is written: one unreadable file or
one JSON document that is not a Chaos Toolkit journal stops the whole
report with a one-line ``ConfigurationError`` naming the file, and nothing
is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.report.model import ExperimentResult, read_result

__all__ = ["earlier_runs", "journal_files", "load_journal", "load_results"]

#: a journal has its experiment and at least one of these (chaoslib writes all of them)
_JOURNAL_KEYS = ("status", "steady_states", "run", "start")


def journal_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and directories (every ``*.json`` directly inside) into journal files."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(p for p in path.glob("*.json") if p.is_file())
            if not inside:
                raise ConfigurationError("journal", f"directory {str(path)!r} holds no *.json file")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigurationError("journal", f"{str(path)!r} does not exist")
    if not found:
        raise ConfigurationError("journal", "no journal given")
    return found


def load_journal(path: Path) -> dict[str, Any]:
    """Parse one journal file, or raise a one-line ``ConfigurationError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ConfigurationError("journal", f"cannot read {str(path)!r}: {reason}") from e
    try:
        journal = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigurationError(
            "journal", f"{str(path)!r} is not JSON (line {e.lineno}, column {e.colno}: {e.msg})"
        ) from e
    if not isinstance(journal, dict) or not isinstance(journal.get("experiment"), dict):
        raise ConfigurationError(
            "journal", f"{str(path)!r} is not a Chaos Toolkit journal (no 'experiment' object)"
        )
    if not any(key in journal for key in _JOURNAL_KEYS):
        raise ConfigurationError(
            "journal",
            f"{str(path)!r} is not a Chaos Toolkit journal (an experiment, not the journal of a run?)",
        )
    return journal


def load_results(paths: Iterable[str | Path]) -> list[ExperimentResult]:
    """Read every journal under ``paths`` (files or directories), in the order given."""
    return [read_result(load_journal(p), str(p)) for p in journal_files(paths)]


def earlier_runs(results: list[ExperimentResult]) -> list[str]:
    """Warn when the journals come from more than one run (old journals left in a folder).

    ``chaosagenkit run`` labels each journal with its invocation's id; the
    journals of the latest invocation (the one holding the latest start) are
    "the run", any other journal was left by an earlier run or written by
    something else. Journals that carry no id at all say nothing, so nothing
    is said about them.
    """
    journals = [r for r in results if r.has_journal]
    ids = {r.run.suite_id if r.run else None for r in journals}
    if len(ids) < 2:
        return []
    latest = max(journals, key=lambda r: r.start.timestamp() if r.start else float("-inf"))
    run_id = latest.run.suite_id if latest.run else None
    others = [r for r in journals if (r.run.suite_id if r.run else None) != run_id]
    names = ", ".join(Path(r.source).name for r in others[:3]) + (", ..." if len(others) > 3 else "")
    return [
        f"{len(others)} of {len(journals)} journals are not from the latest run "
        f"({run_id or 'unlabelled'}): {names}; left by an earlier run? They are reported too"
    ]
