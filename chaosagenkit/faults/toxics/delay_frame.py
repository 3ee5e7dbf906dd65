"""``delay_frame``: delay chosen agenkit messages by ``delay`` ms.

Unlike ``latency``, which delays every byte, only the chosen messages wait;
what follows a delayed frame on the same connection waits behind it, as it
would on TCP (frames never overtake each other: see ``reorder_frames``).
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosagenkit.faults.framing import Frame
from chaosagenkit.faults.toxics.base import MAX_DURATION_MS, Deliver, Instruction
from chaosagenkit.faults.toxics.frame_toxic import FrameState, FrameToxic, FrameToxicConfig

__all__ = ["DelayFrameConfig", "DelayFrameToxic"]


@dataclass(frozen=True)
class DelayFrameConfig(FrameToxicConfig):
    delay_ms: int = 0

    ATTRIBUTES = {**FrameToxicConfig.ATTRIBUTES, "delay": "delay_ms"}

    def validate(self) -> None:
        super().validate()
        self._check_range("delay_ms", 0, MAX_DURATION_MS)


class DelayFrameToxic(FrameToxic):
    """Delay chosen frames."""

    type_name = "delay_frame"
    Config = DelayFrameConfig
    config: DelayFrameConfig

    def on_frame(self, state: FrameState, frame: Frame, now: float) -> list[Instruction]:
        if self.config.delay_ms <= 0:
            return [Deliver(now, frame.raw)]
        state.act()
        return [Deliver(now + self.config.delay_ms / 1000.0, frame.raw)]
