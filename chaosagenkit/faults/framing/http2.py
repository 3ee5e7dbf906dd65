"""HTTP/2 frames and the gRPC messages they carry: agenkit grpc://.

gRPC runs over HTTP/2 (prior knowledge: the client starts with the
connection preface). Each message of a call is a 5-byte prefix (a
compressed flag, a 4-byte big-endian length) and a protobuf, inside the
DATA frames of the call's stream. agenkit's client compresses requests
with gzip (flag 1, ``grpc-encoding: gzip``); its server answers
uncompressed.

The parser reads every frame: header blocks (HEADERS, CONTINUATION) are
decoded with HPACK to learn each stream's ``content-type`` and ``:path``,
and are never changed (the HPACK dynamic table of both peers must stay in
step); other frames pass as they are. A gRPC message is a ``GrpcFrame``
when it starts at the start of a DATA frame and ends at the end of one
(one DATA frame, or several of its stream with other streams' frames
between them, held until it is complete). Rewritten messages are sent as
DATA frames of at most 16 KiB (every peer accepts those) after the other
frames held with them (frames of different streams may be reordered), and
keep the END_STREAM flag; padding is dropped. Rewriting changes how many
DATA bytes the receiver counts against its flow-control windows; gRPC's
windows (4 MiB) absorb that for messages of ordinary size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, cast

import hpack
import hpack.exceptions

from chaosagenkit.faults.framing.base import (
    JSON_KINDS,
    MAX_MESSAGE_SIZE,
    Frame,
    FramingContext,
    NotFraming,
    pass_through,
)

__all__ = [
    "INVALID_PROTOBUF",
    "PREFACE",
    "GrpcFrame",
    "Http2Parser",
    "encode_frame",
    "encode_message",
    "parse_frame_header",
]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    range(10)
)
END_STREAM, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x4, 0x8, 0x20
#: Every peer accepts DATA frames of this size (the minimum SETTINGS_MAX_FRAME_SIZE).
SAFE_FRAME_SIZE = 16384
_MAX_FRAME = 1 << 24
#: A protobuf no message parses: field 1 with wire type 7, which does not exist.
INVALID_PROTOBUF = b"\x0f\xff\xff\xff\xff"
_AGENKIT_SERVICE = "/agenkit.AgentService/"
_MAX_PATHS = 1024


def encode_frame(frame_type: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return (
        len(payload).to_bytes(3, "big")
        + bytes([frame_type, flags])
        + (stream_id & 0x7FFFFFFF).to_bytes(4, "big")
        + payload
    )


def parse_frame_header(buffer: bytes | bytearray) -> tuple[int, int, int, int] | None:
    """(length, type, flags, stream id) of the frame at the start, or None when incomplete."""
    if len(buffer) < 9:
        return None
    return (
        int.from_bytes(buffer[:3], "big"),
        buffer[3],
        buffer[4],
        int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF,
    )


def encode_message(body: bytes, *, compressed: bool = False, declared_length: int | None = None) -> bytes:
    """A gRPC length-prefixed message."""
    length = len(body) if declared_length is None else declared_length
    return bytes([1 if compressed else 0]) + length.to_bytes(4, "big") + body


def _unpadded(flags: int, payload: bytes) -> bytes:
    if not flags & PADDED:
        return payload
    if not payload or payload[0] >= len(payload):
        raise NotFraming("bad padding")
    return payload[1 : len(payload) - payload[0]]


def _header_fragment(frame_type: int, flags: int, payload: bytes) -> bytes:
    data = _unpadded(flags, payload)
    if frame_type == HEADERS and flags & PRIORITY_FLAG:
        return data[5:]
    if frame_type == PUSH_PROMISE:
        return data[4:]
    return data


@dataclass(slots=True)
class _Held:
    """One frame as it came: its bytes, type, flags and stream."""

    raw: bytes
    type: int
    flags: int
    stream: int
    data: bytes = b""  # a DATA frame's payload without padding


class GrpcFrame(Frame):
    """One gRPC message and the HTTP/2 frames that carried it."""

    framing = "grpc"
    KINDS: ClassVar[tuple[str, ...]] = (
        "truncated",
        "oversized_length",
        "wrong_length",
        "broken_header",
        "invalid_protobuf",
        "wrong_compressed_flag",
    )
    ENCODING_KIND: ClassVar[str] = "invalid_protobuf"
    NOT_APPLICABLE: ClassVar[dict[str, str]] = dict.fromkeys(
        JSON_KINDS, "gRPC messages are protobuf, not JSON (use invalid_protobuf)"
    )

    __slots__ = ("compressed", "envelope", "frames", "payload", "stream")

    def __init__(self, frames: list[_Held], stream: int, envelope: dict | None) -> None:
        self.frames = frames
        self.stream = stream
        message = b"".join(held.data for held in frames if held.type == DATA and held.stream == stream)
        self.compressed = message[0] == 1
        self.payload = message[5:]
        self.envelope = envelope

    @property
    def raw(self) -> bytes:
        return b"".join(held.raw for held in self.frames)

    def copies(self, times: int) -> list[bytes]:
        if times == 1:
            return [self.raw]
        return [self._rewrite(self._message() * times)]  # in the one stream, before its END_STREAM

    def dropped(self) -> bytes:
        return self._rewrite(b"")  # the stream's DATA frames stay (empty): END_STREAM still comes

    def malformed(self, kind: str) -> tuple[bytes, bool] | None:
        body, compressed = self.payload, self.compressed
        if kind == "truncated":  # the prefix announces it all, the stream ends after half
            return self._rewrite(
                encode_message(body[: len(body) // 2], compressed=compressed, declared_length=len(body))
            ), False
        if kind == "oversized_length":  # above every gRPC receive limit (4 MiB by default)
            return self._rewrite(
                encode_message(body, compressed=compressed, declared_length=MAX_MESSAGE_SIZE + 1)
            ), False
        if kind == "wrong_length":  # half is the message, the rest is read as the next prefix
            return self._rewrite(
                encode_message(body, compressed=compressed, declared_length=len(body) // 2)
            ), False
        if kind == "broken_header":  # a DATA frame on stream 0: a connection error (PROTOCOL_ERROR)
            return self._rewrite(self._message(), stream_id=0), False
        if kind == "invalid_protobuf":
            return self._rewrite(encode_message(INVALID_PROTOBUF)), False
        if kind == "wrong_compressed_flag":
            return self._rewrite(encode_message(body, compressed=not compressed)), False
        return None

    def _message(self) -> bytes:
        return encode_message(self.payload, compressed=self.compressed)

    def _rewrite(self, messages: bytes, *, stream_id: int | None = None) -> bytes:
        """The other frames held with the message, then ``messages`` as this stream's DATA."""
        mine = [held for held in self.frames if held.type == DATA and held.stream == self.stream]
        others = b"".join(held.raw for held in self.frames if held not in mine)
        end = mine[-1].flags & END_STREAM
        sid = self.stream if stream_id is None else stream_id
        pieces = [messages[i : i + SAFE_FRAME_SIZE] for i in range(0, len(messages), SAFE_FRAME_SIZE)] or [
            b""
        ]
        data = b"".join(
            encode_frame(DATA, end if index == len(pieces) - 1 else 0, sid, piece)
            for index, piece in enumerate(pieces)
        )
        return others + data


