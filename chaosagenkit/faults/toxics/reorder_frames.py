"""``reorder_frames``: swap a chosen agenkit frame with the frame that follows it.

A chosen frame is held for up to ``window`` ms; if another complete frame
arrives in that time, that one is sent first and the held one right after
(counted as acted); otherwise the held frame goes on unchanged (a swap needs
two frames in flight, which request/response traffic on one connection
rarely has: streams of ``stream_chunk`` frames do). Bytes that are no
complete frame (the head and body of a chunked HTTP response, anything the
reader cannot frame) are never swapped with: the held frame goes first, so
it never lands inside another message.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosagenkit.faults.toxics.base import MAX_DURATION_MS, Deliver, Instruction, Wake
from chaosagenkit.faults.toxics.frame_toxic import FrameState, FrameToxic, FrameToxicConfig
from chaosagenkit.faults.toxics.framing import Frame

__all__ = ["ReorderFramesConfig", "ReorderFramesToxic", "ReorderState"]


@dataclass(frozen=True)
class ReorderFramesConfig(FrameToxicConfig):
    window_ms: int = 100

    ATTRIBUTES = {**FrameToxicConfig.ATTRIBUTES, "window": "window_ms"}

    def validate(self) -> None:
        super().validate()
        self._check_range("window_ms", 0, MAX_DURATION_MS)


class ReorderState(FrameState):
    __slots__ = ("held", "held_until")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.held: bytes | None = None
        self.held_until = 0.0


class ReorderFramesToxic(FrameToxic):
    """Swap adjacent frames."""

    type_name = "reorder_frames"
    Config = ReorderFramesConfig
    State = ReorderState
    config: ReorderFramesConfig

    def on_frame(self, state: ReorderState, frame: Frame, now: float) -> list[Instruction]:
        if state.held is not None:
            return self._swap(state, frame.raw, now)
        state.held = frame.raw
        state.held_until = now + self.config.window_ms / 1000.0
        return [Wake(state.held_until)]

    def pass_on(self, state: ReorderState, item: Frame | bytes, now: float) -> list[Instruction]:
        if state.held is None:
            return super().pass_on(state, item, now)
        if isinstance(item, Frame):
            return self._swap(state, item.raw, now)
        return [*self.release(state, now), Deliver(now, item)]

    def tick(self, state: ReorderState, now: float) -> list[Instruction]:
        out = super().tick(state, now)
        if state.held is None or now < state.held_until:
            return out
        return [*self.release(state, now), *out]

    def held_bytes(self, state: ReorderState) -> int:
        return super().held_bytes(state) + (len(state.held) if state.held is not None else 0)

    def release(self, state: ReorderState, now: float) -> list[Instruction]:
        if state.held is None:
            return []
        held, state.held = state.held, None
        return [Deliver(now, held)]

    def _swap(self, state: ReorderState, data: bytes, now: float) -> list[Instruction]:
        held, state.held = state.held, None
        state.act()
        return [Deliver(now, data), Deliver(now, held)]
