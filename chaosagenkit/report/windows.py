"""Fault windows: when each fault was in force, read from the run's fault timeline.

The rule, stated once (every report format shades or lists these windows):

- an ``inject`` lasts until the first ``clear`` on the same target that
  names the same fault ``id`` (a ``clear`` without ``id`` clears every
  fault on that target), or until ``t + duration_s`` (faults expire by
  themselves), whichever comes first; otherwise until the end of the run;
- ``disable`` lasts until ``enable`` on the same target or until
  ``t + duration_s`` (the proxy daemon enables it again by itself, and
  records nothing in the run's timeline), whichever comes first;
  ``crash`` lasts until ``restart`` or ``start`` on the same target;
  otherwise both last until the end of the run;
- a second ``inject`` with the same ``id`` on the same target replaces the
  first, which ends there.

Events with other names (``start``, ``stop`` on their own) open no window.
Events are taken in time order; a timeline entry without a numeric ``t``
cannot be placed and is skipped (the caller reports how many were).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chaosagenkit.validation import finite_float

__all__ = ["FaultWindow", "fault_windows", "usable_events"]

#: event that opens a window -> (events that close it, kind when the event names none)
_OPENERS: dict[str, tuple[frozenset[str], str]] = {
    "inject": (frozenset({"clear"}), "fault"),
    "disable": (frozenset({"enable"}), "disabled"),
    "crash": (frozenset({"restart", "start"}), "crashed"),
}

#: openers whose ``duration_s`` ends the window by itself
_EXPIRING = frozenset({"inject", "disable"})


@dataclass(frozen=True)
class FaultWindow:
    """One fault in force on ``target`` from ``start`` to ``end`` (epoch seconds)."""

    target: str
    kind: str
    start: float
    end: float
    #: why it ended: cleared, expired, replaced, enabled, restarted, started, run ended
    ended_by: str
    opened_by: str = "inject"
    fault_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.target}: {self.kind}"


@dataclass
class _Open:
    event: dict[str, Any]
    opened_by: str
    kind: str
    expires: float | None


def usable_events(events: list[Any]) -> list[dict[str, Any]]:
    """The timeline entries that can be placed in time, in time order."""
    usable = [
        e
        for e in events
        if isinstance(e, dict) and finite_float(e.get("t")) is not None and isinstance(e.get("event"), str)
    ]
    return sorted(usable, key=lambda e: e["t"])  # stable: equal times keep their order


def fault_windows(events: list[Any], run_end: float | None) -> list[FaultWindow]:
    """Every fault window of the timeline ``events``, ordered by start.

    ``run_end`` (epoch seconds) closes windows still open at the end; when
    it is unknown they close at the last known instant of the timeline.
    """
    ordered = usable_events(events)
    if run_end is None:
        run_end = max((e["t"] for e in ordered), default=None)
    open_windows: list[_Open] = []
    closed: list[FaultWindow] = []

    for event in ordered:
        name, target, t = event["event"], str(event.get("target", "?")), float(event["t"])
        fault_id = _fault_id(event)
        if name in _OPENERS:
            if name == "inject" and fault_id is not None:
                for w in _matching(open_windows, target, {"inject"}, fault_id):
                    closed.append(_close(w, t, "replaced"))
                    open_windows.remove(w)
            default_kind = _OPENERS[name][1]
            duration = finite_float(event.get("duration_s"))
            expires = t + duration if name in _EXPIRING and duration is not None and duration > 0 else None
            kind = str(event.get("kind") or default_kind)
            open_windows.append(_Open(event, name, kind, expires))
            continue
        openers = {o for o, (closers, _kind) in _OPENERS.items() if name in closers}
        if not openers:
            continue
        for w in _matching(open_windows, target, openers, fault_id):
            closed.append(_close(w, t, _ended_by(name)))
            open_windows.remove(w)

    for w in open_windows:
        end = run_end if run_end is not None else w.event["t"]
        closed.append(_close(w, max(end, w.event["t"]), "run ended"))
    return sorted(closed, key=lambda w: (w.start, w.end))


def _fault_id(event: dict[str, Any]) -> str | None:
    value = event.get("id")
    return None if value is None else str(value)


def _matching(open_windows: list[_Open], target: str, openers: set[str], fault_id: str | None) -> list[_Open]:
    return [
        w
        for w in open_windows
        if w.opened_by in openers
        and str(w.event.get("target", "?")) == target
        # an id narrows a clear to one fault; enable/restart close whatever they match
        and (fault_id is None or w.opened_by != "inject" or _fault_id(w.event) == fault_id)
    ]


def _close(w: _Open, t: float, reason: str) -> FaultWindow:
    start = float(w.event["t"])
    if w.expires is not None and w.expires < t:
        t, reason = w.expires, "expired"
    detail = w.event.get("detail")
    return FaultWindow(
        target=str(w.event.get("target", "?")),
        kind=w.kind,
        start=start,
        end=t,
        ended_by=reason,
        opened_by=w.opened_by,
        fault_id=_fault_id(w.event),
        detail=detail if isinstance(detail, dict) else {},
    )


def _ended_by(event: str) -> str:
    return {"clear": "cleared", "enable": "enabled", "restart": "restarted", "start": "started"}[event]
