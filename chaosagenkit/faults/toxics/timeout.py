"""``timeout``: stop all data; close the connection once ``timeout`` ms pass without data (0: never).

Exactly Toxiproxy's behaviour (``toxics/timeout.go``), which surprises
people, so stated here:

- data that arrives while the toxic is active is DROPPED, not delayed;
- the countdown restarts whenever a chunk arrives (and is dropped):
  Toxiproxy waits on a fresh ``time.After(timeout)`` in every turn of its
  loop, so a client that keeps sending keeps the connection open; it also
  restarts when the toxic is updated (Toxiproxy restarts the toxic then);
- with ``timeout`` 0 the connection stays open and silent;
- removing the toxic CLOSES the connection (Toxiproxy's ``Cleanup``), on
  every connection, also where toxicity drew the toxic inactive; a
  toxicity update that draws it inactive does not close (Toxiproxy only
  interrupts the toxic then), and data flows again.

A client therefore sees a hang, then either its own timeout or a closed
connection, never late data.

Not followed: Toxiproxy also restarts a toxic (and its countdown) when a
toxic is added behind it or the toxic behind it is removed, an artefact of
how it rewires its channels; here only the toxic's own events count.
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

__all__ = ["TimeoutConfig", "TimeoutState", "TimeoutToxic"]


@dataclass(frozen=True)
class TimeoutConfig(ToxicConfig):
    timeout_ms: int = 0

    ATTRIBUTES = {"timeout": "timeout_ms"}

    def validate(self) -> None:
        self._check_range("timeout_ms", 0, MAX_DURATION_MS)


class TimeoutState(ToxicState):
    __slots__ = ("deadline", "wake")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.deadline: float | None = None  # when the connection closes; None: never
        self.wake: float | None = None  # the earliest wake-up asked for and not yet seen


class TimeoutToxic(Toxic):
    """Black-hole the stream; close it after ``timeout`` ms without data."""

    type_name = "timeout"
    Config = TimeoutConfig
    State = TimeoutState
    config: TimeoutConfig

    def start(self, state: TimeoutState, now: float) -> list[Instruction]:
        return self._restart(state, now)

    def updated(self, state: TimeoutState, now: float) -> list[Instruction]:
        return self._restart(state, now)

    def feed(self, state: TimeoutState, data: bytes, now: float) -> list[Instruction]:
        state.act()  # dropped on the ground, as Toxiproxy
        return self._restart(state, now)

    def tick(self, state: TimeoutState, now: float) -> list[Instruction]:
        if state.wake is not None and state.wake <= now:
            state.wake = None
        if state.deadline is None:
            return []
        if now >= state.deadline:
            state.act()
            return [Close(now)]
        if state.wake is None:  # the countdown restarted since this wake-up was asked for
            state.wake = state.deadline
            return [Wake(state.deadline)]
        return []

    def end(self, state: TimeoutState, now: float) -> list[Instruction]:
        state.deadline = None  # closed by the source: the countdown is over
        return [Close(now)]

    def cleanup(self, state: TimeoutState, now: float) -> list[Instruction]:
        state.deadline = None
        return [Close(now)]

    def _restart(self, state: TimeoutState, now: float) -> list[Instruction]:
        """Count ``timeout`` from ``now`` (one pending wake-up at a time: a wake-up
        before the deadline moves on to it instead of one wake-up per chunk)."""
        if self.config.timeout_ms <= 0:
            state.deadline = None
            return []
        state.deadline = now + self.config.timeout_ms / 1000.0
        if state.wake is not None and state.wake <= state.deadline:
            return []
        state.wake = state.deadline
        return [Wake(state.deadline)]
