"""``slow_close``: hold the end of the stream (FIN) for ``delay`` ms; data flows unchanged."""

from __future__ import annotations

from dataclasses import dataclass

from chaosagenkit.faults.toxics.base import (
    MAX_DURATION_MS,
    Close,
    Instruction,
    Toxic,
    ToxicConfig,
    ToxicState,
)

__all__ = ["SlowCloseConfig", "SlowCloseToxic"]


@dataclass(frozen=True)
class SlowCloseConfig(ToxicConfig):
    delay_ms: int = 0

    ATTRIBUTES = {"delay": "delay_ms"}

    def validate(self) -> None:
        self._check_range("delay_ms", 0, MAX_DURATION_MS)


class SlowCloseToxic(Toxic):
    """Delay the close."""

    type_name = "slow_close"
    Config = SlowCloseConfig
    config: SlowCloseConfig

    def end(self, state: ToxicState, now: float) -> list[Instruction]:
        if self.config.delay_ms <= 0:
            return [Close(now)]
        state.act()
        return [Close(now + self.config.delay_ms / 1000.0)]
