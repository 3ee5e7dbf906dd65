"""The generator: draws random schedules from ONE seeded ``random.Random``.

Every decision of a schedule comes from the RNG it is given, in a fixed
order, so one explorer seed gives one sequence of schedules: the stack (one
of the stacks under test), the sandbox seed, how many faults, and for each
its kind (weighted over the whole catalogue usable on the transport), start,
duration and parameters; then the traffic: the steady stream's pace and its
events (concurrent bursts, fresh clients, and, when the caller allows it, an
idle gap longer than the server's idle timeout). Faults may overlap: starts
and durations are drawn independently.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from chaosagenkit.explore.catalogue import DrawContext, FaultKind
from chaosagenkit.explore.invariants import caller_deadline_ms
from chaosagenkit.explore.schedule import Fault, Schedule, Traffic, TrafficEvent

__all__ = ["GeneratorSettings", "attempt_timeout_ms", "draw_schedule"]


@dataclass(frozen=True)
class GeneratorSettings:
    """What schedules are drawn from, and their shape (times in seconds)."""

    stacks: tuple[tuple[dict, ...], ...]
    kinds: tuple[FaultKind, ...]
    remote_timeout_ms: float = 2000.0
    max_faults: int = 3
    start_within_s: float = 3.0  # faults start in [0.2, start_within_s]
    min_duration_s: float = 0.3
    max_duration_s: float = 2.5
    max_events: int = 3
    #: agenkit's LocalAgent closes a connection idle for 60 s (local_agent.py,
    #: ``asyncio.wait_for(reader.readexactly(4), timeout=60.0)``); an idle gap must be longer
    idle_gap_s: float = 62.0
    idle_probability: float = 0.15


def attempt_timeout_ms(stack: tuple[dict, ...], remote_timeout_ms: float) -> float:
    """How long one attempt may take: the deadline of the stack inside its outermost retry."""
    for index, layer in enumerate(stack):
        if layer.get("type") == "retry":
            return caller_deadline_ms(stack[index + 1 :], remote_timeout_ms)
    return caller_deadline_ms(stack, remote_timeout_ms)


def draw_schedule(rng: random.Random, settings: GeneratorSettings, allow_idle: bool = False) -> Schedule:
    """Draw one schedule (see the module docstring for the order of draws)."""
    stack = settings.stacks[rng.randrange(len(settings.stacks))]
    seed = rng.randrange(2**31)
    context = DrawContext(attempt_timeout_ms=attempt_timeout_ms(stack, settings.remote_timeout_ms))
    faults = tuple(_draw_fault(rng, settings, context) for _ in range(_fault_count(rng, settings)))
    horizon = max((f.end_s for f in faults), default=settings.start_within_s)
    interval_ms = rng.choice((20.0, 50.0, 100.0))
    events = [_draw_event(rng, horizon) for _ in range(_event_count(rng, settings))]
    if allow_idle and rng.random() < settings.idle_probability:
        events.append(TrafficEvent("idle", round(rng.uniform(0.0, 1.0), 1), duration_s=settings.idle_gap_s))
    events.sort(key=lambda e: (e.at_s, e.kind))
    return Schedule(faults=faults, traffic=Traffic(interval_ms, tuple(events)), stack=stack, seed=seed)


def _fault_count(rng: random.Random, settings: GeneratorSettings) -> int:
    if rng.random() < 0.05:
        return 0  # traffic alone, now and then
    counts = list(range(1, settings.max_faults + 1))
    return rng.choices(counts, weights=[1.0 / n for n in counts])[0]


def _event_count(rng: random.Random, settings: GeneratorSettings) -> int:
    counts = list(range(settings.max_events + 1))
    return rng.choices(counts, weights=[max(0.5, 3.5 - n) for n in counts])[0]


def _draw_fault(rng: random.Random, settings: GeneratorSettings, context: DrawContext) -> Fault:
    kind = rng.choices(settings.kinds, weights=[k.weight for k in settings.kinds])[0]
    start = round(rng.uniform(0.2, settings.start_within_s), 1)
    longest = (
        settings.max_duration_s
        if kind.max_duration_s is None
        else min(settings.max_duration_s, kind.max_duration_s)
    )
    duration = round(rng.uniform(settings.min_duration_s, longest), 1)
    return Fault(kind.name, start, duration, kind.draw(rng, context))


def _draw_event(rng: random.Random, horizon_s: float) -> TrafficEvent:
    at = round(rng.uniform(0.0, horizon_s), 1)
    if rng.random() < 0.5:
        return TrafficEvent("burst", at, size=rng.randint(3, 10))
    return TrafficEvent("fresh_clients", at, size=rng.randint(1, 8), clients=rng.randint(1, 3))
