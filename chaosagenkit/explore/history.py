"""What a trial recorded, as plain data the invariants read: the history.

Like a Jepsen history, it is everything observed and nothing judged:

- ``requests``: one ``Request`` per call a caller made (client, request id,
  send time, latency, the error it saw with its class's module, message and
  cause chain, whether the answer belonged to another request and to which),
  with the ``attempts`` agenkit's retry middleware made for it (each failed
  attempt's error chain and whether it was retried);
- ``faults``: the fault windows, from the run's fault timeline (the actual
  inject, crash, restart, disable and clear times, not the planned ones);
- ``breakers``: samples of each caller's agenkit circuit breaker (state,
  requests admitted so far, its transition counts), taken every few
  milliseconds and right before and after every call;
- ``host_before`` / ``host_after``: the chaos host's open file descriptors,
  connections on its agent port and asyncio tasks, when the traffic began
  and after it ended and the run's extra clients were closed;
- ``stack`` and ``remote_timeout_ms``: the callers' configuration, which
  several tolerances derive from.

Times are epoch seconds. ``fault_windows`` turns timeline events into
windows; everything here is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Attempt",
    "BreakerSample",
    "FaultWindow",
    "History",
    "HostSample",
    "Request",
    "fault_windows",
]


@dataclass(frozen=True)
class Attempt:
    """A failed attempt inside agenkit's retry middleware: its error chain, and whether it was retried."""

    errors: tuple[str, ...]
    retried: bool


@dataclass(frozen=True)
class Request:
    """One call a caller made, and what came back."""

    id: str
    client: str
    sent: float  # epoch s
    latency_ms: float
    error: str | None = None  # class name of what the caller saw; None: an answer came back
    error_module: str | None = None
    message: str = ""
    chain: tuple[str, ...] = ()
    wrong: bool = False  # the answer belonged to another request
    answer_id: str | None = None  # the request id the answer carried
    attempts: tuple[Attempt, ...] = ()

    @property
    def end(self) -> float:
        return self.sent + self.latency_ms / 1000.0

    @property
    def ok(self) -> bool:
        """Answered, with its own answer."""
        return self.error is None and not self.wrong


@dataclass(frozen=True)
class FaultWindow:
    """A fault active from ``start`` to ``end`` (epoch s; None: still active when the run ended)."""

    kind: str
    target: str
    start: float
    end: float | None


@dataclass(frozen=True)
class BreakerSample:
    """One caller's circuit breaker at time ``t``: state, admitted requests so far, transitions."""

    t: float
    client: str
    state: str
    admitted: int  # total_requests - rejected_requests
    changes: tuple[tuple[str, int], ...]  # sorted (transition, count)


@dataclass(frozen=True)
class HostSample:
    """The chaos host's resources at time ``t``."""

    t: float
    pid: int
    fds: int
    connections: int
    tasks: int | None = None


@dataclass(frozen=True)
class History:
    """Everything one trial observed (see the module docstring)."""

    started: float
    ended: float
    requests: tuple[Request, ...] = ()
    faults: tuple[FaultWindow, ...] = ()
    breakers: tuple[BreakerSample, ...] = ()
    host_before: HostSample | None = None
    host_after: HostSample | None = None
    stack: tuple[dict[str, Any], ...] = ()
    remote_timeout_ms: float = 2000.0
    answers_checked: bool = True
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> dict[str, Any]:
        failed = sum(1 for r in self.requests if r.error is not None)
        return {
            "requests": len(self.requests),
            "failed": failed,
            "wrong": sum(1 for r in self.requests if r.wrong),
            "fault_windows": len(self.faults),
            "breaker_samples": len(self.breakers),
            "duration_s": round(self.ended - self.started, 3),
        }


#: Timeline events that start a fault window, and those that end one.
_STARTS = ("inject", "disable", "crash")


def fault_windows(events: list[dict[str, Any]]) -> tuple[FaultWindow, ...]:
    """Fault windows from a run's fault timeline (``SANDBOX.timeline()`` entries).

    ``inject`` and ``disable`` open a window that ends ``duration_s`` later
    (their TTL) unless a ``clear`` of the same target (of that fault id,
    when the clear names one), an ``enable`` (for a disable) or a
    ``restart`` comes first; a ``crash`` opens one that ends at the next
    ``restart`` or ``start`` of that target (None until then).
    """
    windows: list[FaultWindow] = []
    for i, event in enumerate(events):
        if event.get("event") not in _STARTS:
            continue
        start = float(event["t"])
        target = str(event.get("target"))
        kind = str(event.get("kind") or event["event"])
        duration = event.get("duration_s")
        end = (
            start + float(duration)
            if isinstance(duration, int | float) and event["event"] != "crash"
            else None
        )
        for later in events[i + 1 :]:
            if later.get("target") != target:
                continue
            if _ends(event, later):
                end = float(later["t"]) if end is None else min(end, float(later["t"]))
                break
        windows.append(FaultWindow(kind, target, start, end))
    return tuple(windows)


def _ends(opening: dict[str, Any], later: dict[str, Any]) -> bool:
    what = later.get("event")
    if opening["event"] == "crash":
        return what in ("restart", "start")
    if what == "restart":
        return opening["event"] == "inject"  # a restarted host starts with no faults
    if opening["event"] == "disable":
        return what in ("enable", "clear")
    if what != "clear":
        return False
    fault_id = later.get("id")
    removed = (later.get("detail") or {}).get("removed")
    if fault_id is not None:
        return fault_id == opening.get("id")
    if isinstance(removed, list):
        return opening.get("id") in removed
    return True
