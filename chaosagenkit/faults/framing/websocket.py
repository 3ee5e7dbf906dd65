"""WebSocket frames (RFC 6455) after the HTTP/1.1 upgrade: agenkit ws://.

agenkit sends each envelope as one binary message; its client (the
``websockets`` package) masks what it sends, offers permessage-deflate and
the server accepts it, so messages are usually compressed (RSV1 set) with
context takeover: each message's compressed bytes refer back to the ones
before it. The parser keeps an inflater in step with the sender to read
every message, assembles fragmented messages (control frames between the
fragments pass at once) and passes control frames (ping, pong, close)
untouched.

Taking a compressed message out, adding one or changing one would leave
the receiver's inflater out of step with the sender's compressor, so once a
toxic has chosen a message (``changed``), that message and every later one
are sent uncompressed (RSV1 clear): RFC 7692 lets a sender do so, and an
uncompressed message does not touch the receiver's inflater, so the stream
stays valid.
"""

from __future__ import annotations

import zlib
from typing import ClassVar

from chaosagenkit.faults.framing.base import (
    JSON_KINDS,
    MAX_MESSAGE_SIZE,
    Frame,
    NotFraming,
    corrupt_json,
    decode_envelope,
)

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "WebSocketFrame",
    "WebSocketParser",
    "apply_mask",
    "encode_frame",
    "parse_header",
]

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
_DEFLATE_TAIL = b"\x00\x00\xff\xff"


