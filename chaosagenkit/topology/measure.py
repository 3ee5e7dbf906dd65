"""Measurements of a system: pure functions over recorded outcomes (no sockets, no clock).

Outcomes are columns as an edge caller exports them (``t`` epoch send time,
``latency_ms``, ``error`` name or None) or a client's ``Window``.
Definitions used by the probes, the journal and the report:

- a call is *affected* when it failed, or took longer than the latency
  bound (when one is given), or answered wrongly;
- *blast radius*: the fraction of top-level requests affected in a window;
  per client too, and the clients that suffered (any affected request);
- *success per tier*: successes / calls over the edges of that tier;
- *first failed tier*: the tier of the edge whose first error (in the
  window) was sent earliest;
- *in flight* at time T: a call sent before T that ended after T.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from chaosagenkit.client.recorder import Window, latency_summary

__all__ = [
    "blast_radius",
    "columns_since",
    "edge_record",
    "first_failed",
    "in_flight",
    "summarise",
    "tier_success",
    "window_from_columns",
]


def window_from_columns(outcomes: dict[str, list[Any]]) -> Window:
    """A recorder Window from an edge's exported columns (answers are not checked at edges)."""
    t = list(outcomes.get("t") or [])
    errors = list(outcomes.get("error") or [None] * len(t))
    return Window(
        t=t,
        latency_ms=list(outcomes.get("latency_ms") or []),
        ok=[e is None for e in errors],
        error=errors,
        wrong=list(outcomes.get("wrong") or [False] * len(t)),
        chains=[None] * len(t),
    )


def columns_since(window: Window, since: float | None = None, until: float | None = None) -> Window:
    """The outcomes sent at or after ``since`` (and before ``until``)."""
    keep = [
        i for i, t in enumerate(window.t) if (since is None or t >= since) and (until is None or t < until)
    ]
    return Window(
        t=[window.t[i] for i in keep],
        latency_ms=[window.latency_ms[i] for i in keep],
        ok=[window.ok[i] for i in keep],
        error=[window.error[i] for i in keep],
        wrong=[window.wrong[i] for i in keep],
        chains=[window.chains[i] for i in keep],
    )


def summarise(window: Window) -> dict[str, Any]:
    """sent, ok, errors by type, success_ratio, wrong answers, latency (the client summary's shape)."""
    return window.summary()


def affected(window: Window, latency_bound_ms: float | None = None) -> list[bool]:
    return [
        (not ok) or wrong or (latency_bound_ms is not None and latency > latency_bound_ms)
        for ok, wrong, latency in zip(window.ok, window.wrong, window.latency_ms, strict=True)
    ]


def blast_radius(windows: dict[str, Window], latency_bound_ms: float | None = None) -> dict[str, Any]:
    """Fraction of all requests affected, per client, and the clients that suffered."""
    by_client: dict[str, float | None] = {}
    counts: dict[str, int] = {}
    total = hit = 0
    for name, window in windows.items():
        flags = affected(window, latency_bound_ms)
        total += len(flags)
        hit += sum(flags)
        counts[name] = sum(flags)
        by_client[name] = round(sum(flags) / len(flags), 4) if flags else None
    return {
        "requests": total,
        "affected": hit,
        "affected_fraction": round(hit / total, 4) if total else None,
        "by_client": by_client,
        "affected_by_client": counts,
        "suffered": sorted(name for name, n in counts.items() if n),
        **{f"affected_{name}": fraction for name, fraction in by_client.items()},  # for range tolerances
        "latency_bound_ms": latency_bound_ms,
    }


def first_failed(edges: dict[str, tuple[int, Window]], since: float | None = None) -> dict[str, Any]:
    """The tier and edge whose first error (sent at or after ``since``) ENDED earliest.

    By end time, not send time: a caller's call starts before its callee's
    and ends after it, so the failure that came first is the one that ended
    first. ``tier`` is -1 when no edge failed.
    """
    first: tuple[float, int, str] | None = None
    for name, (tier, window) in sorted(edges.items()):
        ends = [
            t + latency / 1000.0
            for t, latency, ok in zip(window.t, window.latency_ms, window.ok, strict=True)
            if not ok and (since is None or t >= since)
        ]
        if ends and (first is None or (min(ends), tier) < (first[0], first[1])):
            first = (min(ends), tier, name)
    if first is None:
        return {"tier": -1, "edge": None, "after_s": None}
    return {
        "tier": first[1],
        "edge": first[2],
        "after_s": None if since is None else round(first[0] - since, 3),
    }


def in_flight(window: Window, at: float) -> dict[str, Any]:
    """Calls sent before ``at`` that ended after it: how many completed, how many failed, with what."""
    done = failed = 0
    errors: Counter[str] = Counter()
    for t, latency, ok, error in zip(window.t, window.latency_ms, window.ok, window.error, strict=True):
        if t < at < t + latency / 1000.0:
            if ok:
                done += 1
            else:
                failed += 1
                errors[str(error)] += 1
    return {
        "in_flight": done + failed,
        "completed": done,
        "failed": failed,
        "errors": dict(sorted(errors.items())),
    }


def edge_record(seen: dict[str, Any], t0: float) -> dict[str, Any]:
    """What the journal keeps of an edge: its caller's summary, middleware states, outcome columns."""
    window = window_from_columns(seen.get("outcomes") or {})
    summary = window.summary()
    middleware = [
        {"kind": m.get("kind"), **({"state": m["state"]} if "state" in m else {})}
        for m in seen.get("middleware") or []
    ]
    return {
        "sent": summary["sent"],
        "ok": summary["ok"],
        "errors": summary["errors"],
        "wrong_answers": summary["wrong_answers"],
        "success_ratio": summary["success_ratio"],
        "latency_ms": summary["latency_ms"] if summary["sent"] else latency_summary([]),
        "middleware_state": middleware,
        "outcomes": {
            "t": [round(t - t0, 3) for t in window.t],
            "latency_ms": list(window.latency_ms),
            "ok": [1 if ok else 0 for ok in window.ok],
            "error": list(window.error),
            "wrong": [1 if wrong else 0 for wrong in window.wrong],
        },
    }


def tier_success(edges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per tier: its edges, calls, successes and success ratio (edges without data are skipped)."""
    tiers: dict[int, dict[str, Any]] = {}
    for edge in edges:
        if edge.get("sent") is None:
            continue
        tier = tiers.setdefault(edge["tier"], {"tier": edge["tier"], "edges": [], "sent": 0, "ok": 0})
        tier["edges"].append(edge["name"])
        tier["sent"] += edge["sent"]
        tier["ok"] += edge["ok"] - edge.get("wrong_answers", 0)
    for tier in tiers.values():
        tier["success_ratio"] = round(tier["ok"] / tier["sent"], 4) if tier["sent"] else None
    return [tiers[k] for k in sorted(tiers)]
