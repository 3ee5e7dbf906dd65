"""``limit_data``: close the stream once ``bytes`` bytes have gone through.

As Toxiproxy: the chunk that crosses the limit is cut at the limit, the
stream is then closed (FIN), and the count survives attribute updates.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosagenkit.faults.toxics.base import (
    Close,
    Deliver,
    Instruction,
    Toxic,
    ToxicConfig,
    ToxicState,
)

__all__ = ["LimitDataConfig", "LimitDataState", "LimitDataToxic"]


@dataclass(frozen=True)
class LimitDataConfig(ToxicConfig):
    limit_bytes: int = 0

    ATTRIBUTES = {"bytes": "limit_bytes"}

    def validate(self) -> None:
        self._check_range("limit_bytes", 0)


class LimitDataState(ToxicState):
    __slots__ = ("closed", "transmitted")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.transmitted = 0
        self.closed = False


class LimitDataToxic(Toxic):
    """Cut the stream after a byte budget."""

    type_name = "limit_data"
    Config = LimitDataConfig
    State = LimitDataState
    config: LimitDataConfig

    def feed(self, state: LimitDataState, data: bytes, now: float) -> list[Instruction]:
        if state.closed:
            return []
        remaining = max(0, self.config.limit_bytes - state.transmitted)
        out: list[Instruction] = []
        if remaining >= len(data):
            out.append(Deliver(now, data))
            state.transmitted += len(data)
            remaining -= len(data)
        else:
            if remaining:
                out.append(Deliver(now, data[:remaining]))
            state.transmitted += remaining
            remaining = 0
        if remaining <= 0:
            state.closed = True
            state.act()
            out.append(Close(now))
        return out

    def end(self, state: LimitDataState, now: float) -> list[Instruction]:
        return [] if state.closed else [Close(now)]
