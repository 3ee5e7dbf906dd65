"""The shrinker on pure schedules, driven by property functions (no sockets, no clock)."""

from __future__ import annotations

import random

from chaosagenkit.explore.catalogue import kinds_for
from chaosagenkit.explore.generate import GeneratorSettings, draw_schedule
from chaosagenkit.explore.schedule import Fault, Schedule, Traffic, TrafficEvent
from chaosagenkit.explore.shrink import MIN_DURATION_S, canonical, complexity, proposals, shrink

STACK = ({"type": "retry", "max_retries": 3, "initial_delay": 0.05},)
DELAY = Fault("service.delay", 2.3, 2.0, {"delay_ms": 730, "rate": 0.5})
RESET = Fault("network.reset_peer", 1.1, 1.5, {"timeout_ms": 50, "stream": "upstream", "toxicity": 0.5})
CRASH = Fault("service.crash", 0.9, 1.2, {"when": "next_request"})
BIG = Schedule(
    faults=(DELAY, RESET, CRASH),
    traffic=Traffic(
        20.0, (TrafficEvent("burst", 1.0, size=8), TrafficEvent("fresh_clients", 2.0, size=6, clients=3))
    ),
    stack=STACK,
    seed=11,
)


def has(kind: str):
    return lambda s: any(f.kind == kind for f in s.faults)


def test_a_property_needing_one_fault_shrinks_to_that_fault_alone_simplified() -> None:
    result = shrink(BIG, has("network.reset_peer"))
    minimal = result.schedule
    assert [f.kind for f in minimal.faults] == ["network.reset_peer"]
    assert minimal.traffic.events == ()
    reset = minimal.faults[0]
    assert reset.params == {"timeout_ms": 0, "stream": "downstream", "toxicity": 1.0}
    assert reset.duration_s == MIN_DURATION_S and reset.start_s == 0.2
    assert minimal.traffic.interval_ms == 100.0  # slowed to the floor, no further
    assert minimal.seed == BIG.seed and minimal.stack == BIG.stack
    assert not result.exhausted and result.chain[0] == BIG and result.chain[-1] == minimal


def test_every_accepted_step_is_strictly_simpler_and_still_fails() -> None:
    def fails(s: Schedule) -> bool:
        return has("service.delay")(s) and any(e.kind == "burst" and e.size >= 3 for e in s.traffic.events)

    result = shrink(BIG, fails)
    assert all(fails(s) for s in result.chain)
    assert all(complexity(b) < complexity(a) for a, b in zip(result.chain, result.chain[1:], strict=False))
    burst = result.schedule.traffic.events
    assert [(e.kind, e.size) for e in burst] == [("burst", 4)]  # 8 -> 4; 2 would no longer fail


def test_an_interaction_of_two_faults_keeps_both() -> None:
    def overlap(s: Schedule) -> bool:
        kinds = {f.kind for f in s.faults}
        return {"service.delay", "service.crash"} <= kinds

    minimal = shrink(BIG, overlap).schedule
    assert sorted(f.kind for f in minimal.faults) == ["service.crash", "service.delay"]


def test_a_property_that_fails_without_any_fault_drops_them_all() -> None:
    minimal = shrink(BIG, lambda s: True).schedule
    assert minimal.faults == () and minimal.traffic.events == ()


def test_the_causality_cut_comes_first() -> None:
    seen: list[Schedule] = []
    shrink(BIG, lambda s: seen.append(s) or True, max_runs=1, first_violation_s=1.0)
    assert [f.kind for f in seen[0].faults] == ["service.crash"]  # the only fault started by 1.0 s
    assert [e.kind for e in seen[0].traffic.events] == ["burst"]


def test_the_budget_stops_shrinking_and_says_so() -> None:
    runs = []
    result = shrink(BIG, lambda s: runs.append(s) or False, max_runs=3)
    assert len(runs) == 3 and result.exhausted and result.schedule == BIG and result.runs == 3

    calls = iter([True, True, False])
    result = shrink(BIG, lambda s: True, keep_going=lambda candidate: next(calls))
    assert result.exhausted and result.steps == 2


def test_no_schedule_is_tried_twice_and_shrinking_is_deterministic() -> None:
    tried: list[str] = []

    def prop(s: Schedule) -> bool:
        tried.append(s.key())
        return has("service.crash")(s) and s.traffic.interval_ms <= 50

    first = shrink(BIG, prop).schedule
    assert len(tried) == len(set(tried))
    assert shrink(BIG, prop).schedule == first


def test_canonical_simplifies_everything_at_once() -> None:
    simple = canonical(BIG)
    delay = next(f for f in simple.faults if f.kind == "service.delay")
    assert delay.params == {"delay_ms": 700, "rate": 1.0} and delay.start_s == 0.2 and delay.duration_s == 1.0
    assert [e.size for e in simple.traffic.events] == [4, 3]
    assert complexity(simple) < complexity(BIG)


def test_idle_gaps_keep_their_length() -> None:
    idle = Schedule(traffic=Traffic(50.0, (TrafficEvent("idle", 0.6, duration_s=62.0),)), stack=STACK)
    for candidate in proposals(idle):
        for event in candidate.traffic.events:
            assert event.duration_s == 62.0


def test_random_schedules_shrink_to_a_single_chosen_fault() -> None:
    settings = GeneratorSettings(stacks=(STACK,), kinds=tuple(kinds_for("tcp")))
    rng = random.Random(5)
    shrunk = 0
    for _ in range(12):
        schedule = draw_schedule(rng, settings)
        if not schedule.faults:
            continue
        target = schedule.faults[-1].kind
        minimal = shrink(schedule, has(target)).schedule
        assert [f.kind for f in minimal.faults] == [target] and minimal.traffic.events == ()
        shrunk += 1
    assert shrunk >= 10


def test_a_deletion_that_held_is_not_tried_again_after_timing_tweaks() -> None:
    tried: list[Schedule] = []

    def prop(s: Schedule) -> bool:
        tried.append(s)
        return has("service.crash")(s)

    shrink(BIG, prop)
    without_faults = [tuple(e.kind for e in s.traffic.events) for s in tried if not s.faults]
    assert len(without_faults) == len(set(without_faults)) == 2  # with and without the events, once each