class _Cursor:
    """Where a stream's DATA stands in its sequence of gRPC messages (without holding them)."""

    __slots__ = ("prefix", "remaining")

    def __init__(self) -> None:
        self.prefix = bytearray()  # the start of a message prefix (fewer than 5 bytes)
        self.remaining = 0  # bytes of the current message body still to come

    @property
    def at_boundary(self) -> bool:
        return not self.prefix and not self.remaining

    def advance(self, data: bytes) -> None:
        position = 0
        while position < len(data):
            if self.remaining:
                taken = min(self.remaining, len(data) - position)
                self.remaining -= taken
                position += taken
                continue
            needed = 5 - len(self.prefix)
            self.prefix += data[position : position + needed]
            position += needed
            if len(self.prefix) == 5:
                self.remaining = int.from_bytes(self.prefix[1:5], "big")
                self.prefix.clear()


@dataclass(slots=True)
class _Stream:
    grpc: bool = False
    path: str | None = None
    cursor: _Cursor = field(default_factory=_Cursor)


class Http2Parser:
    """HTTP/2 frames of one direction (``client``: the side that sends the preface).

    An observer (``record=True``) records each stream's ``:path`` in the
    context and assembles nothing.
    """

    def __init__(self, context: FramingContext, *, client: bool, record: bool = False) -> None:
        self._context = context
        self._client = client
        self._record = record
        self._preface = client
        self._decoder = hpack.Decoder()
        self._decoder.max_allowed_table_size = 1 << 31  # the receiver enforces its own limit
        self._decoder.max_header_list_size = 1 << 24
        self._streams: dict[int, _Stream] = {}
        self._block: tuple[int, int, bytearray] | None = None  # stream, first frame type, fragments
        self._group: list[_Held] | None = None  # a message spread over frames, held until complete
        self._group_stream = 0
        self._group_bytes = 0
        self._skip = 0  # the rest of a released DATA frame, passed untouched
        self._skip_stream = 0

    def held_bytes(self) -> int:
        return self._group_bytes

    def changed(self) -> None:
        """Nothing to adjust: header blocks are never changed."""

    def parse(self, buffer: bytearray, out: list) -> None:
        if self._skip:
            self._skip = pass_through(buffer, out, self._skip)
            if self._skip:
                return
        if self._preface:
            if len(buffer) < len(PREFACE):
                if not PREFACE.startswith(bytes(buffer)):
                    raise NotFraming("not the HTTP/2 preface")
                return
            if buffer[: len(PREFACE)] != PREFACE:
                raise NotFraming("not the HTTP/2 preface")
            out.append(PREFACE)
            del buffer[: len(PREFACE)]
            self._preface = False
        while (header := parse_frame_header(buffer)) is not None:
            length, frame_type, flags, stream_id = header
            if length >= _MAX_FRAME:
                raise NotFraming("frame too large")
            if len(buffer) < 9 + length:
                return
            raw = bytes(buffer[: 9 + length])
            del buffer[: 9 + length]
            try:
                self._frame(_Held(raw, frame_type, flags, stream_id), out)
            except NotFraming:
                buffer[:0] = raw  # not understood: it passes untouched with the rest
                raise

    def release_partial(self, buffer: bytearray) -> bytes:
        """A message held over several frames, and a DATA frame in progress, pass untouched."""
        released = bytearray(self._release_group())
        header = parse_frame_header(buffer)
        if header is not None and header[1] == DATA and len(buffer) < 9 + header[0]:
            stream = self._streams.get(header[3])
            if stream is not None:
                stream.grpc = False  # its message boundaries are lost: nothing more to fault on it
            self._skip = 9 + header[0] - len(buffer)
            released += buffer
            buffer.clear()
        return bytes(released)

    def take_held(self) -> bytes:
        group, self._group, self._group_bytes = self._group or [], None, 0
        return b"".join(held.raw for held in group)

    # -- frames --------------------------------------------------------------------
    def _frame(self, held: _Held, out: list) -> None:
        if self._block is not None and held.type != CONTINUATION:
            raise NotFraming("header block interrupted")
        if held.type in (HEADERS, PUSH_PROMISE):
            fragment = _header_fragment(held.type, held.flags, held.raw[9:])
            self._block = (held.stream, held.type, bytearray(fragment))
            if held.flags & END_HEADERS:
                self._end_block()
        elif held.type == CONTINUATION:
            if self._block is None or self._block[0] != held.stream:
                raise NotFraming("CONTINUATION out of place")
            self._block[2].extend(held.raw[9:])
            if held.flags & END_HEADERS:
                self._end_block()
        elif held.type == DATA:
            held.data = _unpadded(held.flags, held.raw[9:])
            self._data(held, out)
            return
        if (
            held.type in (HEADERS, RST_STREAM)
            and self._group is not None
            and held.stream == self._group_stream
        ):
            out.append(self._release_group())  # the stream goes on without completing the message
        self._emit(held, out)
        if held.type == RST_STREAM or (held.type == HEADERS and held.flags & END_STREAM):
            self._streams.pop(held.stream, None)

    def _end_block(self) -> None:
        stream_id, frame_type, block = self._block  # type: ignore[misc]
        self._block = None
        try:
            # raw=False (the default): names and values are str.
            headers = cast(list[tuple[str, str]], self._decoder.decode(bytes(block)))
        except (hpack.exceptions.HPACKError, ValueError, UnicodeDecodeError) as e:
            raise NotFraming(f"header block not decodable: {e}") from None
        if frame_type != HEADERS:
            return
        stream = self._streams.setdefault(stream_id, _Stream())
        for name, value in headers:
            if name == "content-type":
                stream.grpc = value.startswith("application/grpc")
            elif name == ":path":
                stream.path = value
                if self._record:
                    paths = self._context.grpc_paths
                    paths[stream_id] = value
                    if len(paths) > _MAX_PATHS:
                        del paths[next(iter(paths))]

    def _data(self, held: _Held, out: list) -> None:
        stream = self._streams.get(held.stream)
        group = self._group
        if stream is None or not stream.grpc or self._record:
            self._emit(held, out)
        elif group is not None and held.stream == self._group_stream:
            self._add_to_group(held)
            message = b"".join(h.data for h in group if h.type == DATA and h.stream == held.stream)
            if len(message) >= 5:
                size = 5 + int.from_bytes(message[1:5], "big")
                if len(message) == size:
                    self._group, self._group_bytes = None, 0
                    out.append(GrpcFrame(group, held.stream, self._envelope(held.stream, stream)))
                elif len(message) > size:
                    out.append(self._release_group())  # the message ends inside a frame
        elif group is not None or not stream.cursor.at_boundary:
            stream.cursor.advance(held.data)
            self._emit(held, out)
        else:
            data = held.data
            expected = 5 + int.from_bytes(data[1:5], "big") if len(data) >= 5 else None
            if data and expected is not None and len(data) == expected:
                out.append(GrpcFrame([held], held.stream, self._envelope(held.stream, stream)))
            elif data and (expected is None or len(data) < expected):
                self._group, self._group_stream, self._group_bytes = [], held.stream, 0
                self._add_to_group(held)
            else:
                stream.cursor.advance(data)
                self._emit(held, out)
        if held.flags & END_STREAM:
            if self._group is not None and self._group_stream == held.stream:
                out.append(self._release_group())
            self._streams.pop(held.stream, None)

    def _emit(self, held: _Held, out: list) -> None:
        if self._group is not None:
            self._add_to_group(held)
        else:
            out.append(held.raw)

    def _add_to_group(self, held: _Held) -> None:
        self._group.append(held)  # type: ignore[union-attr]
        self._group_bytes += len(held.raw)
        if self._group_bytes > MAX_MESSAGE_SIZE + SAFE_FRAME_SIZE:
            raise NotFraming("message held over too many frames")

    def _release_group(self) -> bytes:
        """Give up the held message: its frames pass as they came; its stream stays in step."""
        group, self._group, self._group_bytes = self._group, None, 0
        if not group:
            return b""
        stream = self._streams.get(self._group_stream)
        for held in group:
            if stream is not None and held.type == DATA and held.stream == self._group_stream:
                stream.cursor.advance(held.data)
        return b"".join(held.raw for held in group)

    def _envelope(self, stream_id: int, stream: _Stream) -> dict | None:
        """A gRPC message of agenkit's service (or of an unknown path) is agenkit's."""
        path = stream.path if self._client else self._context.grpc_paths.get(stream_id)
        if path is not None and not path.startswith(_AGENKIT_SERVICE):
            return None
        return {"type": "request" if self._client else "response", "framing": "grpc", "path": path}
