"""Journals as ONE self-contained HTML page.

Everything is in the file: styles inline, plots as ``data:`` images, no
script, no font, no link to anything outside, so the page opens offline
from a CI artifact. Every text from a journal is escaped. Per experiment:
the verdict, the hypothesis probes with values and tolerances, the method
(expectations included), rollbacks, the fault timeline with its windows,
and one plot per client with the fault windows shaded.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

from chaosagenkit import __version__
from chaosagenkit.report.markdown import anchor, verdict_label
from chaosagenkit.report.model import ExperimentResult, RunEntry
from chaosagenkit.report.outcomes import ClientOutcomes
from chaosagenkit.report.text import (
    MISSING,
    checked_value,
    duration_text,
    entry_summary,
    is_expected,
    ms_text,
    observed_vs_recorded,
    offset_text,
    share_text,
    time_text,
    tolerance_text,
    value_text,
    verdict_tally,
)
from chaosagenkit.report.topology import topology_html

__all__ = ["html_report"]

#: plots already drawn, as data: URIs keyed by (result index, client index)
Plots = dict[tuple[int, int], str]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
 max-width:1180px;padding:16px 24px;color:#1b1f24;background:#fff}
h1{font-size:24px;margin:8px 0}h2{font-size:19px;margin:0 0 6px}h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0 10px;width:100%}
th,td{border:1px solid #d0d7de;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td.num{text-align:right;white-space:nowrap}
code,pre,.val{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.val{word-break:break-word}pre{background:#f6f8fa;padding:8px;overflow-x:auto;white-space:pre-wrap}
section.experiment{border:1px solid #d0d7de;border-left:6px solid #8c959f;border-radius:6px;
 padding:12px 16px;margin:18px 0}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;font-size:13px;font-weight:600;
 color:#fff;background:#8c959f;vertical-align:middle}
.v0{border-left-color:#1a7f37}.v0 .badge,.badge.v0{background:#1a7f37}
.v1{border-left-color:#cf222e}.v1 .badge,.badge.v1{background:#cf222e}
.v2{border-left-color:#9a6700}.v2 .badge,.badge.v2{background:#9a6700}
.vx{border-left-color:#0969da}.vx .badge,.badge.vx{background:#0969da}
.o-met,.o-succeeded{color:#1a7f37}.o-not-met,.o-error,.o-did-not-finish{color:#cf222e;font-weight:600}
.o-not-run,.o-not-checked,.missing{color:#6e7781;font-style:italic}
.facts{color:#424a53;margin:4px 0}.facts span{margin-right:10px;display:inline-block}
.warn{color:#9a6700}.plot{max-width:100%;height:auto;border:1px solid #eaeef2}
"""


def html_report(
    results: list[ExperimentResult],
    plots: Plots | None = None,
    against_recorded: bool = False,
    warnings: list[str] | None = None,
) -> str:
    """The whole page, with the client ``plots`` given (see ``parallel.render_plots``).

    ``against_recorded``: a deviation exactly as recorded shows as expected (a known finding).
    """
    plots = plots or {}
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Chaos experiments</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Chaos experiments</h1>",
        f'<p class="facts">{_e(": ".join(verdict_tally(results, against_recorded)))} · generated {generated} by chaosagenkit {_e(__version__)}</p>',
        *(f'<p class="warn">warning: {_e(w)}</p>' for w in warnings or []),
        _summary_table(results, against_recorded),
    ]
    parts += [_section(i, r, plots, against_recorded) for i, r in enumerate(results)]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _summary_table(results: list[ExperimentResult], against_recorded: bool) -> str:
    rows = [
        "<table><tr><th>#</th><th>Experiment</th><th>Plan</th><th>Verdict</th>"
        "<th>Recorded</th><th>Duration</th><th>Decisive values</th></tr>"
    ]
    for i, r in enumerate(results):
        decisive = "<br>".join(_e(entry_summary(e, 70)) for e in r.decisive()) or "—"
        rows.append(
            f'<tr><td class="num">{i + 1}</td><td><a href="#{_e(anchor(i, r))}">{_e(r.name)}</a></td>'
            f"<td>{_e(r.plan.plan if r.plan and r.plan.plan else '')}</td><td>{_badge(r, against_recorded)}</td>"
            f"<td>{_e(observed_vs_recorded(r) or '')}</td><td class='num'>{_e(duration_text(r.duration_s))}</td>"
            f'<td class="val">{decisive}</td></tr>'
        )
    rows.append("</table>")
    return "\n".join(rows)


