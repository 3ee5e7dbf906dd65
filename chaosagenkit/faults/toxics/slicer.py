"""``slicer``: cut chunks into smaller pieces, optionally ``delay`` µs apart.

As Toxiproxy: each chunk is split recursively near its middle (plus or
minus ``size_variation`` bytes) until pieces are about ``average_size``
bytes, so there is no bias towards a small first or last piece. Models a
network that delivers a message in many segments; exposes readers that
assume one read returns one message.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.faults.toxics.base import (
    Deliver,
    Instruction,
    Toxic,
    ToxicConfig,
    ToxicState,
)

__all__ = ["SlicerConfig", "SlicerToxic", "slice_offsets"]

MAX_DELAY_US = 60_000_000


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


class SlicerToxic(Toxic):
    """Slice chunks into pieces."""

    type_name = "slicer"
    Config = SlicerConfig
    config: SlicerConfig

    def feed(self, state: ToxicState, data: bytes, now: float) -> list[Instruction]:
        config = self.config
        bounds = slice_offsets(len(data), config.average_size_bytes, config.size_variation_bytes, state.rng)
        if len(bounds) <= 2:
            return [Deliver(now, data)]
        state.act()
        step = config.delay_us / 1_000_000
        view = memoryview(data)
        return [
            Deliver(now + index * step, bytes(view[bounds[index] : bounds[index + 1]]))
            for index in range(len(bounds) - 1)
        ]
