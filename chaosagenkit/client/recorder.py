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
- Percentiles interpolate linearly between closest ranks (numpy's default,
  Excel's PERCENTILE.INC): p50 of [10, 20] is 15.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

__all__ = ["Recorder", "Window", "percentile", "latency_summary", "error_chain"]


def percentile(sorted_values: list[float], p: float) -> float:
    """The ``p``-th percentile (0..100) of ascending ``sorted_values``, linearly interpolated."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {p}")
    rank = (len(sorted_values) - 1) * p / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = rank - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


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
    names = []
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
    """Append-only outcome columns of one client; safe to read from another thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.created = time.time()
        self._t: list[float] = []
        self._latency: list[float] = []
        self._ok: list[bool] = []
        self._error: list[str | None] = []
        self._wrong: list[bool] = []
        self._source: list[int] = []
        self._chains: dict[int, tuple[str, ...]] = {}  # index -> cause chain, errors only

    def __len__(self) -> int:
        return len(self._t)

    def record(
        self,
        t: float,
        latency_ms: float,
        error: BaseException | None,
        wrong: bool,
        source: int,
    ) -> None:
        """Add one outcome: send time (epoch s), latency (ms), the error seen or None."""
        with self._lock:
            if error is not None:
                self._chains[len(self._t)] = error_chain(error)
            self._t.append(t)
            self._latency.append(latency_ms)
            self._ok.append(error is None)
            self._error.append(None if error is None else type(error).__name__)
            self._wrong.append(wrong)
            self._source.append(source)

    def select(self, window_s: float = 0.0, source: int | None = None, since: float | None = None) -> Window:
        """Outcomes sent in the last ``window_s`` s (0 = all), from ``source``, at or after ``since``."""
        cutoff = time.time() - window_s if window_s > 0 else None
        if since is not None:
            cutoff = since if cutoff is None else max(cutoff, since)
        with self._lock:
            n = len(self._t)
            columns = (self._t[:n], self._latency[:n], self._ok[:n], self._error[:n], self._wrong[:n])
            sources = self._source[:n]
            chains = dict(self._chains)
        keep = [
            i
            for i in range(n)
            if (cutoff is None or columns[0][i] >= cutoff) and (source is None or sources[i] == source)
        ]
        t, latency, ok, error, wrong = ([col[i] for i in keep] for col in columns)
        return Window(t, latency, ok, error, wrong, [chains.get(i) for i in keep])

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
