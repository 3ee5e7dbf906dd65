"""``reset_peer``: reset the connection (TCP RST) ``timeout`` ms after data first arrives.

As Toxiproxy: the first data to arrive, and everything after it, is dropped;
the connection is then aborted with SO_LINGER 0, so both peers see
"connection reset by peer". ``timeout`` 0 resets at once. Added to a
connection already open, it closes it instead (FIN): Toxiproxy sets
SO_LINGER 0 only on connections opened while the toxic is there, so a
client that was already connected sees the end of the stream, not a reset.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosagenkit.faults.toxics.base import (
    MAX_DURATION_MS,
    Close,
    Instruction,
    Reset,
    Toxic,
    ToxicConfig,
    ToxicState,
    Wake,
)

__all__ = ["ResetPeerConfig", "ResetPeerState", "ResetPeerToxic"]


@dataclass(frozen=True)
class ResetPeerConfig(ToxicConfig):
    timeout_ms: int = 0

    ATTRIBUTES = {"timeout": "timeout_ms"}

    def validate(self) -> None:
        self._check_range("timeout_ms", 0, MAX_DURATION_MS)


class ResetPeerState(ToxicState):
    __slots__ = ("armed_at", "graceful")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.armed_at: float | None = None
        self.graceful = False  # joined an open connection: close (FIN), not reset


class ResetPeerToxic(Toxic):
    """Reset on first data."""

    type_name = "reset_peer"
    Config = ResetPeerConfig
    State = ResetPeerState
    config: ResetPeerConfig

    def start(self, state: ResetPeerState, now: float) -> list[Instruction]:
        state.graceful = state.context.established
        return []

    def feed(self, state: ResetPeerState, data: bytes, now: float) -> list[Instruction]:
        if state.armed_at is not None:
            return []
        state.armed_at = now
        if self.config.timeout_ms <= 0:
            return self._end(state, now)
        return [Wake(now + self.config.timeout_ms / 1000.0)]

    def tick(self, state: ResetPeerState, now: float) -> list[Instruction]:
        if state.armed_at is None:
            return []
        return self._end(state, now)

    def _end(self, state: ResetPeerState, now: float) -> list[Instruction]:
        state.act()
        return [Close(now) if state.graceful else Reset(now)]
