"""``timeout``: stop all data; close the connection after ``timeout`` ms (0: never).

Exactly Toxiproxy's behaviour, which surprises people, so stated here:
data that arrives while the toxic is active is DROPPED, not delayed; with
``timeout`` 0 the connection stays open and silent until the toxic is
removed, and removing it CLOSES the connection (Toxiproxy's cleanup). A
client therefore sees a hang, then either its own timeout or a closed
connection, never late data.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosagenkit.faults.toxics.base import (
    MAX_DURATION_MS,
    Close,
    Instruction,
    Toxic,
    ToxicConfig,
    ToxicState,
    Wake,
)

__all__ = ["TimeoutConfig", "TimeoutToxic", "TimeoutState"]


@dataclass(frozen=True)
class TimeoutConfig(ToxicConfig):
    timeout_ms: int = 0

    ATTRIBUTES = {"timeout": "timeout_ms"}

    def validate(self) -> None:
        self._check_range("timeout_ms", 0, MAX_DURATION_MS)


class TimeoutState(ToxicState):
    __slots__ = ("started",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.started = 0.0


class TimeoutToxic(Toxic):
    """Black-hole the stream, then close it."""

    type_name = "timeout"
    Config = TimeoutConfig
    State = TimeoutState
    config: TimeoutConfig

    def start(self, state: TimeoutState, now: float) -> list[Instruction]:
        state.started = now
        return self._deadline(state)

    def updated(self, state: TimeoutState, now: float) -> list[Instruction]:
        return self._deadline(state)

    def feed(self, state: TimeoutState, data: bytes, now: float) -> list[Instruction]:
        state.act()  # dropped on the ground, as Toxiproxy
        return []

    def tick(self, state: TimeoutState, now: float) -> list[Instruction]:
        timeout_ms = self.config.timeout_ms
        if timeout_ms > 0 and now >= state.started + timeout_ms / 1000.0:
            state.act()
            return [Close(now)]
        return []  # an earlier deadline, from before an update

    def removed(self, state: TimeoutState, now: float) -> list[Instruction]:
        return [Close(now)]

    def _deadline(self, state: TimeoutState) -> list[Instruction]:
        if self.config.timeout_ms <= 0:
            return []
        return [Wake(state.started + self.config.timeout_ms / 1000.0)]
