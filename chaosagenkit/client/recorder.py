"""Request outcomes, kept cheaply, and the statistics probes compute over them.

One outcome per completed request, stored column-wise (parallel lists) so
recording is a handful of appends and export is already the journal's
columnar shape. Definitions used everywhere (probes, summaries, reports):

- ``t``: wall-clock time (epoch s) the request was SENT; windows select on it,
  so "the last 5 s" means requests sent in the last 5 s.
- ``ok``: agenkit returned an answer (no exception reached the caller).
- ``wrong``: an answer came back but did not belong to its request.
- success = ok and not wrong; ``success_ratio`` = successes / sent.
- ``error``: ``__name__`` of the exception the caller saw (the outermost);
  its ``__cause__``/``__context__`` chain names are kept for detail.
- Percentiles: ``chaosagenkit.stats.percentile``, the one definition the
  reports and the host's stats use too (linear between closest ranks).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from chaosagenkit.stats import percentile

__all__ = ["Recorder", "Window", "error_chain", "latency_summary", "percentile"]


def latency_summary(latencies_ms: list[float]) -> dict[str, float | None]:
    """p50/p95/p99/max/mean of latencies in ms (2 decimals); None values when empty."""
    if not latencies_ms:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    ordered = sorted(latencies_ms)
    return {
        "p50": round(percentile(ordered, 50), 2),
        "p95": round(percentile(ordered, 95), 2),
        "p99": round(percentile(ordered, 99), 2),
        "max": round(ordered[-1], 2),
        "mean": round(sum(ordered) / len(ordered), 2),
    }


def error_chain(error: BaseException, limit: int = 8) -> tuple[str, ...]:
    """Class names of ``error`` and the errors it was raised from, outermost first."""
    names: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(names) < limit:
        names.append(type(current).__name__)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return tuple(names)


@dataclass(frozen=True)
class Window:
    """A consistent copy of the outcomes selected by a query (all columns aligned)."""

    t: list[float]
    latency_ms: list[float]
    ok: list[bool]
    error: list[str | None]
    wrong: list[bool]
    chains: list[tuple[str, ...] | None]

    def __len__(self) -> int:
        return len(self.t)

    def successes(self) -> int:
        return sum(1 for ok, wrong in zip(self.ok, self.wrong, strict=True) if ok and not wrong)

    def summary(self) -> dict[str, Any]:
        """The traffic summary: sent, ok, errors by type, success_ratio, wrong, latency, duration."""
        sent = len(self)
        errors = Counter(e for e in self.error if e is not None)
        if sent:
            first = min(self.t)
            last = max(t + lat / 1000.0 for t, lat in zip(self.t, self.latency_ms, strict=True))
            duration = round(last - first, 3)
        else:
            duration = 0.0
        return {
            "sent": sent,
            "ok": sum(self.ok),
            "errors": dict(sorted(errors.items())),
            "success_ratio": round(self.successes() / sent, 4) if sent else None,
            "wrong_answers": sum(self.wrong),
            "latency_ms": latency_summary(self.latency_ms),
            "duration_s": duration,
        }


class Recorder:
    """Append-only outcomes of one client; safe to read from another thread.

    Only the client runtime's loop appends. A row is one tuple appended in
    one step, and its error chain is stored before the row, so a reader that
    copies the rows first never sees half an outcome (no lock on the hot path).
    """

    def __init__(self) -> None:
        self.created = time.time()
        # (sent at epoch s, latency ms, error name or None, wrong, source)
        self._rows: list[tuple[float, float, str | None, bool, int]] = []
        self._chains: dict[int, tuple[str, ...]] = {}  # row index -> cause chain, errors only

    def __len__(self) -> int:
        return len(self._rows)

    def record(
        self,
        t: float,
        latency_ms: float,
        error: BaseException | None,
        wrong: bool,
        source: int,
    ) -> None:
        """Add one outcome: send time (epoch s), latency (ms), the error seen or None."""
        if error is None:
            self._rows.append((t, latency_ms, None, wrong, source))
            return
        self._chains[len(self._rows)] = error_chain(error)
        self._rows.append((t, latency_ms, type(error).__name__, wrong, source))

    def record_answer(self, t: float, latency_ms: float, wrong: bool, source: int) -> None:
        """Add one answered request (the hot path: one tuple, one append)."""
        self._rows.append((t, latency_ms, None, wrong, source))

    def select(
        self, window_s: float = 0.0, source: int | None = None, since: float | None = None, start: int = 0
    ) -> Window:
        """Outcomes sent in the last ``window_s`` s (0 = all), from ``source``, at or after ``since``.

        ``start`` skips the rows recorded before that index (a batch knows where it began).
        """
        cutoff = time.time() - window_s if window_s > 0 else None
        if since is not None:
            cutoff = since if cutoff is None else max(cutoff, since)
        rows = self._rows[:]  # first the rows, then the chains stored before them
        chains = self._chains.copy()
        keep = [
            i
            for i in range(start, len(rows))
            if (cutoff is None or rows[i][0] >= cutoff) and (source is None or rows[i][4] == source)
        ]
        return Window(
            t=[rows[i][0] for i in keep],
            latency_ms=[rows[i][1] for i in keep],
            ok=[rows[i][2] is None for i in keep],
            error=[rows[i][2] for i in keep],
            wrong=[rows[i][3] for i in keep],
            chains=[chains.get(i) for i in keep],
        )

    def export(self, t0: float) -> dict[str, list[Any]]:
        """Columns sorted by send time: t (s since ``t0``), latency_ms, ok, error, wrong."""
        window = self.select()
        order = sorted(range(len(window)), key=window.t.__getitem__)
        return {
            "t": [round(window.t[i] - t0, 3) for i in order],
            "latency_ms": [round(window.latency_ms[i], 2) for i in order],
            "ok": [1 if window.ok[i] else 0 for i in order],
            "error": [window.error[i] for i in order],
            "wrong": [1 if window.wrong[i] else 0 for i in order],
        }