def _section(i: int, r: ExperimentResult, plots: Plots, against_recorded: bool) -> str:
    out = [
        f'<section class="experiment {_verdict_class(r, against_recorded)}" id="{_e(anchor(i, r))}">',
        f"<h2>{i + 1}. {_e(r.name)} {_badge(r, against_recorded)}</h2>",
        f"<p>{_e(r.verdict_sentence)}</p>",
    ]
    if not r.has_journal:
        return "\n".join([*out, "</section>"])
    if r.description:
        out.append(f'<p class="facts">{_e(r.description)}</p>')
    out.append(_facts(r))
    out += [f'<p class="warn">warning: {_e(w)}</p>' for w in r.warnings]

    out.append(f"<h3>Steady-state hypothesis: {_e(r.hypothesis_title or 'untitled')}</h3>")
    hypothesis = [*r.before, *r.after]
    out.append(
        _entry_table(hypothesis, r) if hypothesis else '<p class="missing">no steady-state hypothesis</p>'
    )
    if r.during_iterations:
        out.append(
            f"<p>During the method the steady state held in {r.during_iterations - r.during_not_met} "
            f"of {r.during_iterations} checks.</p>"
        )
    out.append("<h3>Method</h3>")
    out.append(_entry_table(r.method, r) if r.method else '<p class="missing">no method activity</p>')
    if r.rollbacks:
        out += ["<h3>Rollbacks</h3>", _entry_table(r.rollbacks, r)]
    out += _errors(r)
    out += _timeline(r)
    out.append(topology_html(r.run.topology if r.run else None, r.run.timeline if r.run else []))
    out += _clients(i, r, plots)
    out.append("</section>")
    return "\n".join(out)


def _facts(r: ExperimentResult) -> str:
    facts = [
        ("id", r.test_id),
        ("journal", r.source),
        ("status", r.status or MISSING),
        ("deviated", str(r.deviated).lower()),
        ("started", time_text(r.start)),
        ("duration", duration_text(r.duration_s)),
    ]
    facts += r.tested_with
    if r.run is not None:
        facts.append(("seed", str(r.run.seed) if r.run.seed is not None else MISSING))
    if r.plan and r.plan.plan:
        facts.append(("plan", r.plan.plan))
    comparison = observed_vs_recorded(r)
    if comparison:
        facts.append(("verdict", comparison))
    if r.tags:
        facts.append(("tags", ", ".join(r.tags)))
    spans = " ".join(f"<span><b>{_e(k)}</b> {_e(v)}</span>" for k, v in facts)
    finding = r.recorded_finding
    extra = f'<p class="facts"><b>recorded finding</b> {_e(finding)}</p>' if finding else ""
    return f'<p class="facts">{spans}</p>{extra}'


