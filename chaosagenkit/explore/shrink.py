"""The shrinker: from a schedule that violates an invariant to a minimal one that still does.

Pure: no sockets, no clock. It is driven by a property ``still_fails(schedule)
-> bool`` (in production: run the schedule for real and see whether the same
invariant is violated; in tests: any function), the way Hypothesis shrinks a
failing example: propose simpler variants, keep the first one that still
fails, start again from it, stop when no proposal fails (a local minimum) or
when the budget says so.

"Simpler" is an order (``complexity``, compared as a tuple): fewer faults,
then fewer traffic events, then less concurrent load, then shorter faults,
then simpler fault parameters, then earlier times, then a slower stream. A
proposal is tried only when it is strictly simpler, so shrinking always
ends. Real runs are expensive, so proposals come biggest first:

1. cut everything that starts after the first violation ended (it cannot be its cause);
2. no fault at all; each fault alone; each fault removed;
3. no traffic event; each event removed;
4. everything simplified at once (``canonical``): the simplest parameters,
   starts at ``EARLIEST_START_S``, durations halved, bursts halved;
5. one at a time: per fault, simpler parameters (the catalogue's
   ``simplify``), half the duration, an earlier start; per event, half the
   burst, one fresh client, an earlier time; the stream at its slowest.

A deletion that did not fail is not proposed again for a schedule that
differs only in timings or parameters (the same fault and event kinds):
those rarely change whether a fault is needed, and every proposal is a real run.

Floors keep a schedule meaningful: a fault lasts at least ``MIN_DURATION_S``
and the stream is never slower than ``SLOWEST_INTERVAL_MS`` (fewer calls
inside a fault make a violation a matter of luck); idle gaps keep their
length (shorter than the server's idle timeout, they test nothing), and a
schedule with one keeps its times and pace (each of its runs lasts over a
minute, and timing tweaks cannot matter to a gap that long). Every
property result is cached by the schedule's canonical JSON. The result
keeps the chain of accepted schedules, so a minimal schedule that turns
out not to reproduce can be traded for the one before it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from chaosagenkit.explore.catalogue import kind_named
from chaosagenkit.explore.schedule import Fault, Schedule, Traffic, TrafficEvent

__all__ = ["ShrinkResult", "canonical", "complexity", "proposals", "shape", "shrink"]

MIN_DURATION_S = 0.5
EARLIEST_START_S = 0.2
SLOWEST_INTERVAL_MS = 100.0


@dataclass(frozen=True)
class ShrinkResult:
    """The smallest failing schedule found, with what it took."""

    schedule: Schedule
    steps: int  # simplifications accepted
    runs: int  # property evaluations (real runs in production)
    exhausted: bool  # stopped by the budget before reaching a local minimum
    chain: tuple[Schedule, ...] = ()  # every accepted schedule, the original first, ``schedule`` last


def complexity(schedule: Schedule) -> tuple[float, ...]:
    """The order "simpler than": compare these tuples (see the module docstring)."""
    faults = schedule.faults
    events = schedule.traffic.events
    load = sum(e.size * (e.clients if e.kind == "fresh_clients" else 1) for e in events if e.kind != "idle")
    return (
        len(faults),
        len(events),
        load,
        round(sum(f.duration_s for f in faults), 3),
        sum(len(kind_named(f.kind).simplify(f.params)) for f in faults),
        round(sum(f.start_s for f in faults) + sum(e.at_s for e in events), 3),
        -schedule.traffic.interval_ms,
    )


def proposals(schedule: Schedule, first_violation_s: float | None = None) -> Iterator[Schedule]:
    """Simpler variants of ``schedule``, biggest reductions first (not all strictly simpler)."""
    faults = list(schedule.faults)
    events = list(schedule.traffic.events)
    if first_violation_s is not None:
        yield _with(
            schedule,
            [f for f in faults if f.start_s <= first_violation_s],
            [e for e in events if e.at_s <= first_violation_s],
        )
    if faults:
        yield _with(schedule, [], events)
    if len(faults) > 1:
        for fault in faults:
            yield _with(schedule, [fault], events)
    if len(faults) > 2:
        for i in range(len(faults)):
            yield _with(schedule, faults[:i] + faults[i + 1 :], events)
    if events:
        yield _with(schedule, faults, [])
    if len(events) > 1:
        for i in range(len(events)):
            yield _with(schedule, faults, events[:i] + events[i + 1 :])
    yield canonical(schedule)
    for i, fault in enumerate(faults):
        for simpler in _simpler_faults(fault):
            yield _with(schedule, [*faults[:i], simpler, *faults[i + 1 :]], events)
    for i, event in enumerate(events):
        for simpler_event in _simpler_events(event):
            yield _with(schedule, faults, [*events[:i], simpler_event, *events[i + 1 :]])
    idle = any(e.kind == "idle" for e in events)
    if schedule.traffic.interval_ms < SLOWEST_INTERVAL_MS and not idle:
        yield schedule.replace(traffic=Traffic(SLOWEST_INTERVAL_MS, schedule.traffic.events))


def shrink(
    schedule: Schedule,
    still_fails: Callable[[Schedule], bool],
    *,
    keep_going: Callable[[Schedule], bool] = lambda candidate: True,
    max_runs: int = 100,
    first_violation_s: float | None = None,
    on_step: Callable[[Schedule, bool], None] | None = None,
    held_shapes: set[tuple[tuple[str, ...], tuple[str, ...]]] | None = None,
) -> ShrinkResult:
    """Shrink ``schedule`` while ``still_fails`` holds (``schedule`` itself is assumed to fail).

    ``keep_going(candidate)`` is asked before every property run (the budget);
    ``max_runs`` bounds the property runs; ``first_violation_s`` (s from the
    start) enables the causality cut; ``on_step(candidate, failed)`` is told
    about every run. ``held_shapes``: the fault and event kinds of related schedules
    already known not to fail (the deletions to that shape are not proposed).
    """
    chain = [schedule]
    cache: dict[str, bool] = {schedule.key(): True}
    held_deletions = set(held_shapes or ())
    runs = 0
    cut = first_violation_s
    while True:
        current = chain[-1]
        improved = False
        for candidate in proposals(current, cut):
            key = candidate.key()
            if key in cache or not complexity(candidate) < complexity(current):
                continue
            deletion = _is_deletion(candidate, current)
            if deletion and shape(candidate) in held_deletions:
                continue  # the same faults and events did not fail before: timing tweaks rarely change that
            if runs >= max_runs or not keep_going(candidate):
                return ShrinkResult(current, len(chain) - 1, runs, exhausted=True, chain=tuple(chain))
            runs += 1
            failed = bool(still_fails(candidate))
            cache[key] = failed
            if deletion and not failed:
                held_deletions.add(shape(candidate))
            if on_step is not None:
                on_step(candidate, failed)
            if failed:
                chain.append(candidate)
                improved = True
                break
        cut = None  # the first violation time belongs to the original run only
        if not improved:
            return ShrinkResult(current, len(chain) - 1, runs, exhausted=False, chain=tuple(chain))


def canonical(schedule: Schedule) -> Schedule:
    """Every simplification at once: simplest parameters, earliest starts, halved durations and bursts."""
    faults = []
    for fault in schedule.faults:
        params = dict(fault.params)
        for simpler in kind_named(fault.kind).simplify(fault.params):
            params.update({k: v for k, v in simpler.items() if simpler[k] != fault.params.get(k)})
        duration = (
            max(MIN_DURATION_S, round(fault.duration_s / 2, 1))
            if fault.duration_s > MIN_DURATION_S
            else fault.duration_s
        )
        faults.append(Fault(fault.kind, min(fault.start_s, EARLIEST_START_S), duration, params))
    events = [
        TrafficEvent(
            e.kind, e.at_s, max(1, e.size // 2) if e.kind != "idle" else e.size, e.clients, e.duration_s
        )
        for e in schedule.traffic.events
    ]
    return _with(schedule, faults, events)


def shape(schedule: Schedule) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return (
        tuple(sorted(f.kind for f in schedule.faults)),
        tuple(sorted(e.kind for e in schedule.traffic.events)),
    )


def _is_deletion(candidate: Schedule, current: Schedule) -> bool:
    return len(candidate.faults) < len(current.faults) or len(candidate.traffic.events) < len(
        current.traffic.events
    )


def _with(schedule: Schedule, faults: list[Fault], events: list[TrafficEvent]) -> Schedule:
    return schedule.replace(
        faults=tuple(faults), traffic=Traffic(schedule.traffic.interval_ms, tuple(events))
    )


def _simpler_faults(fault: Fault) -> Iterator[Fault]:
    for params in kind_named(fault.kind).simplify(fault.params):
        yield Fault(fault.kind, fault.start_s, fault.duration_s, params)
    if fault.duration_s > MIN_DURATION_S:
        yield Fault(
            fault.kind, fault.start_s, max(MIN_DURATION_S, round(fault.duration_s / 2, 1)), fault.params
        )
    if fault.start_s > EARLIEST_START_S:
        yield Fault(fault.kind, EARLIEST_START_S, fault.duration_s, fault.params)
        yield Fault(
            fault.kind, max(EARLIEST_START_S, round(fault.start_s / 2, 1)), fault.duration_s, fault.params
        )


def _simpler_events(event: TrafficEvent) -> Iterator[TrafficEvent]:
    if event.kind != "idle" and event.size > 1:
        yield TrafficEvent(event.kind, event.at_s, max(1, event.size // 2), event.clients, event.duration_s)
    if event.kind == "fresh_clients" and event.clients > 1:
        yield TrafficEvent(event.kind, event.at_s, event.size, 1, event.duration_s)
    if event.at_s > 0 and event.kind != "idle":
        yield TrafficEvent(event.kind, round(event.at_s / 2, 1), event.size, event.clients, event.duration_s)
