"""How values, tolerances, durations and times read in every report format."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from chaosagenkit.report.model import ExperimentResult, RunEntry, Verdict

__all__ = [
    "MISSING",
    "checked_value",
    "duration_text",
    "entry_summary",
    "is_expected",
    "ms_text",
    "observed_vs_recorded",
    "offset_text",
    "share_text",
    "time_text",
    "tolerance_text",
    "value_text",
    "verdict_tally",
]

#: what every format prints where the journal has nothing
MISSING = "not recorded"


def value_text(value: Any, limit: int = 120) -> str:
    """A probe output as compact JSON, cut to ``limit`` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    except (TypeError, ValueError):  # a circular structure cannot come from JSON, but be safe
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tolerance_text(tolerance: Any, limit: int = 120) -> str:
    """A Chaos Toolkit tolerance in words: ``[0.9, 1.0]`` reads ``between 0.9 and 1.0``."""
    if isinstance(tolerance, list) and len(tolerance) == 2:
        return f"between {value_text(tolerance[0])} and {value_text(tolerance[1])}"
    if isinstance(tolerance, dict):
        kind = tolerance.get("type")
        target = tolerance.get("target")
        of = f" of {target}" if target else ""
        if kind == "range" and isinstance(tolerance.get("range"), list):
            low, high = (tolerance["range"] + [None, None])[:2]
            return f"between {value_text(low)} and {value_text(high)}{of}"
        if kind == "regex":
            return f"matches /{tolerance.get('pattern')}/{of}"
        if kind == "jsonpath":
            expect = f" = {value_text(tolerance['expect'])}" if "expect" in tolerance else ""
            return f"jsonpath {tolerance.get('path')}{expect}{of}"
        if kind == "probe":
            return f"probe {tolerance.get('name') or value_text(tolerance.get('provider'), 60)}"
    return value_text(tolerance, limit)


def checked_value(entry: RunEntry) -> tuple[str, Any]:
    """What the tolerance looks at: ``("name.target", output[target])`` or ``(name, output)``."""
    tolerance, output = entry.tolerance, entry.output
    if entry.has_tolerance and isinstance(tolerance, dict) and isinstance(output, dict):
        target = tolerance.get("target")
        if isinstance(target, str) and target in output:
            return f"{entry.name}.{target}", output[target]
    return entry.name, output


def ms_text(value: float | None) -> str:
    """A latency: ``0.54 ms``, ``7.9 ms``, ``412 ms``; ``—`` when there is none."""
    if value is None:
        return "—"
    if value < 1:
        return f"{value:.2f} ms"
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    if seconds < 0.01:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def offset_text(t: float | None, t_ref: float | None) -> str:
    """Seconds after the run's start: ``+12.3 s``."""
    if t is None or t_ref is None:
        return MISSING
    return f"{t - t_ref:+.1f} s"


def time_text(moment: datetime | None) -> str:
    if moment is None:
        return MISSING
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def entry_summary(entry: RunEntry, limit: int = 80) -> str:
    """``name = value (expected TOLERANCE: met)`` or ``name: error line`` for one entry."""
    match entry.outcome:
        case "not run":
            return f"{entry.name}: not run"
        case "did not finish":
            return f"{entry.name}: did not finish"
        case "error":
            return f"{entry.name}: {entry.error or 'failed (no exception recorded)'}"
    label, value = checked_value(entry)
    text = f"{label} = {value_text(value, limit)}"
    if entry.has_tolerance:
        text += f" (expected {tolerance_text(entry.tolerance, limit)}: {entry.outcome})"
    return text


def observed_vs_recorded(result: ExperimentResult) -> str | None:
    """``recorded deviates, observed holds (differs: ...)`` when the experiment records a verdict."""
    recorded = result.recorded_verdict
    if recorded is None:
        return None
    comparison = result.comparison
    text = f"recorded {recorded}, observed {result.observed_verdict}"
    match comparison.outcome:
        case "same" | "expected":
            return text
        case "not recorded":
            return f"{text} (deviations not recorded)"
        case "unstable":
            return f"{text} ({comparison.message})"
        case _:
            return f"{text} (differs: {comparison.message})"


def is_expected(result: ExperimentResult, against_recorded: bool) -> bool:
    """A deviation the record explains, in a report made ``--against-recorded``: a known finding,
    or a deviation only in expectations recorded as unstable on this transport."""
    return (
        against_recorded
        and result.verdict == Verdict.DEVIATES
        and result.comparison.outcome in ("expected", "unstable")
    )


def verdict_tally(results: list[ExperimentResult], against_recorded: bool = False) -> tuple[str, str]:
    """("3 experiments", "2 holds, 1 deviates"): how many runs, and how many of each verdict.

    ``against_recorded``: deviations exactly as recorded are counted as "expected".
    """
    counts: Counter[str] = Counter()
    for r in results:
        counts["deviates (expected)" if is_expected(r, against_recorded) else r.verdict.label] += 1
    order = [v.label for v in Verdict]
    order.insert(order.index("deviates") + 1, "deviates (expected)")
    parts = [f"{counts[label]} {label}" for label in order if counts[label]]
    return f"{len(results)} experiment{'s' if len(results) != 1 else ''}", ", ".join(parts)


def share_text(value: float | None, of: int | None = None) -> str:
    """A share as a percentage ("83%"), or with the count it is a share of ("83.3% of 120")."""
    if value is None:
        return "—"
    return f"{100 * value:.0f}%" if of is None else f"{100 * value:.1f}% of {of}"
