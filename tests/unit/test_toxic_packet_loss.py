"""packet_loss: retransmission stalls, bursts, give-up, and seeded determinism."""

from __future__ import annotations

import pytest

from chaosagenkit.faults.toxics import build_toxic
from tests.unit.network.driver import Run, delivered, run

pytestmark = [pytest.mark.chaos_network]


def loss(**attributes):
    return build_toxic("packet_loss", attributes)


def test_no_loss_delivers_at_once_and_never_acts():
    driver = Run(loss(loss_rate=0.0))
    driver.feed(1.0, b"x" * 5000)
    assert driver.finish() == [("deliver", 1.0, b"x" * 5000)]
    assert driver.acted == 0


def test_a_lost_segment_stalls_by_the_rto_and_doubles_with_consecutive_losses():
    toxic = loss(loss_rate=0.5, rto=200, max_rto=100_000, segment_size=10)
    # Find seeds whose first segment is lost exactly k times, and check the stall.
    expected_stall = {1: 0.2, 2: 0.6, 3: 1.4}  # 200, +400, +800 ms
    found = {}
    for seed in range(500):
        driver = Run(toxic, seed=seed)
        driver.feed(0.0, b"a" * 10)
        out = driver.finish()
        if driver.acted in expected_stall and driver.acted not in found:
            found[driver.acted] = out[0][1]
    assert found == expected_stall


def test_the_rto_is_capped():
    toxic = loss(loss_rate=1.0, correlation=0.0, rto=100, max_rto=150, max_retries=3, segment_size=10)
    driver = Run(toxic)
    driver.feed(0.0, b"a" * 10)
    # 4 transmissions lost (> max_retries 3): 100 + 150 + 150 + 150 ms, then TCP gives up
    assert driver.finish() == [("reset", 0.55)]


def test_segments_after_a_stall_wait_behind_it_in_order():
    toxic = loss(loss_rate=0.3, segment_size=100)
    payload = bytes(range(256)) * 40
    out = run(toxic, [(0.0, "data", payload), (0.001, "data", payload), (0.002, "end")], seed=5)
    assert delivered(out) == payload * 2
    times = [item[1] for item in out]
    assert times == sorted(times)
    assert out[-1][0] == "close"


def test_the_loss_fraction_matches_the_rate():
    toxic = loss(loss_rate=0.2, segment_size=10, max_retries=100)
    driver = Run(toxic, seed=1)
    for i in range(2000):
        driver.feed(i * 10.0, b"s" * 10)  # far apart: stalls never overlap
    out = driver.finish()
    lost_first_time = sum(1 for i, item in enumerate(out) if item[1] > i * 10.0)
    assert 0.15 < lost_first_time / 2000 < 0.25


def test_correlation_makes_losses_come_in_bursts():
    def mean_burst(correlation: float) -> float:
        driver = Run(loss(loss_rate=0.1, correlation=correlation, segment_size=10, max_retries=1000), seed=2)
        for i in range(3000):
            driver.feed(i * 1000.0, b"s" * 10)
        driver.finish()
        delayed = sum(1 for item in driver.out if item[1] % 1000.0 > 1e-6)
        return driver.acted / max(1, delayed)

    assert mean_burst(0.8) > 2 * mean_burst(0.0)


def test_the_same_seed_gives_the_same_stalls():
    toxic = loss(loss_rate=0.3, correlation=0.25)
    events = [(i * 0.01, "data", b"q" * 3000) for i in range(30)]
    assert run(toxic, events, seed=42) == run(toxic, events, seed=42)
    assert run(toxic, events, seed=42) != run(toxic, events, seed=43)
