"""``reorder_frames``: swap a chosen agenkit message with the message that follows it.

A chosen frame is held for up to ``window`` ms; if another complete frame
arrives in that time, that one is sent first and the held one right after
(counted as acted); otherwise the held frame goes on unchanged (a swap needs
two frames in flight, which request/response traffic on one connection
rarely has: streams of ``stream_chunk`` frames do). Bytes that are no
complete frame (the head and body of a chunked HTTP response, a WebSocket
control frame, an HTTP/2 frame other than a message's DATA, anything the
reader cannot frame) are never swapped with: the held frame goes first, so
it never lands inside another message. Over gRPC the messages swapped are
those of two calls, or two of one streaming call.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosagenkit.faults.framing import Frame
from chaosagenkit.faults.toxics.base import MAX_DURATION_MS, Deliver, Instruction, Wake
from chaosagenkit.faults.toxics.frame_toxic import FrameState, FrameToxic, FrameToxicConfig

__all__ = ["ReorderFramesConfig", "ReorderFramesToxic", "ReorderState"]


@dataclass(frozen=True)
class ReorderFramesConfig(FrameToxicConfig):
    window_ms: int = 100

    ATTRIBUTES = {**FrameToxicConfig.ATTRIBUTES, "window": "window_ms"}

    def validate(self) -> None:
        super().validate()
        self._check_range("window_ms", 0, MAX_DURATION_MS)


class ReorderState(FrameState):
    __slots__ = ("held", "held_size", "held_until")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.held: Frame | None = None  # its bytes are taken when it is sent (they may change)
        self.held_size = 0
        self.held_until = 0.0


class ReorderFramesToxic(FrameToxic):
    """Swap adjacent frames."""

    type_name = "reorder_frames"
    Config = ReorderFramesConfig
    State = ReorderState
    config: ReorderFramesConfig

    def on_frame(self, state: ReorderState, frame: Frame, now: float) -> list[Instruction]:
        if state.held is not None:
            return self._swap(state, frame, now)
        state.held, state.held_size = frame, len(frame.payload)
        state.held_until = now + self.config.window_ms / 1000.0
        return [Wake(state.held_until)]

    def pass_on(self, state: ReorderState, item: Frame | bytes, now: float) -> list[Instruction]:
        if state.held is None:
            return super().pass_on(state, item, now)
        if isinstance(item, Frame):
            return self._swap(state, item, now)
        return [*self.release(state, now), Deliver(now, item)]

    def tick(self, state: ReorderState, now: float) -> list[Instruction]:
        out = super().tick(state, now)
        if state.held is None or now < state.held_until:
            return out
        return [*self.release(state, now), *out]

    def held_bytes(self, state: ReorderState) -> int:
        return super().held_bytes(state) + (state.held_size if state.held is not None else 0)

    def release(self, state: ReorderState, now: float) -> list[Instruction]:
        if state.held is None:
            return []
        held, state.held = state.held, None
        return [Deliver(now, held.raw)]

    def _swap(self, state: ReorderState, frame: Frame, now: float) -> list[Instruction]:
        held, state.held = state.held, None
        state.act()
        state.reader.changed()  # the order changed, also if the second message was not drawn
        return [Deliver(now, frame.raw), Deliver(now, held.raw)]
