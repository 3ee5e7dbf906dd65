"""The relay's per-packet decisions, table-driven, from scripted and from seeded random numbers."""

from __future__ import annotations

import random

import pytest

from chaosagenkit.kernel.faults import parse_spec
from chaosagenkit.kernel.relay_policy import PathFaults, PathPolicy, Send


class Scripted:
    """Random numbers given in advance (six per packet: loss, delay, dup, reorder, corrupt, bit)."""

    def __init__(self, values: list[float]) -> None:
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


def draws(loss=0.99, delay=0.5, dup=0.99, reorder=0.99, corrupt=0.99, bit=0.0):
    return [loss, delay, dup, reorder, corrupt, bit]


CASES = [
    # name, faults, draws, now_ms, size, expected sends, flags
    ("nothing active", PathFaults(), draws(), 10.0, 100, (Send(10.0),), {}),
    ("lost", PathFaults(loss_rate=0.2), draws(loss=0.1), 10.0, 100, (), {"lost": True}),
    ("not lost", PathFaults(loss_rate=0.2), draws(loss=0.3), 10.0, 100, (Send(10.0),), {}),
    ("delayed", PathFaults(delay_ms=50), draws(), 10.0, 100, (Send(60.0),), {"delayed": True}),
    (
        "jitter low end",
        PathFaults(delay_ms=50, jitter_ms=10),
        draws(delay=0.0),
        0.0,
        100,
        (Send(40.0),),
        {"delayed": True},
    ),
    (
        "jitter high end",
        PathFaults(delay_ms=50, jitter_ms=10),
        draws(delay=1.0),
        0.0,
        100,
        (Send(60.0),),
        {"delayed": True},
    ),
    (
        "duplicated",
        PathFaults(duplicate_rate=0.5),
        draws(dup=0.2),
        5.0,
        100,
        (Send(5.0), Send(5.0)),
        {"duplicated": True},
    ),
    (
        "held back",
        PathFaults(reorder_rate=0.3, gap_ms=20),
        draws(reorder=0.1),
        5.0,
        100,
        (Send(25.0),),
        {"reordered": True},
    ),
    (
        "corrupted bit",
        PathFaults(corrupt_rate=0.1),
        draws(corrupt=0.05, bit=0.5),
        0.0,
        100,
        (Send(0.0, 400),),
        {"corrupted": True},
    ),
    (
        "corrupted last bit",
        PathFaults(corrupt_rate=0.1),
        draws(corrupt=0.05, bit=0.99999999),
        0.0,
        10,
        (Send(0.0, 79),),
        {"corrupted": True},
    ),
    (
        "duplicate copy stays intact",
        PathFaults(corrupt_rate=1.0, duplicate_rate=1.0),
        draws(dup=0.0, corrupt=0.0, bit=0.0),
        0.0,
        20,
        (Send(0.0, 0), Send(0.0)),
        {"corrupted": True, "duplicated": True},
    ),
]


@pytest.mark.parametrize("name,faults,values,now_ms,size,sends,flags", CASES, ids=[c[0] for c in CASES])
def test_one_packet(name, faults, values, now_ms, size, sends, flags):
    decision = PathPolicy(Scripted(values)).decide(faults, now_ms, size)
    assert decision.sends == sends
    for flag in ("lost", "delayed", "duplicated", "reordered", "corrupted"):
        assert getattr(decision, flag) is flags.get(flag, False), flag


def test_jitter_never_reorders():
    policy = PathPolicy(Scripted(draws(delay=1.0) + draws(delay=0.0)))
    faults = PathFaults(delay_ms=50, jitter_ms=40)
    first = policy.decide(faults, 0.0, 100).sends[0].at_ms  # 90
    second = policy.decide(faults, 1.0, 100).sends[0].at_ms  # would be 11, waits for the first
    assert (first, second) == (90.0, 90.0)


def test_held_back_packets_are_overtaken_and_do_not_hold_the_line():
    policy = PathPolicy(Scripted(draws(reorder=0.0) + draws()))
    faults = PathFaults(reorder_rate=0.5, gap_ms=30)
    held = policy.decide(faults, 0.0, 100).sends[0].at_ms
    next_one = policy.decide(faults, 1.0, 100).sends[0].at_ms
    assert next_one < held


def test_correlated_loss_follows_the_chain():
    # After a loss the next packet is lost with c + (1 - c) p = 0.6, else with (1 - c) p = 0.1.
    values = [0.05, 0.5, 0.7, 0.5, 0.09]
    policy = PathPolicy(Scripted([v for loss in values for v in draws(loss=loss)]))
    faults = PathFaults(loss_rate=0.2, correlation=0.5)
    assert [policy.decide(faults, 0.0, 10).lost for _ in values] == [True, True, False, False, True]


def test_a_seed_replays_every_decision():
    faults = PathFaults(
        loss_rate=0.2,
        delay_ms=5,
        jitter_ms=5,
        duplicate_rate=0.1,
        reorder_rate=0.1,
        gap_ms=3,
        corrupt_rate=0.1,
    )

    def run(seed):
        policy = PathPolicy(random.Random(seed))
        return [policy.decide(faults, float(i), 1000) for i in range(500)]

    assert run(42) == run(42)
    assert run(42) != run(43)


def test_decisions_of_one_kind_do_not_depend_on_the_others():
    def losses(faults):
        policy = PathPolicy(random.Random(5))
        return [policy.decide(faults, float(i), 100).lost for i in range(300)]

    assert losses(PathFaults(loss_rate=0.3)) == losses(
        PathFaults(loss_rate=0.3, delay_ms=10, duplicate_rate=0.5)
    )


@pytest.mark.parametrize("rate,share", [(0.1, 0.1), (0.3, 0.3)])
def test_seeded_loss_share_is_close_to_the_rate(rate, share):
    policy = PathPolicy(random.Random(42))
    lost = sum(policy.decide(PathFaults(loss_rate=rate), 0.0, 100).lost for _ in range(20_000))
    assert abs(lost / 20_000 - share) < 0.01


def test_path_faults_combine_one_spec_of_each_kind():
    faults = PathFaults.of(
        [
            parse_spec("loss", loss_rate=0.1, correlation=0.2),
            parse_spec("delay", delay_ms=30, jitter_ms=3),
            parse_spec("duplication", rate=0.2),
            parse_spec("reordering", rate=0.3, gap_ms=4),
            parse_spec("corruption", rate=0.4),
            parse_spec("bandwidth", rate_kbps=64),  # not the relay's: tbf applies it
        ]
    )
    assert faults == PathFaults(0.1, 0.2, 30, 3, 0.2, 0.3, 4, 0.4)
