"""``bandwidth``: let data through at ``rate`` KB/s (kilobytes, 1000 bytes, per second).

As Toxiproxy: the toxic keeps a running schedule, so a burst waits for the
bytes before it; data is released in slices of at most 100 ms worth, so a
slow link trickles instead of stalling and then dumping. ``rate`` 0 means
no limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosagenkit.faults.toxics.base import (
    Deliver,
    Instruction,
    Toxic,
    ToxicConfig,
    ToxicState,
)

__all__ = ["BandwidthConfig", "BandwidthState", "BandwidthToxic"]

SLICE_S = 0.1  # Toxiproxy releases rate-limited data in 100 ms slices


@dataclass(frozen=True)
class BandwidthConfig(ToxicConfig):
    # KB/s as Toxiproxy (1 KB = 1000 bytes); the unit suffix follows the name
    rate_kbps: int = 0

    ATTRIBUTES = {"rate": "rate_kbps"}

    def validate(self) -> None:
        self._check_range("rate_kbps", 0, 10_000_000)


class BandwidthState(ToxicState):
    __slots__ = ("free_at",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.free_at = 0.0  # when the emulated wire has sent everything before


class BandwidthToxic(Toxic):
    """Throttle to a byte rate."""

    type_name = "bandwidth"
    Config = BandwidthConfig
    State = BandwidthState
    config: BandwidthConfig

    def feed(self, state: BandwidthState, data: bytes, now: float) -> list[Instruction]:
        bytes_per_s = self.config.rate_kbps * 1000
        if bytes_per_s <= 0:
            return [Deliver(now, data)]
        slice_size = max(1, int(bytes_per_s * SLICE_S))
        start = max(now, state.free_at)
        out: list[Instruction] = []
        for offset in range(0, len(data), slice_size):
            piece = data[offset : offset + slice_size]
            start += len(piece) / bytes_per_s
            out.append(Deliver(start, piece))
        state.free_at = start
        if start > now:
            state.act()
        return out
