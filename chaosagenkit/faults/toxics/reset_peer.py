"""``reset_peer``: reset the connection (TCP RST) ``timeout`` ms after data first arrives.

As Toxiproxy: the first data to arrive, and everything after it, is dropped;
the connection is then aborted with SO_LINGER 0, so both peers see
"connection reset by peer". ``timeout`` 0 resets at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosagenkit.faults.toxics.base import (
    MAX_DURATION_MS,
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
    __slots__ = ("armed_at",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.armed_at: float | None = None


class ResetPeerToxic(Toxic):
    """Reset on first data."""

    type_name = "reset_peer"
    Config = ResetPeerConfig
    State = ResetPeerState
    config: ResetPeerConfig

    def feed(self, state: ResetPeerState, data: bytes, now: float) -> list[Instruction]:
        if state.armed_at is not None:
            return []
        state.armed_at = now
        if self.config.timeout_ms <= 0:
            state.act()
            return [Reset(now)]
        return [Wake(now + self.config.timeout_ms / 1000.0)]

    def tick(self, state: ResetPeerState, now: float) -> list[Instruction]:
        if state.armed_at is None:
            return []
        state.act()
        return [Reset(now)]