def _entry_table(entries: list[RunEntry], r: ExperimentResult) -> str:
    t_ref = r.t_ref
    rows = [
        "<table><tr><th>Phase</th><th>Type</th><th>Name</th><th>Value</th><th>Tolerance</th>"
        "<th>Result</th><th>Started</th><th>Took</th></tr>"
    ]
    for e in entries:
        if e.ran and e.status == "succeeded":
            label, checked = checked_value(e)
            value = _e(value_text(e.output, 300))
            if label != e.name:  # the part the tolerance checks first, then the whole output
                value = f"<b>{_e(label[len(e.name) + 1 :])} = {_e(value_text(checked, 100))}</b><br>{value}"
        elif e.error:
            value = _e(e.error)
        else:
            value = '<span class="missing">—</span>'
        tolerance = _e(tolerance_text(e.tolerance, 200)) if e.has_tolerance else "—"
        if e.declared_tolerance is not None:
            tolerance += (
                f"<br><span class='missing'>declared {_e(value_text(e.declared_tolerance, 120))}</span>"
            )
        started = offset_text(e.start.timestamp(), t_ref) if e.start else "—"
        took = duration_text(e.duration_s) if e.duration_s is not None else "—"
        rows.append(
            f"<tr><td>{_e(e.phase)}</td><td>{_e(e.kind)}{' (background)' if e.background else ''}</td>"
            f"<td>{_e(e.name)}</td><td class='val'>{value}</td><td class='val'>{tolerance}</td>"
            f"<td class='o-{e.outcome.replace(' ', '-')}'>{_e(e.outcome)}</td>"
            f"<td class='num'>{_e(started)}</td><td class='num'>{_e(took)}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def _errors(r: ExperimentResult) -> list[str]:
    broken = [e for e in r.entries if e.traceback]
    if not broken:
        return []
    out = ["<h3>Errors</h3>"]
    for e in broken:
        out.append(
            f"<details><summary>{_e(e.phase)}: {_e(e.name)}: {_e(e.error or '')}</summary>"
            f"<pre>{_e(e.traceback or '')}</pre></details>"
        )
    return out


def _timeline(r: ExperimentResult) -> list[str]:
    out = ["<h3>Fault timeline</h3>"]
    if r.run is None:
        return [*out, '<p class="missing">not recorded: the journal has no chaosagenkit extension</p>']
    if not r.run.timeline:
        return [*out, '<p class="missing">no event was recorded on the timeline</p>']
    rows = [
        "<table><tr><th>At</th><th>Event</th><th>Target</th><th>Kind</th><th>Id</th>"
        "<th>Expires after</th><th>Detail</th></tr>"
    ]
    for ev in r.run.timeline:
        duration = ev.get("duration_s")
        rows.append(
            f"<tr><td class='num'>{_e(offset_text(ev['t'], r.t_ref))}</td><td>{_e(str(ev['event']))}</td>"
            f"<td>{_e(str(ev.get('target', '')))}</td><td>{_e(str(ev.get('kind') or ''))}</td>"
            f"<td>{_e(str(ev.get('id') or ''))}</td>"
            f"<td class='num'>{_e(f'{duration} s' if duration is not None else '')}</td>"
            f"<td class='val'>{_e(value_text(ev['detail'], 200)) if ev.get('detail') else ''}</td></tr>"
        )
    rows.append("</table>")
    out.append("\n".join(rows))
    if r.windows:
        rows = [
            "<table><tr><th>Fault window</th><th>From</th><th>To</th><th>Lasted</th><th>Ended by</th></tr>"
        ]
        for w in r.windows:
            rows.append(
                f"<tr><td>{_e(w.label)}</td><td class='num'>{_e(offset_text(w.start, r.t_ref))}</td>"
                f"<td class='num'>{_e(offset_text(w.end, r.t_ref))}</td>"
                f"<td class='num'>{_e(duration_text(w.end - w.start))}</td><td>{_e(w.ended_by)}</td></tr>"
            )
        rows.append("</table>")
        out.append("\n".join(rows))
    return out


def _clients(i: int, r: ExperimentResult, plots: Plots) -> list[str]:
    out = ["<h3>Clients</h3>"]
    if r.run is None or not r.run.clients:
        reason = "the journal has no chaosagenkit extension" if r.run is None else "no client was declared"
        return [*out, f'<p class="missing">no request outcomes recorded: {reason}</p>']
    for j, c in enumerate(r.run.clients):
        out.append(f"<h4>{_e(c.name)}{_e(f' → {c.endpoint}') if c.endpoint else ''}</h4>")
        if c.middleware:
            out.append(
                f'<p class="facts">middleware: <span class="val">{_e(value_text(c.middleware, 400))}</span></p>'
            )
        if c.problem:
            out.append(f'<p class="missing">{_e(c.problem)}</p>')
        if c.t:
            out.append(_stats_table(c, r))
        if (i, j) in plots:
            out.append(
                f'<img class="plot" alt="latency and success of {_e(c.name)} over time" src="{plots[i, j]}">'
            )
    return out


def _stats_table(c: ClientOutcomes, r: ExperimentResult) -> str:
    s = r.client_stats(c)
    cells: list[tuple[str, Any]] = [
        ("requests", s.requests),
        ("good", s.good),
        ("errors", s.errors),
        ("wrong answers", s.wrong if s.wrong is not None else MISSING),
        ("latency p50", ms_text(s.latency_p50_ms)),
        ("p95", ms_text(s.latency_p95_ms)),
        ("max", ms_text(s.latency_max_ms)),
        ("good in fault windows", share_text(s.good_in_faults, s.requests_in_faults)),
        ("good outside", share_text(s.good_outside_faults, s.requests - s.requests_in_faults)),
    ]
    head = "".join(f"<th>{_e(k)}</th>" for k, _ in cells)
    body = "".join(f"<td class='num'>{_e(str(v))}</td>" for _, v in cells)
    table = f"<table><tr>{head}</tr><tr>{body}</tr></table>"
    if s.error_kinds:
        kinds = ", ".join(f"{k} × {n}" for k, n in s.error_kinds.items())
        table += f'<p class="facts">errors: <span class="val">{_e(kinds)}</span></p>'
    return table


def _badge(r: ExperimentResult, against_recorded: bool) -> str:
    return f'<span class="badge {_verdict_class(r, against_recorded)}">{_e(verdict_label(r, against_recorded))}</span>'


def _verdict_class(r: ExperimentResult, against_recorded: bool) -> str:
    """v0 holds/skipped, v1 deviates, v2 could not judge, vx deviates as recorded."""
    return "vx" if is_expected(r, against_recorded) else f"v{r.verdict.exit_code}"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
