"""Write an exploration's findings: ``findings.json`` (a list), ``findings.md``, ``explore.json``.

Each finding: the invariant, its minimal schedule, the experiment file that
replays it (``chaos run DIR/<file>.json`` deviates on that invariant), the
reproduction rate (k of n confirmation runs), the time to the first
violation, where it was found (trial and sandbox seed), how it was shrunk,
and the evidence (the first violations, one line each). ``explore.json``
summarises the exploration itself: seed, budget, runs, faults tried,
shrinking steps, the runs that could not be judged, the tolerances.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["render_markdown", "write_findings"]


def write_findings(out: Path, findings: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """Write the three files into ``out``."""
    (out / "findings.json").write_text(json.dumps(findings, indent=2))
    (out / "explore.json").write_text(json.dumps({**summary, "findings": len(findings)}, indent=2))
    (out / "findings.md").write_text(render_markdown(findings, summary))


def render_markdown(findings: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    """findings.md: a table, then one section per finding."""
    lines = [
        "# Exploration findings",
        "",
        f"`chaosagenkit explore --seed {summary['seed']} --budget-s {summary['budget_s']:g} "
        f"--transport {summary['transport']}` against `{summary['agent']}`: "
        f"{summary['runs']} runs ({summary['trials']} trials, {summary['faults_tried']} faults tried, "
        f"{summary['shrink_steps']} shrinking steps) in {summary['elapsed_s']:g} s, stopped by "
        f"{summary['stopped_by']}.",
        "",
        "Stacks (outermost first; RemoteAgent timeout "
        f"{summary.get('remote_timeout_ms', '?')} ms): "
        + "; ".join(f"{i}: {_stack_text(stack)}" for i, stack in enumerate(summary.get("stacks") or [])),
        "",
    ]
    if not findings:
        lines.append("No invariant was violated.")
    else:
        lines += [
            "| # | invariant | minimal schedule | reproduced | first violation after | experiment |",
            "|---|---|---|---|---|---|",
        ]
        for f in findings:
            rate = f["reproduction"]
            unconfirmed = "" if rate.get("confirmed") else " (unconfirmed)"
            lines.append(
                f"| {f['id']} | {f['invariant']} | {_cell(f['summary'])} "
                f"| {rate['reproduced']}/{rate['runs']}{unconfirmed} "
                f"| {f['time_to_first_violation_s']:g} s | [{f['experiment']}]({f['experiment']}) |"
            )
    unjudged = summary.get("unjudged_runs") or []
    if unjudged:
        lines += ["", f"{len(unjudged)} run(s) could not be judged (see trials.json):", ""]
        lines += [f"- run {u['trial']}: {_cell(u['why'])}" for u in unjudged]
    for f in findings:
        schedule = f["minimal_schedule"]
        lines += [
            "",
            f"## {f['id']}. {f['title']}",
            "",
            f"Violated by: {f['summary']} (stack {f['signature']['stack']}, sandbox seed {schedule['seed']}).",
            f"Found in trial {f['found_in_trial']} (sandbox seed {f['trial_seed']}), "
            f"{f['time_to_first_violation_s']:g} s into the exploration; shrunk in {f['shrinking']['steps']} steps "
            f"({f['shrinking']['runs']} runs); reproduced {f['reproduction']['reproduced']} of "
            f"{f['reproduction']['runs']} confirmation runs; seen again in {f['also_seen']} other trial(s)"
            + (f" (with {', '.join(f['also_seen_with'])})." if f.get("also_seen_with") else "."),
            f"What went wrong: {', '.join(f['signature'].get('kinds') or []) or '-'}.",
            "",
            f"Replay: `chaos run {f['experiment']}` (deviates on `{f['invariant']}`).",
        ]
        if f["evidence"]:
            lines += ["", "Evidence (first violations):", ""]
            lines += [f"- {line}" for line in f["evidence"]]
        lines += ["", "Minimal schedule:", "", "```json", json.dumps(schedule, indent=2), "```"]
    return "\n".join(lines) + "\n"


def _stack_text(stack: list[dict[str, Any]]) -> str:
    """``retry(max_retries=3, initial_delay=0.05) > timeout(timeout_ms=300)``; ``no middleware``."""
    if not stack:
        return "no middleware"
    layers = []
    for layer in stack:
        params = ", ".join(f"{k}={v}" for k, v in layer.items() if k != "type")
        layers.append(f"{layer.get('type')}({params})")
    return " > ".join(layers)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
