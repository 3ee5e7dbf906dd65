"""``latency``: delay every chunk by ``latency`` ms, plus or minus up to ``jitter`` ms.

As Toxiproxy: each chunk is delayed from the moment it reached the toxic;
chunks never overtake each other (the link keeps stream order), so with
jitter a chunk drawn shorter than its predecessor leaves right after it.
The end of the stream follows the last delayed chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosagenkit.faults.toxics.base import (
    MAX_DURATION_MS,
    Deliver,
    Instruction,
    Toxic,
    ToxicConfig,
    ToxicState,
)

__all__ = ["LatencyConfig", "LatencyToxic"]


@dataclass(frozen=True)
class LatencyConfig(ToxicConfig):
    latency_ms: int = 0
    jitter_ms: int = 0

    ATTRIBUTES = {"latency": "latency_ms", "jitter": "jitter_ms"}

    def validate(self) -> None:
        self._check_range("latency_ms", 0, MAX_DURATION_MS)
        self._check_range("jitter_ms", 0, MAX_DURATION_MS)


class LatencyToxic(Toxic):
    """Delay each chunk."""

    type_name = "latency"
    Config = LatencyConfig
    config: LatencyConfig

    def feed(self, state: ToxicState, data: bytes, now: float) -> list[Instruction]:
        delay_ms = float(self.config.latency_ms)
        if self.config.jitter_ms:
            delay_ms += state.rng.uniform(-self.config.jitter_ms, self.config.jitter_ms)
        if delay_ms <= 0:
            return [Deliver(now, data)]
        state.act()
        return [Deliver(now + delay_ms / 1000.0, data)]
