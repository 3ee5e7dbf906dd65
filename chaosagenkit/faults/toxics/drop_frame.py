"""``drop_frame``: drop whole agenkit messages, leaving the stream in step.

The peer never sees the message: a dropped request is never processed and a
dropped response is never received, so the caller waits for its timeout.
Unlike ``timeout``, the connection stays healthy for the next message. Over
gRPC the call's stream still ends (its DATA frames stay, empty), so the
peer sees a call without its message rather than a silent stream.
"""

from __future__ import annotations

from chaosagenkit.faults.framing import Frame
from chaosagenkit.faults.toxics.base import Deliver, Instruction
from chaosagenkit.faults.toxics.frame_toxic import FrameState, FrameToxic

__all__ = ["DropFrameToxic"]


class DropFrameToxic(FrameToxic):
    """Drop chosen frames."""

    type_name = "drop_frame"

    def on_frame(self, state: FrameState, frame: Frame, now: float) -> list[Instruction]:
        state.act()
        left = frame.dropped()
        return [Deliver(now, left)] if left else []