def apply_mask(data: bytes, key: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``key`` repeated (masking and unmasking are the same)."""
    if not data:
        return b""
    stream = (key * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(len(data), "big")


def parse_header(buffer: bytes | bytearray) -> tuple[int, int, int, bytes | None] | None:
    """(first byte, header size, payload length, mask key) of the frame at the start, or
    None when the header is not complete yet."""
    if len(buffer) < 2:
        return None
    first, second = buffer[0], buffer[1]
    length = second & 0x7F
    size = 2
    if length == 126:
        if len(buffer) < 4:
            return None
        length, size = int.from_bytes(buffer[2:4], "big"), 4
    elif length == 127:
        if len(buffer) < 10:
            return None
        length, size = int.from_bytes(buffer[2:10], "big"), 10
    key = None
    if second & 0x80:
        if len(buffer) < size + 4:
            return None
        key, size = bytes(buffer[size : size + 4]), size + 4
    return first, size, length, key


def encode_frame(
    opcode: int,
    payload: bytes,
    *,
    key: bytes | None = None,
    fin: bool = True,
    rsv: int = 0,
    declared_length: int | None = None,
) -> bytes:
    """One frame carrying ``payload`` (masked with ``key`` if given); ``rsv`` is the three
    RSV bits (0x4 = RSV1); ``declared_length`` overrides the length the header announces."""
    length = len(payload) if declared_length is None else declared_length
    head = bytearray([(0x80 if fin else 0) | (rsv & 0x7) << 4 | opcode])
    mask_bit = 0x80 if key is not None else 0
    if length < 126:
        head.append(mask_bit | length)
    elif length < 1 << 16:
        head.append(mask_bit | 126)
        head += length.to_bytes(2, "big")
    else:
        head.append(mask_bit | 127)
        head += length.to_bytes(8, "big")
    if key is not None:
        head += key
        payload = apply_mask(payload, key)
    return bytes(head) + payload


class WebSocketFrame(Frame):
    """One WebSocket message (one or more frames); ``payload`` is its data, inflated."""

    framing = "websocket"
    KINDS: ClassVar[tuple[str, ...]] = (
        *JSON_KINDS,
        "truncated",
        "oversized_length",
        "wrong_length",
        "broken_header",
        "wrong_compressed_flag",
    )
    NOT_APPLICABLE: ClassVar[dict[str, str]] = {
        "invalid_protobuf": "agenkit's WebSocket messages carry JSON, not protobuf (that is grpc)",
    }

    __slots__ = ("_parser", "compressed", "envelope", "key", "opcode", "original", "payload")

    def __init__(
        self,
        parser: WebSocketParser,
        opcode: int,
        payload: bytes,
        original: bytes,
        key: bytes | None,
        compressed: bool,
    ) -> None:
        self._parser = parser
        self.opcode = opcode
        self.payload = payload
        self.original = original
        self.key = key
        self.compressed = compressed
        self.envelope = decode_envelope(payload)

    @property
    def raw(self) -> bytes:
        if self.compressed and self._parser.diverged:
            return self.encode(self.payload)  # the receiver's inflater no longer follows the sender
        return self.original

    def encode(self, payload: bytes, **options) -> bytes:
        """``payload`` as one uncompressed frame of this message's type (masked as it was)."""
        return encode_frame(self.opcode, payload, key=self.key, **options)

    def malformed(self, kind: str) -> tuple[bytes, bool] | None:
        payload = self.payload
        if kind in JSON_KINDS:
            return self.encode(corrupt_json(payload, self.envelope, kind)), False
        if kind == "truncated":  # the header announces it all, half is sent, then close
            return self.encode(payload[: len(payload) // 2], declared_length=len(payload)), True
        if kind == "oversized_length":  # beyond agenkit's 10 MiB max_size: refused from the header
            return self.encode(payload, declared_length=MAX_MESSAGE_SIZE + 1), True
        if kind == "wrong_length":  # half is the message, the rest is read as the next frame header
            return self.encode(payload, declared_length=len(payload) // 2), False
        if kind == "broken_header":  # RSV2 set: no extension defines it
            return self.encode(payload, rsv=0x2), False
        if kind == "wrong_compressed_flag":
            if self.compressed:  # RSV1 cleared: the compressed bytes are read as the message
                first = self.original[0] & ~0x40
                return bytes([first]) + self.original[1:], False
            return self.encode(payload, rsv=0x4), False  # RSV1 set without compression: protocol error
        return None


class WebSocketParser:
    """WebSocket frames of one direction after the upgrade."""

    def __init__(self, *, deflate: bool = False, no_context_takeover: bool = False) -> None:
        self._deflate = deflate
        self._no_context_takeover = no_context_takeover
        self._inflater = zlib.decompressobj(-15) if deflate else None
        self._fragments: list[tuple[int, bytes, bytes, bytes | None]] = []  # first byte, raw, data, key
        self._held = 0
        # a message released by release_partial: how its other fragments pass (None: none is)
        self._passing: str | None = None
        self.diverged = False  # a toxic changed the message sequence: re-send messages uncompressed

    def held_bytes(self) -> int:
        return self._held

    def changed(self) -> None:
        self.diverged = True

    def parse(self, buffer: bytearray, out: list) -> None:
        """Move complete messages and control frames from ``buffer`` to ``out``.

        A frame that is not agenkit WebSocket raises ``NotFraming`` before
        anything of it is consumed (it passes untouched with the rest).
        """
        while True:
            header = parse_header(buffer)
            if header is None:
                return
            first, size, length, key = header
            if length > MAX_MESSAGE_SIZE:
                raise NotFraming("WebSocket frame beyond agenkit's max_size")
            if len(buffer) < size + length:
                return
            opcode = first & 0x0F
            passing = opcode == OP_CONTINUATION and self._passing is not None
            if opcode < OP_CLOSE and not passing:
                self._check(first, opcode)
            raw = bytes(buffer[: size + length])
            data = raw[size:]
            if key is not None:
                data = apply_mask(data, key)
            if opcode >= OP_CLOSE:
                out.append(raw)  # a control frame: passed at once, also between fragments
            elif passing:
                out.append(self._pass_fragment(first, raw, data, key))
                if first & 0x80:
                    self._passing = None
            elif first & 0x80:  # FIN: the message is complete
                out.append(self._message([*self._fragments, (first, raw, data, key)]))
                self._fragments, self._held = [], 0
            else:
                self._fragments.append((first, raw, data, key))
                self._held += len(raw)
            del buffer[: size + length]

    def _check(self, first: int, opcode: int) -> None:
        if opcode == OP_CONTINUATION:
            if not self._fragments:
                raise NotFraming("continuation without a message")
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._fragments:
                raise NotFraming("new message inside a fragmented one")
            if first & 0x40 and self._inflater is None:
                raise NotFraming("RSV1 set without permessage-deflate")
        else:
            raise NotFraming("reserved opcode")

    def _message(self, fragments: list[tuple[int, bytes, bytes, bytes | None]]) -> WebSocketFrame:
        first, _, _, key = fragments[0]
        data = b"".join(fragment[2] for fragment in fragments)
        original = b"".join(fragment[1] for fragment in fragments)
        compressed = bool(first & 0x40)
        if compressed:
            data = self._inflate(data)
        return WebSocketFrame(self, first & 0x0F, data, original, key, compressed)

    def _inflate(self, data: bytes) -> bytes:
        return self._inflate_part(data, end=True)

    def _inflate_part(self, data: bytes, *, end: bool) -> bytes:
        """Inflate the next part of a compressed message (the whole of it when ``end``), so
        the inflater stays in step with the sender's compressor."""
        inflater = self._inflater
        if inflater is None:
            raise NotFraming("RSV1 set without permessage-deflate")
        try:
            plain = inflater.decompress(data + (_DEFLATE_TAIL if end else b""), MAX_MESSAGE_SIZE + 1)
        except zlib.error as e:
            raise NotFraming(f"cannot inflate a message: {e}") from None
        if inflater.unconsumed_tail:
            raise NotFraming("inflated message beyond agenkit's max_size")
        if end and self._no_context_takeover:
            self._inflater = zlib.decompressobj(-15)
        return plain

    def release_partial(self, buffer: bytearray) -> bytes:
        """The fragments of a message held so far pass, and its other fragments after them;
        a frame in progress is kept (at most one frame, bounded by agenkit's 10 MiB).

        A compressed message is still inflated as it passes, to stay in step;
        once the stream has diverged it passes inflated (uncompressed
        fragments), as every message does then.
        """
        if not self._fragments:
            return b""
        fragments, self._fragments, self._held = self._fragments, [], 0
        if not fragments[0][0] & 0x40:
            self._passing = "raw"
        else:
            self._passing = "reencode" if self.diverged else "inflate"
        return b"".join(self._pass_fragment(*fragment) for fragment in fragments)

    def _pass_fragment(self, first: int, raw: bytes, data: bytes, key: bytes | None) -> bytes:
        if self._passing == "raw":
            return raw
        plain = self._inflate_part(data, end=bool(first & 0x80))
        if self._passing == "inflate":
            return raw
        return encode_frame(first & 0x0F, plain, key=key, fin=bool(first & 0x80))  # RSV1 clear

    def take_held(self) -> bytes:
        """Everything held, as it came (the stream stops being read as WebSocket)."""
        fragments, self._fragments, self._held = self._fragments, [], 0
        return b"".join(fragment[1] for fragment in fragments)
