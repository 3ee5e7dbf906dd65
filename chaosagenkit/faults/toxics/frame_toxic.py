"""What every frame-aware toxic shares: read messages in any agenkit framing, decide per message.

A frame toxic reads its direction of the stream with a ``FrameReader``
(``chaosagenkit.faults.framing``: agenkit tcp/unix framing, HTTP/1.1,
WebSocket, HTTP/2 with gRPC messages; detected from the first bytes unless
the ``protocol`` attribute fixes it) and acts only on complete messages that
are agenkit's (a JSON envelope with a ``type``, or a gRPC message of
agenkit's service). Everything else (health checks, control frames, header
blocks, TLS, any protocol it does not understand) passes untouched and in
order. Toxicity is drawn per message, so ``toxicity`` 0.3 faults about 30 %
of the messages of every connection. Toxics change messages only through
what each framing's ``Frame`` writes, so the framing stays valid unless
breaking it is the fault.

An incomplete message is held until it is complete (at most one, at most
10 MiB), which is the only delay a frame toxic adds to what it lets
through; when the proxy must stop reading to bound its memory, the toxic
lets that message pass untouched instead (``shed``). Bytes that might still
begin a message are held at most ``DETECT_WINDOW_S``: then the stream is
passed on untouched for good.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.faults.framing import DETECT_WINDOW_S, PROTOCOLS, Frame, FrameReader
from chaosagenkit.faults.toxics.base import (
    Close,
    Deliver,
    Instruction,
    Toxic,
    ToxicConfig,
    ToxicState,
    Wake,
)

__all__ = ["FrameState", "FrameToxic", "FrameToxicConfig"]


@dataclass(frozen=True)
class FrameToxicConfig(ToxicConfig):
    protocol: str = "auto"  # auto, agenkit, http, websocket or grpc

    ATTRIBUTES = {"protocol": "protocol"}

    def validate(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigurationError(
                "protocol", f"must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}"
            )


class FrameState(ToxicState):
    __slots__ = ("closed", "detect_until", "reader")

    reader: FrameReader
    closed: bool  # the toxic cut the stream: what comes after is not delivered
    detect_until: float | None  # when detection gives up on the bytes it holds


class FrameToxic(Toxic):
    """Base of frame toxics: subclasses implement ``on_frame`` (and may hold frames)."""

    per_frame = True
    Config = FrameToxicConfig
    State = FrameState
    config: FrameToxicConfig

    def new_state(self, rng, context, tally, toxicity=1.0) -> FrameState:
        state = super().new_state(rng, context, tally, toxicity)
        context.wants_framing = True  # HEAD requests, upgrades, gRPC paths: the other direction's
        state.reader = FrameReader(self.config.protocol, context=context.framing)
        state.closed = False
        state.detect_until = None
        return state

    def feed(self, state: FrameState, data: bytes, now: float) -> list[Instruction]:
        out = self._items(state, state.reader.feed(data), now)
        if state.detect_until is None and state.reader.mode == "detect" and state.reader.buffered:
            state.detect_until = now + DETECT_WINDOW_S
            out.append(Wake(state.detect_until))
        return out

    def tick(self, state: FrameState, now: float) -> list[Instruction]:
        if state.detect_until is not None and now >= state.detect_until:
            state.detect_until = None
            undecided = state.reader.give_up()
            if undecided and not state.closed:
                return self.pass_on(state, undecided, now)
        return []

    def end(self, state: FrameState, now: float) -> list[Instruction]:
        if state.closed:
            return []
        return [*self._release_all(state, now), Close(now)]

    def removed(self, state: FrameState, now: float) -> list[Instruction]:
        return self._release_all(state, now)

    def held_bytes(self, state: FrameState) -> int:
        return state.reader.buffered

    def shed(self, state: FrameState, now: float) -> list[Instruction]:
        partial = state.reader.release_partial()
        if not partial or state.closed:
            return []
        return self.pass_on(state, partial, now)

    def on_frame(self, state: FrameState, frame: Frame, now: float) -> list[Instruction]:
        """Act on one chosen message (an agenkit message)."""
        raise NotImplementedError

    def pass_on(self, state: FrameState, item: Frame | bytes, now: float) -> list[Instruction]:
        """Let through what the toxic does not act on: a complete ``Frame`` it did not
        choose, or bytes that are no complete message (part of a streamed body, a head)."""
        return [Deliver(now, item.raw if isinstance(item, Frame) else item)]

    def release(self, state: FrameState, now: float) -> list[Instruction]:
        """Give back messages the toxic holds (end of stream, removal)."""
        return []

    def _items(self, state: FrameState, items: list[Frame | bytes], now: float) -> list[Instruction]:
        out: list[Instruction] = []
        for item in items:
            if state.closed:
                break
            if isinstance(item, Frame) and item.envelope is not None and self._draw(state):
                state.reader.changed()  # e.g. WebSocket: send messages uncompressed from here on
                out.extend(self.on_frame(state, item, now))
            else:
                out.extend(self.pass_on(state, item, now))
        return out

    def _release_all(self, state: FrameState, now: float) -> list[Instruction]:
        out = self.release(state, now)
        partial = state.reader.flush()
        if partial:
            out.append(Deliver(now, partial))
        return out

    @staticmethod
    def _draw(state: ToxicState) -> bool:
        if state.toxicity >= 1.0:
            return True
        return state.toxicity > 0 and state.rng.random() < state.toxicity
