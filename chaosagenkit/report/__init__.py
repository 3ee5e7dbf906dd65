"""Journals turned into JUnit XML, Markdown summaries and self-contained HTML.

The suite runner and the ``chaosagenkit report`` command both call
``write_reports`` / ``render_reports``. Every journal is read and every
report rendered in memory before the first file is written, and each file
is replaced atomically, so bad input leaves existing reports untouched.
Only the HTML report imports matplotlib (in ``chaosagenkit.report.plot``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.report.journal import earlier_runs, journal_files, load_journal, load_results
from chaosagenkit.report.model import ExperimentResult, read_result, result_without_journal
from chaosagenkit.report.plot import PLOT_FORMATS
from chaosagenkit.verdict import Verdict, exit_code

__all__ = [
    "REPORT_FILES",
    "ExperimentResult",
    "Verdict",
    "earlier_runs",
    "journal_files",
    "load_journal",
    "load_results",
    "read_result",
    "render_reports",
    "result_without_journal",
    "suite_exit_code",
    "write_reports",
]

#: format -> file name inside the report directory
REPORT_FILES = {"junit": "junit.xml", "markdown": "summary.md", "html": "report.html"}


def write_reports(
    journal_paths: Iterable[str | Path],
    out_dir: str | Path,
    *,
    not_run: Iterable[Mapping[str, Any]] = (),
    plot_format: str = "svg",
    against_recorded: bool = False,
) -> dict[str, str]:
    """Write junit.xml, summary.md and report.html for the journals into ``out_dir``.

    ``journal_paths`` are journal files or directories of them. ``not_run``
    lists runs that left no journal but must show in the reports, each
    ``{"title": ..., "transport": ... (optional), "experiment": the experiment
    file's name (optional, for the stable id), "verdict": "skipped" | "error", "reason": ...}``; they follow
    the journals. ``against_recorded`` shows a deviation exactly as the
    experiment records it as expected (a known finding), not as a failure. Returns
    ``{"junit": path, "markdown": path, "html": path}``. Raises
    ``ConfigurationError`` (one line, naming the file) for a missing,
    unreadable or non-journal file, before anything is written.
    """
    results = list(load_results(journal_paths)) if journal_paths else []
    for run in not_run:
        results.append(
            result_without_journal(
                str(run.get("title") or "(untitled experiment)"),
                str(run.get("verdict") or "error"),
                str(run.get("reason") or ""),
                transport=run.get("transport") or None,
                experiment_id=run.get("experiment") or None,
            )
        )
    if not results:
        raise ConfigurationError("journal", "no journal given and no run to report")
    out = Path(out_dir)
    targets = {fmt: out / name for fmt, name in REPORT_FILES.items()}
    return render_reports(results, targets, plot_format=plot_format, against_recorded=against_recorded)


def render_reports(
    results: list[ExperimentResult],
    targets: dict[str, Path],
    *,
    plot_format: str = "svg",
    workers: int | None = None,
    against_recorded: bool = False,
    warnings: list[str] | None = None,
) -> dict[str, str]:
    """Render the formats named in ``targets`` (junit, markdown, html) and write them.

    ``plot_format`` is how the HTML embeds its plots: svg (vector axes and
    text, dots rasterised; smaller and faster to draw) or png. ``workers`` is how many
    processes draw plots (default: one per core, at most 4). ``against_recorded``:
    see ``write_reports``; ``warnings`` are shown at the top of the summary and the page.
    """
    # Imported on use: ~40 ms of imports only this path needs.
    from chaosagenkit.report import html, junit, markdown

    if plot_format not in PLOT_FORMATS:
        raise ConfigurationError(
            "plot_format", f"must be one of {', '.join(PLOT_FORMATS)}, got {plot_format!r}"
        )
    documents: dict[str, str] = {}
    if "junit" in targets:
        documents["junit"] = junit.junit_xml(results, against_recorded)
    if "markdown" in targets:
        documents["markdown"] = markdown.markdown_summary(results, against_recorded, warnings)
    if "html" in targets:
        from chaosagenkit.report.parallel import render_plots  # matplotlib, on every core

        plots = render_plots(results, plot_format, workers)
        documents["html"] = html.html_report(results, plots, against_recorded, warnings)
    written = {}
    for fmt, text in documents.items():
        written[fmt] = str(_replace(Path(targets[fmt]), text))
    return written


def suite_exit_code(results: Iterable[ExperimentResult], against_recorded: bool = False) -> int:
    """README's exit code (``chaosagenkit.verdict.exit_code``): 0 held, 1 deviated, 2 not judged."""
    results = list(results)
    comparisons = [r.comparison for r in results] if against_recorded else None
    return exit_code([r.judgement for r in results], comparisons)


def _replace(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a reader never sees half a report)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
