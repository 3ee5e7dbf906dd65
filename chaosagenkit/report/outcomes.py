"""A client's recorded request outcomes, checked and summarised.

The chaosagenkit extension stores each client's outcomes as columns
(``t`` seconds since ``t0``, ``latency_ms``, ``ok``, ``error``, ``wrong``).
Nothing here fills a gap: a column that is missing stays unknown, and
columns of different lengths make the whole record unusable (``problem``)
rather than being cut to fit.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from chaosagenkit.report.windows import FaultWindow
from chaosagenkit.stats import percentile
from chaosagenkit.validation import finite_float

__all__ = ["ClientOutcomes", "OutcomeStats", "parse_client"]

_REQUIRED = ("t", "latency_ms", "ok")
_OPTIONAL = ("error", "wrong")


@dataclass
class OutcomeStats:
    requests: int
    ok: int
    errors: int
    #: answered but with the wrong content; None when the journal has no ``wrong`` column
    wrong: int | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_max_ms: float | None
    error_kinds: dict[str, int]
    #: share of good requests (ok and not wrong) inside / outside fault windows
    good_in_faults: float | None
    good_outside_faults: float | None
    requests_in_faults: int

    @property
    def good(self) -> int:
        return self.ok - (self.wrong or 0)


@dataclass
class ClientOutcomes:
    name: str
    endpoint: str | None = None
    middleware: list[Any] = field(default_factory=list)
    t0: float | None = None
    t: list[float] = field(default_factory=list)
    latency_ms: list[float | None] = field(default_factory=list)
    ok: list[int] = field(default_factory=list)
    error: list[str | None] | None = None
    wrong: list[int] | None = None
    #: why the outcomes cannot be used, or None
    problem: str | None = None

    def __len__(self) -> int:
        return len(self.t)

    def good(self, i: int) -> bool:
        return bool(self.ok[i]) and not (self.wrong is not None and self.wrong[i])

    def stats(self, windows: list[FaultWindow]) -> OutcomeStats:
        n = len(self)
        ok = sum(1 for v in self.ok if v)
        wrong = None if self.wrong is None else sum(1 for i in range(n) if self.ok[i] and self.wrong[i])
        latencies = sorted(v for i, v in enumerate(self.latency_ms) if self.ok[i] and v is not None)
        kinds: Counter[str] = Counter()
        for i in range(n):
            if not self.ok[i]:
                kinds[str(self.error[i]) if self.error and self.error[i] else "unknown error"] += 1
        spans = (
            _merged([(w.start - self.t0, w.end - self.t0) for w in windows]) if self.t0 is not None else []
        )
        starts = [a for a, _ in spans]
        inside = good_inside = good_all = 0
        for i, t in enumerate(self.t):
            good = self.good(i)
            good_all += good
            k = bisect.bisect_right(starts, t) - 1
            if k >= 0 and t <= spans[k][1]:
                inside += 1
                good_inside += good
        outside, good_outside = n - inside, good_all - good_inside
        return OutcomeStats(
            requests=n,
            ok=ok,
            errors=n - ok,
            wrong=wrong,
            latency_p50_ms=_percentile(latencies, 50),
            latency_p95_ms=_percentile(latencies, 95),
            latency_max_ms=latencies[-1] if latencies else None,
            error_kinds=dict(kinds.most_common()),
            good_in_faults=good_inside / inside if inside and spans else None,
            good_outside_faults=good_outside / outside if outside and spans else None,
            requests_in_faults=inside,
        )


def parse_client(name: str, record: Any) -> ClientOutcomes:
    """Read one entry of the extension's ``clients`` map."""
    if not isinstance(record, dict):
        return ClientOutcomes(name=name, problem="the client record is not an object")
    client = ClientOutcomes(
        name=name,
        endpoint=record.get("endpoint") if isinstance(record.get("endpoint"), str) else None,
        middleware=middleware if isinstance(middleware := record.get("middleware"), list) else [],
        t0=finite_float(record.get("t0")),
    )
    columns = record.get("outcomes")
    if not isinstance(columns, dict):
        client.problem = "no request outcomes recorded"
        return client
    missing = [c for c in _REQUIRED if not isinstance(columns.get(c), list)]
    if missing:
        client.problem = f"outcome column(s) missing: {', '.join(missing)}"
        return client
    lengths = {c: len(columns[c]) for c in (*_REQUIRED, *_OPTIONAL) if isinstance(columns.get(c), list)}
    if len(set(lengths.values())) > 1:
        sizes = ", ".join(f"{c}: {n}" for c, n in lengths.items())
        client.problem = f"outcome columns have different lengths ({sizes})"
        return client
    times = [finite_float(v) for v in columns["t"]]
    if None in times:
        client.problem = "outcome column 't' holds a value that is not a number"
        return client
    client.t = times  # type: ignore[assignment]  # no None left
    client.latency_ms = [finite_float(v) for v in columns["latency_ms"]]
    client.ok = [1 if v else 0 for v in columns["ok"]]
    if isinstance(columns.get("error"), list):
        client.error = [None if v is None else str(v) for v in columns["error"]]
    if isinstance(columns.get("wrong"), list):
        client.wrong = [1 if v else 0 for v in columns["wrong"]]
    if client.t0 is None and client.t:
        client.problem = "outcomes have no 't0': they cannot be placed on the run's clock"
    return client


def _merged(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping spans joined, in order: a request in two windows counts once."""
    merged: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _percentile(sorted_values: list[float], q: float) -> float | None:
    """``chaosagenkit.stats.percentile``, the one definition probes use too; None for no values."""
    return percentile(sorted_values, q) if sorted_values else None
