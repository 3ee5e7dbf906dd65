"""``duplicate_frame``: send chosen agenkit messages ``copies`` extra times, back to back.

The copies go out in the same write as the message (up to 64 KiB in all),
so the reader finds them in the read that brings the message. A duplicated
response stays in the stream after the caller read the first copy, so the caller's NEXT request on that connection receives it: a client
that does not match responses to requests returns the wrong answer. Over
gRPC the copies go in the same call's stream (before its end): a unary call
then carries more than one message.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosagenkit.faults.framing import Frame
from chaosagenkit.faults.toxics.base import Deliver, Instruction
from chaosagenkit.faults.toxics.frame_toxic import FrameState, FrameToxic, FrameToxicConfig

__all__ = ["DuplicateFrameConfig", "DuplicateFrameToxic"]


@dataclass(frozen=True)
class DuplicateFrameConfig(FrameToxicConfig):
    copies: int = 1

    ATTRIBUTES = {**FrameToxicConfig.ATTRIBUTES, "copies": "copies"}

    def validate(self) -> None:
        super().validate()
        self._check_range("copies", 1, 100)


class DuplicateFrameToxic(FrameToxic):
    """Duplicate chosen frames."""

    type_name = "duplicate_frame"
    Config = DuplicateFrameConfig
    config: DuplicateFrameConfig

    def on_frame(self, state: FrameState, frame: Frame, now: float) -> list[Instruction]:
        state.act()
        # small copies in one write, so the reader meets them in one read whatever the load;
        # a 10 MiB message sent 100 times more is 101 writes the link can pause between
        return [Deliver(now, data) for data in frame.copies(1 + self.config.copies)]
