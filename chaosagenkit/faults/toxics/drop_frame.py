"""``drop_frame``: drop whole agenkit frames (messages), leaving the stream in step.

The peer never sees the message: a dropped request is never processed and a
dropped response is never received, so the caller waits for its timeout.
Unlike ``timeout``, the connection stays healthy for the next message.
"""

from __future__ import annotations

from chaosagenkit.faults.toxics.base import Instruction
from chaosagenkit.faults.toxics.frame_toxic import FrameState, FrameToxic
from chaosagenkit.faults.toxics.framing import Frame

__all__ = ["DropFrameToxic"]


class DropFrameToxic(FrameToxic):
    """Drop chosen frames."""

    type_name = "drop_frame"

    def on_frame(self, state: FrameState, frame: Frame, now: float) -> list[Instruction]:
        state.act()
        return []
