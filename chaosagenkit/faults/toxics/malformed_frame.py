"""``malformed_frame``: corrupt chosen agenkit messages in one of eleven ways (``kind``).

What each kind does depends on the framing; each framing's ``Frame``
writes it (``chaosagenkit.faults.framing``) and docs/network.md tables what
the receiver sees:

- ``invalid_json``, ``invalid_utf8``, ``wrong_type``, ``missing_fields``:
  the JSON envelope is broken (``{`` becomes ``[``; bytes ``FF FE`` in its
  first string), or stays JSON with an unexpected ``type`` or without its
  ``payload``; the framing around it stays valid (tcp/unix, http/h2c, ws);
- ``truncated``: the length announced is the whole message, half of it is
  sent, then the stream is cut (over gRPC the call's stream ends instead);
- ``oversized_length``: the length announced is above agenkit's 10 MiB
  limit (gRPC: above its 4 MiB receive limit), the real message follows;
- ``wrong_length``: the length announced is half the real one, so the rest
  of the message is read as what comes next;
- ``broken_header``: the framing's own header is broken (HTTP: a header
  line without a colon; WebSocket: RSV2 set; HTTP/2: a DATA frame on
  stream 0); agenkit tcp framing has no header but its length prefix;
- ``invalid_protobuf``: a gRPC message that no protobuf parses;
- ``wrong_compressed_flag``: gRPC's compressed flag flipped; WebSocket's
  RSV1 flipped;
- ``invalid_encoding``: the payload does not decode as the message it
  carries, whatever the transport: ``invalid_json`` in agenkit's JSON
  envelopes (tcp, unix, ws, http, h2c), ``invalid_protobuf`` over gRPC. One
  experiment can then corrupt every transport's payload the same way.

A kind that does not apply to a framing (JSON kinds over gRPC, protobuf
over JSON framings) leaves its messages untouched and uncounted; with
``protocol`` fixed, such a combination is refused when the toxic is created.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.faults.framing import MALFORMED_KINDS, Frame
from chaosagenkit.faults.framing.agenkit import AgenkitFrame
from chaosagenkit.faults.framing.http1 import HttpFrame
from chaosagenkit.faults.framing.http2 import GrpcFrame
from chaosagenkit.faults.framing.websocket import WebSocketFrame
from chaosagenkit.faults.toxics.base import Close, Deliver, Instruction
from chaosagenkit.faults.toxics.frame_toxic import FrameState, FrameToxic, FrameToxicConfig

__all__ = ["MALFORMED_KINDS", "MalformedFrameConfig", "MalformedFrameToxic"]

#: The framing a fixed ``protocol`` reads, to refuse kinds that cannot apply to it.
_FRAMES: dict[str, type[Frame]] = {
    "agenkit": AgenkitFrame,
    "http": HttpFrame,
    "websocket": WebSocketFrame,
    "grpc": GrpcFrame,
}


@dataclass(frozen=True)
class MalformedFrameConfig(FrameToxicConfig):
    kind: str = "invalid_json"

    ATTRIBUTES = {**FrameToxicConfig.ATTRIBUTES, "kind": "kind"}

    def validate(self) -> None:
        super().validate()
        if self.kind not in MALFORMED_KINDS:
            raise ConfigurationError(
                "kind", f"must be one of {', '.join(MALFORMED_KINDS)}, got {self.kind!r}"
            )
        frame = _FRAMES.get(self.protocol)
        kind = frame.ENCODING_KIND if frame is not None and self.kind == "invalid_encoding" else self.kind
        if frame is not None and kind not in frame.KINDS:
            reason = frame.NOT_APPLICABLE.get(kind, "it does not apply")
            raise ConfigurationError("kind", f"{kind} does not apply to {self.protocol}: {reason}")


class MalformedFrameToxic(FrameToxic):
    """Corrupt chosen messages."""

    type_name = "malformed_frame"
    Config = MalformedFrameConfig
    config: MalformedFrameConfig

    def on_frame(self, state: FrameState, frame: Frame, now: float) -> list[Instruction]:
        kind = frame.ENCODING_KIND if self.config.kind == "invalid_encoding" else self.config.kind
        corrupted = frame.malformed(kind)
        if corrupted is None:  # not a fault of this framing: the message passes as it is
            return [Deliver(now, frame.raw)]
        data, close = corrupted
        state.act()
        if close:
            state.closed = True  # nothing after a cut reaches the peer
            state.reader.flush()
            return [Deliver(now, data), Close(now)]
        return [Deliver(now, data)]
