"""``malformed_frame``: corrupt chosen agenkit frames in one of six ways (``kind``).

On agenkit tcp:// framing (4-byte length + JSON envelope):

- ``invalid_json``: the envelope is no longer JSON (its opening brace becomes ``[``);
- ``invalid_utf8``: two bytes that are not UTF-8 are inserted into the envelope;
- ``truncated``: the length prefix announces the whole envelope, half of it
  is sent, then the stream is closed;
- ``oversized_length``: the length prefix announces MAX_MESSAGE_SIZE + 1
  bytes (agenkit refuses frames above 10 MiB), followed by the real envelope;
- ``wrong_type``: a valid envelope whose ``type`` is unexpected (a request
  becomes a ``response``, anything else a ``request``);
- ``missing_fields``: a valid JSON envelope without its ``payload``.

Over http:// the JSON body of the HTTP/1.1 message is corrupted the same
way and Content-Length is fixed up, so the HTTP framing stays valid and the
fault reaches agenkit's decoder. Two kinds cannot keep HTTP framing valid by
nature: ``truncated`` announces the full Content-Length, sends half the
body and closes; ``oversized_length`` announces MAX_MESSAGE_SIZE + 1 bytes,
sends the real body and closes. HTTP has no message size limit in agenkit's
HTTP transport, so over HTTP both surface as a connection closed in the
middle of a body (the client cannot tell them apart); a client that
enforced agenkit's 10 MiB limit would refuse ``oversized_length`` from its
header alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.faults.toxics.base import Close, Deliver, Instruction
from chaosagenkit.faults.toxics.frame_toxic import FrameState, FrameToxic, FrameToxicConfig
from chaosagenkit.faults.toxics.framing import MAX_MESSAGE_SIZE, Frame

__all__ = ["MALFORMED_KINDS", "MalformedFrameConfig", "MalformedFrameToxic", "corrupt"]

MALFORMED_KINDS = (
    "invalid_json",
    "invalid_utf8",
    "truncated",
    "oversized_length",
    "wrong_type",
    "missing_fields",
)


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


def corrupt(frame: Frame, kind: str) -> tuple[bytes, bool]:
    """The bytes to send instead of ``frame``, and whether to close the stream after them."""
    body = frame.body
    if kind == "invalid_json":
        return frame.with_body(b"[" + body[1:]), False
    if kind == "invalid_utf8":
        quote = body.find(b'"') + 1  # inside the first JSON string
        return frame.with_body(body[:quote] + b"\xff\xfe" + body[quote:]), False
    if kind == "truncated":
        return frame.with_body(body[: len(body) // 2], declared_length=len(body)), True
    if kind == "oversized_length":
        # agenkit tcp: the reader refuses the prefix and the stream is out of step from
        # here on; HTTP: the body ends early, so close rather than leave the client waiting
        return frame.with_body(body, declared_length=MAX_MESSAGE_SIZE + 1), frame.protocol == "http"
    envelope = dict(frame.envelope or {})
    if kind == "wrong_type":
        envelope["type"] = "response" if envelope.get("type") == "request" else "request"
    elif kind == "missing_fields":
        envelope.pop("payload", None)
    else:  # pragma: no cover - the config validates kinds
        raise ValueError(kind)
    return frame.with_body(json.dumps(envelope).encode()), False


class MalformedFrameToxic(FrameToxic):
    """Corrupt chosen frames."""

    type_name = "malformed_frame"
    Config = MalformedFrameConfig
    config: MalformedFrameConfig

    def on_frame(self, state: FrameState, frame: Frame, now: float) -> list[Instruction]:
        data, close = corrupt(frame, self.config.kind)
        state.act()
        if close:
            state.closed = True  # nothing after a cut reaches the peer
            state.reader.flush()
            return [Deliver(now, data), Close(now)]
        return [Deliver(now, data)]
