"""``slicer``: cut chunks into smaller pieces, optionally ``delay`` µs apart.

As Toxiproxy: each chunk is split recursively near its middle (plus or
minus ``size_variation`` bytes) until pieces are about ``average_size``
bytes, so there is no bias towards a small first or last piece. Models a
network that delivers a message in many segments; exposes readers that
assume one read returns one message.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.faults.toxics.base import (
    Close,
    Deliver,
    Instruction,
    Toxic,
    ToxicConfig,
    ToxicState,
    Wake,
)

__all__ = ["SlicerConfig", "SlicerToxic", "slice_offsets"]

MAX_DELAY_US = 60_000_000
#: Pieces cut per call at most: the rest waits for the next turn of the event loop.
MAX_PIECES = 256


@dataclass(frozen=True)
class SlicerConfig(ToxicConfig):
    average_size_bytes: int = 1
    size_variation_bytes: int = 0
    delay_us: int = 0

    ATTRIBUTES = {
        "average_size": "average_size_bytes",
        "size_variation": "size_variation_bytes",
        "delay": "delay_us",
    }

    def validate(self) -> None:
        self._check_range("average_size_bytes", 1)
        self._check_range("size_variation_bytes", 0)
        self._check_range("delay_us", 0, MAX_DELAY_US)
        if self.size_variation_bytes >= self.average_size_bytes:
            raise ConfigurationError(
                "size_variation",
                f"must be less than average_size ({self.average_size_bytes}), "
                f"got {self.size_variation_bytes}",
            )


def slice_offsets(length: int, average: int, variation: int, rng: random.Random) -> list[int]:
    """Boundaries ``[0, a, b, ..., length]`` of the pieces of a ``length``-byte chunk."""
    bounds = [0]
    stack = [(0, length)]
    while stack:  # depth-first, left piece first, so bounds come out in order
        start, end = stack.pop()
        if (end - start) - average <= variation:
            bounds.append(end)
            continue
        jitter = rng.randint(-variation, variation - 1) if variation else 0
        mid = start + (end - start) // 2 + jitter
        stack.append((mid, end))
        stack.append((start, mid))
    return bounds


class _Pending:
    """A chunk being sliced: the ranges still to cut (depth-first, leftmost on top)."""

    __slots__ = ("arrived", "data", "index", "ranges", "start")

    def __init__(self, data: bytes, arrived: float) -> None:
        self.data = data
        self.ranges = [(0, len(data))]
        self.arrived = arrived
        self.start: float | None = None  # when its first piece is due (known once it is cut)
        self.index = 0  # pieces of it emitted so far


class SlicerState(ToxicState):
    __slots__ = ("ending", "free_at", "held", "pending", "wake_at")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pending: deque[_Pending] = deque()
        self.held = 0  # bytes received and not yet emitted
        self.free_at = 0.0  # when the next chunk may start (after the last piece's delay)
        self.wake_at: float | None = None  # the wake-up asked for and not yet seen
        self.ending = False  # the source closed: Close follows the last piece


class SlicerToxic(Toxic):
    """Slice chunks into pieces.

    Pieces are cut as they fall due, at most ``MAX_PIECES`` per call (the
    rest is held and the toxic asks to be woken), so a one-byte slicer
    never makes a quarter of a million pieces in one go. The cut is the one
    ``slice_offsets`` describes (same order, same random draws). As in
    Toxiproxy, a chunk's first piece waits for the delay after the previous
    chunk's last piece.
    """

    type_name = "slicer"
    Config = SlicerConfig
    State = SlicerState
    config: SlicerConfig

    def feed(self, state: SlicerState, data: bytes, now: float) -> list[Instruction]:
        if not data:
            return []
        config = self.config
        whole = len(data) - config.average_size_bytes <= config.size_variation_bytes
        if whole and not state.pending:
            return [Deliver(now, data)]  # small enough: one piece, no wait
        if not whole:
            state.act()
        state.pending.append(_Pending(data, now))
        state.held += len(data)
        return self._cut(state, now)

    def tick(self, state: SlicerState, now: float) -> list[Instruction]:
        if state.wake_at is not None and state.wake_at <= now:
            state.wake_at = None
        return self._cut(state, now)

    def end(self, state: SlicerState, now: float) -> list[Instruction]:
        if not state.pending:
            return [Close(now)]
        state.ending = True
        return self._cut(state, now)

    def removed(self, state: SlicerState, now: float) -> list[Instruction]:
        """What is not cut yet goes on whole, at once."""
        out: list[Instruction] = []
        for pending in state.pending:
            if pending.ranges:
                out.append(Deliver(now, pending.data[pending.ranges[-1][0] :]))
        state.pending.clear()
        state.held = 0
        if state.ending:
            out.append(Close(now))
        return out

    def held_bytes(self, state: SlicerState) -> int:
        return state.held

    def _cut(self, state: SlicerState, now: float) -> list[Instruction]:
        config = self.config
        average, variation = config.average_size_bytes, config.size_variation_bytes
        step = config.delay_us / 1_000_000
        out: list[Instruction] = []
        while state.pending:
            pending = state.pending[0]
            if pending.start is None:
                pending.start = max(pending.arrived, state.free_at)
            ranges = pending.ranges
            while ranges:
                due = pending.start + pending.index * step
                if due > now or len(out) >= MAX_PIECES:
                    wake = due if due > now else now
                    if state.wake_at is None or wake < state.wake_at:
                        state.wake_at = wake
                        out.append(Wake(wake))
                    return out
                start, end = ranges.pop()
                while (end - start) - average > variation:  # split down to one piece
                    jitter = state.rng.randint(-variation, variation - 1) if variation else 0
                    mid = start + (end - start) // 2 + jitter
                    ranges.append((mid, end))
                    end = mid
                out.append(Deliver(due, pending.data[start:end]))
                pending.index += 1
                state.held -= end - start
            state.free_at = pending.start + pending.index * step
            state.pending.popleft()
        if state.ending:
            state.ending = False
            out.append(Close(now))
        return out
