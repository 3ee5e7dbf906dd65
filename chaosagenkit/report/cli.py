"""``chaosagenkit report``: journals in, JUnit / Markdown / HTML out."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.report import earlier_runs, load_results, render_reports
from chaosagenkit.report.markdown import markdown_summary
from chaosagenkit.verdict import Verdict

__all__ = ["report", "verdicts"]


@click.command("report")
@click.argument("journals", nargs=-1, required=True, metavar="JOURNAL_OR_DIR...")
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write JUnit XML here (one testsuite per journal).",
)
@click.option(
    "--markdown",
    "markdown_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the Markdown summary here (append it to $GITHUB_STEP_SUMMARY in CI).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the self-contained HTML report here.",
)
@click.option(
    "--plot-format",
    type=click.Choice(["svg", "png"]),
    default="svg",
    show_default=True,
    help="How the HTML report embeds its plots.",
)
@click.option(
    "--against-recorded",
    is_flag=True,
    help="Show a deviation exactly as the experiment records it as expected (a known finding).",
)
def report(
    journals: tuple[str, ...],
    junit_path: Path | None,
    markdown_path: Path | None,
    html_path: Path | None,
    plot_format: str,
    against_recorded: bool,
) -> None:
    """Turn Chaos Toolkit journals into JUnit XML, Markdown and HTML.

    JOURNAL_OR_DIR is a journal file or a directory (every *.json in it).
    With no output option the Markdown summary is printed. Journals left by
    an earlier `chaosagenkit run` among them are reported too, with a
    warning. Exit status 0 when the reports were written (whatever the
    verdicts), 2 when a file is missing, unreadable or not a journal
    (nothing is written then).
    """
    targets = {
        fmt: path
        for fmt, path in (("junit", junit_path), ("markdown", markdown_path), ("html", html_path))
        if path is not None
    }
    try:
        results = load_results(journals)
        warnings = earlier_runs(results)
        for warning in warnings:
            click.echo(f"chaosagenkit report: warning: {warning}", err=True)
        if not targets:
            click.echo(markdown_summary(results, against_recorded, warnings), nl=False)
            return
        written = render_reports(
            results, targets, plot_format=plot_format, against_recorded=against_recorded, warnings=warnings
        )
    except ConfigurationError as e:
        click.echo(f"chaosagenkit report: {e}", err=True)
        sys.exit(2)
    except OSError as e:  # an output path we cannot write
        click.echo(
            f"chaosagenkit report: cannot write {e.filename or 'a report'}: {e.strerror or e}", err=True
        )
        sys.exit(2)
    for fmt, path in written.items():
        click.echo(f"{fmt}: {path}")


@click.command("verdicts")
@click.argument("journals", nargs=-1, required=True, metavar="JOURNAL_OR_DIR...")
def verdicts(journals: tuple[str, ...]) -> None:
    """Print each journal's verdict and deviations, as an experiment records them.

    One JSON object keyed by experiment: ``{"retry": {"verdicts": {"tcp":
    "holds"}, "deviations": {}}}``, to paste into an experiment's
    ``chaosagenkit`` extension (``chaosagenkit run --record`` writes them
    itself). Runs that did not judge the system (failed, ...) are listed
    under "not judged".
    """
    import json

    try:
        results = load_results(journals)
    except ConfigurationError as e:
        click.echo(f"chaosagenkit verdicts: {e}", err=True)
        sys.exit(2)
    observed: dict[str, dict[str, dict[str, object]]] = {}
    for r in results:
        entry = observed.setdefault(r.experiment_id or r.test_id, {"verdicts": {}, "deviations": {}})
        transport = r.transport or "tcp"
        if r.verdict in (Verdict.HOLDS, Verdict.DEVIATES):
            entry["verdicts"][transport] = r.verdict.value
            if r.judgement.deviations:
                entry["deviations"][transport] = list(r.judgement.deviations)
        else:
            entry.setdefault("not judged", {})[transport] = f"{r.verdict.label}: {r.judgement.reason}"
    click.echo(json.dumps(observed, indent=2))
