"""Schedules as plain data: which faults happen when, and what traffic runs meanwhile.

A schedule is everything one exploration trial does, and nothing else:

- ``faults``: each a catalogue kind (``"service.delay"``, ``"network.reset_peer"``,
  ``"frame.malformed_frame"``, ...), a start and a duration in seconds from
  the start of the method, and the kind's parameters;
- ``traffic``: a steady stream of sequential requests on one client, one
  every ``interval_ms``, plus events at given times: a concurrent ``burst``
  on that client, ``fresh_clients`` that each send a burst as their very
  first use, an ``idle`` gap in the stream (longer than a server's idle
  timeout when it is meant to test one);
- ``stack``: the callers' agenkit middleware, outermost first (the JSON
  declarations of ``chaosagenkit.client.stack``);
- ``seed``: the sandbox's seed (every random fault decision of the chaos
  host and the proxy derives from it).

Design rule: plain data, JSON in and JSON out, compared by canonical JSON
(``key``); no I/O, no clock, no randomness. The generator draws schedules,
the shrinker rewrites them, the experiment builder turns them into Chaos
Toolkit activities; none of them needs anything else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from chaosagenkit.exceptions import ConfigurationError

__all__ = [
    "EVENT_KINDS",
    "Fault",
    "Schedule",
    "Traffic",
    "TrafficEvent",
]

#: What can happen to the traffic besides its steady stream.
EVENT_KINDS = ("burst", "fresh_clients", "idle")


@dataclass(frozen=True)
class Fault:
    """One fault: a catalogue kind, when it starts and how long it lasts (s), its parameters."""

    kind: str
    start_s: float
    duration_s: float
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    @property
    def source(self) -> str:
        """The fault source that applies it: the part of the kind before the dot."""
        return self.kind.split(".", 1)[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "start_s": round(self.start_s, 3),
            "duration_s": round(self.duration_s, 3),
            "params": dict(self.params),
        }

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
            raise ConfigurationError("faults[]", f"must be an object with a 'kind', got {data!r:.80}")
        params = data.get("params") or {}
        if not isinstance(params, dict):
            raise ConfigurationError("faults[].params", f"must be an object, got {params!r:.80}")
        return cls(
            kind=data["kind"],
            start_s=_seconds(data.get("start_s", 0.0), "faults[].start_s"),
            duration_s=_seconds(data.get("duration_s", 0.0), "faults[].duration_s"),
            params=dict(params),
        )


@dataclass(frozen=True)
class TrafficEvent:
    """Something the traffic does at ``at_s`` besides its steady stream.

    ``burst``: ``size`` concurrent requests on the steady client.
    ``fresh_clients``: ``clients`` new clients, each sending ``size``
    concurrent requests as its first use. ``idle``: the steady stream
    pauses for ``duration_s`` seconds.
    """

    kind: str
    at_s: float
    size: int = 1
    clients: int = 1
    duration_s: float = 0.0

    @property
    def end_s(self) -> float:
        return self.at_s + self.duration_s

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "at_s": round(self.at_s, 3)}
        if self.kind in ("burst", "fresh_clients"):
            data["size"] = self.size
        if self.kind == "fresh_clients":
            data["clients"] = self.clients
        if self.kind == "idle":
            data["duration_s"] = round(self.duration_s, 3)
        return data

    @classmethod
    def from_json(cls, data: Any) -> TrafficEvent:
        if not isinstance(data, dict) or data.get("kind") not in EVENT_KINDS:
            raise ConfigurationError(
                "traffic.events[]",
                f"must be an object with a kind in {', '.join(EVENT_KINDS)}, got {data!r:.80}",
            )
        return cls(
            kind=data["kind"],
            at_s=_seconds(data.get("at_s", 0.0), "traffic.events[].at_s"),
            size=_count(data.get("size", 1), "traffic.events[].size"),
            clients=_count(data.get("clients", 1), "traffic.events[].clients"),
            duration_s=_seconds(data.get("duration_s", 0.0), "traffic.events[].duration_s"),
        )


@dataclass(frozen=True)
class Traffic:
    """A steady sequential stream (one request every ``interval_ms``) and its events."""

    interval_ms: float = 50.0
    events: tuple[TrafficEvent, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"interval_ms": round(self.interval_ms, 3), "events": [e.to_json() for e in self.events]}

    @classmethod
    def from_json(cls, data: Any) -> Traffic:
        if not isinstance(data, dict):
            raise ConfigurationError("traffic", f"must be an object, got {data!r:.80}")
        events = data.get("events") or []
        if not isinstance(events, list):
            raise ConfigurationError("traffic.events", f"must be a list, got {events!r:.80}")
        interval = _seconds(data.get("interval_ms", 50.0), "traffic.interval_ms")
        return cls(interval_ms=interval, events=tuple(TrafficEvent.from_json(e) for e in events))


@dataclass(frozen=True)
class Schedule:
    """What one trial does: faults, traffic, the callers' middleware stack, the sandbox seed."""

    faults: tuple[Fault, ...] = ()
    traffic: Traffic = Traffic()
    stack: tuple[dict[str, Any], ...] = ()
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "stack": [dict(layer) for layer in self.stack],
            "faults": [f.to_json() for f in sorted(self.faults, key=_fault_order)],
            "traffic": self.traffic.to_json(),
        }

    @classmethod
    def from_json(cls, data: Any) -> Schedule:
        if not isinstance(data, dict):
            raise ConfigurationError("schedule", f"must be an object, got {data!r:.80}")
        faults = data.get("faults") or []
        stack = data.get("stack") or []
        if not isinstance(faults, list):
            raise ConfigurationError("faults", f"must be a list, got {faults!r:.80}")
        if not isinstance(stack, list) or not all(isinstance(layer, dict) for layer in stack):
            raise ConfigurationError("stack", f"must be a list of middleware objects, got {stack!r:.80}")
        seed = data.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigurationError("seed", f"must be an integer >= 0, got {seed!r}")
        return cls(
            faults=tuple(Fault.from_json(f) for f in faults),
            traffic=Traffic.from_json(data.get("traffic") or {}),
            stack=tuple(dict(layer) for layer in stack),
            seed=seed,
        )

    def key(self) -> str:
        """Canonical JSON: equal schedules have equal keys."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    def replace(self, **changes: Any) -> Schedule:
        return replace(self, **changes)

    @property
    def fault_kinds(self) -> tuple[str, ...]:
        """The distinct fault kinds, sorted."""
        return tuple(sorted({f.kind for f in self.faults}))

    @property
    def event_kinds(self) -> tuple[str, ...]:
        """The distinct traffic event kinds, sorted."""
        return tuple(sorted({e.kind for e in self.traffic.events}))

    @property
    def busy_until_s(self) -> float:
        """When the last fault or traffic event is planned to end (s from the start)."""
        ends = [f.end_s for f in self.faults] + [e.end_s for e in self.traffic.events]
        return max(ends, default=0.0)

    def describe(self) -> str:
        """One line for the console: faults with their times, then the traffic's events."""
        faults = ", ".join(
            f"{f.kind}@{f.start_s:.1f}s+{f.duration_s:.1f}s" for f in sorted(self.faults, key=_fault_order)
        )
        events = ", ".join(_describe_event(e) for e in self.traffic.events)
        parts = [faults or "no fault", f"stream every {self.traffic.interval_ms:g} ms"]
        if events:
            parts.append(events)
        return "; ".join(parts)


def _describe_event(event: TrafficEvent) -> str:
    if event.kind == "burst":
        return f"burst of {event.size}@{event.at_s:.1f}s"
    if event.kind == "fresh_clients":
        return f"{event.clients} fresh client(s) x {event.size}@{event.at_s:.1f}s"
    return f"idle {event.duration_s:.0f}s@{event.at_s:.1f}s"


def _fault_order(fault: Fault) -> tuple[float, str]:
    return (fault.start_s, fault.kind)


def _seconds(value: Any, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not value >= 0
        or value == float("inf")
    ):
        raise ConfigurationError(name, f"must be a finite number >= 0, got {value!r}")
    return float(value)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(name, f"must be an integer >= 1, got {value!r}")
    return value
