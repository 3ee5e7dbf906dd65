"""RepeatLimiter: each distinct log message at most once per interval, with the count held back."""

from __future__ import annotations

import logging

import pytest

from chaosagenkit import log_limit
from chaosagenkit.log_limit import RepeatLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(log_limit.time, "monotonic", fake)
    return fake


def record(message: str, *args, name: str = "asyncio", level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


def test_a_repeated_message_passes_once_per_interval_and_then_says_how_many_were_held(clock):
    limiter = RepeatLimiter(interval_s=10)
    flood = [record("socket.accept() out of system resource\nsocket: <fd=%d>", fd) for fd in range(5000)]
    passed = [r for r in flood if limiter.filter(r)]
    assert len(passed) == 1
    clock.now += 10
    later = record("socket.accept() out of system resource\nsocket: <fd=7>")
    assert limiter.filter(later)
    assert "the same message 4999 more time(s) in the last 10 s" in later.getMessage()


def test_different_messages_loggers_and_levels_are_kept_apart(clock):
    limiter = RepeatLimiter(interval_s=10)
    assert limiter.filter(record("a"))
    assert limiter.filter(record("b"))
    assert limiter.filter(record("a", name="aiohttp"))
    assert limiter.filter(record("a", level=logging.WARNING))
    assert not limiter.filter(record("a"))


def test_it_remembers_a_bounded_number_of_messages(clock):
    limiter = RepeatLimiter(interval_s=10, max_keys=3)
    for text in ("a", "b", "c", "d"):
        assert limiter.filter(record(text))
    assert limiter.filter(record("a")), "the oldest key was forgotten, not kept forever"
    assert not limiter.filter(record("d"))
