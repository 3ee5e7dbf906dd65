"""agenkit's own framing (tcp:// and unix://): a 4-byte big-endian length, then a UTF-8 JSON envelope.

``agenkit/adapters/python/transport.py``: frames above 10 MiB are refused
by the reader of the frame (``MAX_MESSAGE_SIZE``).
"""

from __future__ import annotations

from typing import ClassVar

from chaosagenkit.faults.framing.base import (
    JSON_KINDS,
    MAX_MESSAGE_SIZE,
    Frame,
    NotFraming,
    corrupt_json,
    decode_envelope,
    pass_through,
)

__all__ = ["AgenkitFrame", "AgenkitParser", "encode_frame"]


def encode_frame(body: bytes, declared_length: int | None = None) -> bytes:
    """A frame carrying ``body``, announcing ``declared_length`` (default: its length)."""
    length = len(body) if declared_length is None else declared_length
    return length.to_bytes(4, "big") + body


class AgenkitFrame(Frame):
    framing = "agenkit"
    KINDS: ClassVar[tuple[str, ...]] = (*JSON_KINDS, "truncated", "oversized_length", "wrong_length")
    NOT_APPLICABLE: ClassVar[dict[str, str]] = {
        "broken_header": "agenkit tcp framing has no header but its length prefix "
        "(use wrong_length or oversized_length)",
        "invalid_protobuf": "agenkit tcp framing carries JSON, not protobuf (that is grpc)",
        "wrong_compressed_flag": "agenkit tcp framing has no compression flag",
    }

    __slots__ = ("envelope", "payload")

    def __init__(self, body: bytes) -> None:
        self.payload = body
        self.envelope = decode_envelope(body)

    @property
    def raw(self) -> bytes:
        return encode_frame(self.payload)

    def malformed(self, kind: str) -> tuple[bytes, bool] | None:
        body = self.payload
        if kind in JSON_KINDS:
            return encode_frame(corrupt_json(body, self.envelope, kind)), False
        if kind == "truncated":  # announce it all, send half, close: the reader waits for the rest
            return encode_frame(body[: len(body) // 2], len(body)), True
        if kind == "oversized_length":  # refused from the prefix; the stream is out of step after
            return encode_frame(body, MAX_MESSAGE_SIZE + 1), False
        if kind == "wrong_length":  # half of it read as the message, the rest as the next prefix
            return encode_frame(body, len(body) // 2), False
        return None


class AgenkitParser:
    """Split a stream into agenkit frames; a prefix above the limit means it is not (or no longer) one."""

    def __init__(self) -> None:
        self._skip = 0  # bytes of a released frame still to pass untouched

    def held_bytes(self) -> int:
        return 0

    def parse(self, buffer: bytearray, out: list) -> None:
        self._skip = pass_through(buffer, out, self._skip)
        while len(buffer) >= 4:
            length = int.from_bytes(buffer[:4], "big")
            if length > MAX_MESSAGE_SIZE:
                raise NotFraming("length prefix beyond agenkit's limit")
            end = 4 + length
            if len(buffer) < end:
                return
            body = bytes(buffer[4:end])
            del buffer[:end]
            out.append(AgenkitFrame(body))

    def release_partial(self, buffer: bytearray) -> bytes:
        if len(buffer) < 4:
            return b""  # too short to say how long its frame is: kept (at most 3 bytes)
        self._skip = 4 + int.from_bytes(buffer[:4], "big") - len(buffer)
        held = bytes(buffer)
        buffer.clear()
        return held

    def changed(self) -> None:
        """A toxic changed the message sequence: nothing to adjust in this framing."""
