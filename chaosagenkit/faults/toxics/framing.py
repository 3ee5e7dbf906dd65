"""Incremental frame parsers for the two ways agenkit puts messages on a TCP stream.

- agenkit tcp:// (and unix://): a 4-byte big-endian length, then a UTF-8
  JSON envelope (``agenkit/adapters/python/transport.py``; frames above
  10 MiB are refused by the receiver).
- agenkit http:// (HTTP/1.1): one JSON envelope per message body;
  Content-Length bodies are framed, chunked bodies (streaming, SSE) are
  tracked so the parser stays in step, and passed on as they come.

``FrameReader`` is fed bytes in whatever pieces the network delivers and
returns, in stream order, complete ``Frame`` objects and plain ``bytes``
(traffic it does not understand or will not hold back: it must pass
untouched). It never holds more than one incomplete frame. The protocol is
detected from the first bytes unless fixed; anything else (TLS, websockets,
garbage) makes the reader opaque for the rest of the stream.

Detection decides within a bounded number of bytes: each byte is checked
against what an agenkit frame or an HTTP/1.1 start line may begin with, so
``HELLO world\n`` is opaque at its line feed and binary at its first byte
that cannot start a frame; an HTTP start line longer than
``MAX_START_LINE`` is not one. Its user bounds the time as well (the frame
toxics give up after ``DETECT_WINDOW_S`` with ``give_up``), so bytes that
might still begin a frame are never held for long.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DETECT_WINDOW_S",
    "MAX_MESSAGE_SIZE",
    "MAX_START_LINE",
    "PROTOCOLS",
    "Frame",
    "FrameReader",
    "decode_envelope",
]

#: agenkit's transport.MAX_MESSAGE_SIZE (not imported: the proxy must not import agenkit).
MAX_MESSAGE_SIZE = 10 * 1024 * 1024
PROTOCOLS = ("auto", "agenkit", "http")

#: Longest HTTP/1.1 start line detection waits for (then the stream is not HTTP).
MAX_START_LINE = 8 * 1024
#: How long a frame toxic waits for bytes that might still begin a frame.
DETECT_WINDOW_S = 0.2
_MAX_HEAD = 64 * 1024  # an HTTP head larger than this is not agenkit's
_REQUEST_LINE = re.compile(rb"^[A-Z]{3,10} \S+ HTTP/1\.[01]$")
_STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3})(?: .*)?$")
# what the first bytes of a start line may be before its CRLF has arrived
_VERSION_PREFIX = rb"(?:H|HT|HTT|HTTP|HTTP/|HTTP/1|HTTP/1\.|HTTP/1\.[01]\r?)"
_START_LINE_PREFIX = re.compile(
    rb"[A-Z]{0,10}|[A-Z]{3,10} \S*|[A-Z]{3,10} \S+ " + _VERSION_PREFIX + rb"?"
    rb"|" + _VERSION_PREFIX + rb"|HTTP/1\.[01] (?:\d{0,3}|\d{3}\r|\d{3} [^\r\n]*\r?)"
)


@dataclass(slots=True)
class Frame:
    """One complete message: ``head`` (length prefix or HTTP head) and ``body``."""

    protocol: str  # "agenkit" or "http"
    head: bytes
    body: bytes
    envelope: dict[str, Any] | None = field(default=None)

    @property
    def raw(self) -> bytes:
        return self.head + self.body

    def with_body(self, body: bytes, declared_length: int | None = None) -> bytes:
        """This frame's bytes carrying ``body``; the length announced is ``len(body)``
        unless ``declared_length`` says otherwise (for truncated/oversized frames)."""
        length = len(body) if declared_length is None else declared_length
        if self.protocol == "agenkit":
            return length.to_bytes(4, "big") + body
        return _set_content_length(self.head, length) + body


def decode_envelope(body: bytes) -> dict[str, Any] | None:
    """The agenkit envelope in ``body``: a JSON object with a ``type``; None otherwise."""
    if body[:1] != b"{":
        return None
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return value
    return None


class FrameReader:
    """Split one direction of a stream into frames and bytes to pass on untouched.

    ``request_methods`` (shared with the other direction) tells a response
    parser which requests were HEAD; ``on_request`` is called with each
    request method this reader parses.
    """

    def __init__(
        self,
        protocol: str = "auto",
        *,
        request_methods: deque[str] | None = None,
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        self._protocol = protocol
        self._buffer = bytearray()
        self._mode = "detect" if protocol == "auto" else protocol
        self._http = _HttpParser(request_methods, on_request)
        self._skip = 0  # bytes of a released agenkit frame still to pass untouched

    @property
    def mode(self) -> str:
        """detect, agenkit, http or opaque."""
        return self._mode

    @property
    def buffered(self) -> int:
        """Bytes held: the start of a frame, or bytes detection has not decided on yet."""
        return len(self._buffer)

    def give_up(self) -> bytes:
        """Stop detecting (too long without deciding): the bytes held, to pass on; opaque."""
        if self._mode != "detect":
            return b""
        return self.flush()

    def release_partial(self) -> bytes:
        """Let go of an incomplete frame: its bytes so far, to pass on unchanged.

        The rest of that frame will pass untouched too, then framing goes on
        (the stream stays in step). A start too short to say how long its
        frame is (an agenkit length prefix, an HTTP head, bytes detection has
        not decided on: all small) is kept.
        """
        buffer = self._buffer
        if self._mode == "agenkit":
            if len(buffer) < 4:
                return b""
            self._skip = 4 + int.from_bytes(buffer[:4], "big") - len(buffer)
        elif self._mode == "http":
            if not self._http.release_partial(buffer):
                return b""
        else:
            return b""
        held = bytes(buffer)
        buffer.clear()
        return held

    def feed(self, data: bytes) -> list[Frame | bytes]:
        if self._mode == "opaque":
            return [data] if data else []
        self._buffer += data
        out: list[Frame | bytes] = []
        if self._mode == "detect":
            self._mode = _detect(self._buffer)
            if self._mode == "detect":
                return out
        if self._mode == "agenkit":
            self._agenkit_frames(out)
        elif self._mode == "http" and not self._http.parse(self._buffer, out):
            self._mode = "opaque"
        if self._mode == "opaque" and self._buffer:
            out.append(bytes(self._buffer))
            self._buffer.clear()
        return out

    def flush(self) -> bytes:
        """Give up what is buffered (an incomplete frame) and go opaque."""
        held = bytes(self._buffer)
        self._buffer.clear()
        self._mode = "opaque"
        return held

    def _agenkit_frames(self, out: list[Frame | bytes]) -> None:
        buffer = self._buffer
        if self._skip:
            taken = min(self._skip, len(buffer))
            out.append(bytes(buffer[:taken]))
            del buffer[:taken]
            self._skip -= taken
        while len(buffer) >= 4:
            length = int.from_bytes(buffer[:4], "big")
            if length > MAX_MESSAGE_SIZE:
                self._mode = "opaque"  # not agenkit framing (or already broken): hands off
                return
            end = 4 + length
            if len(buffer) < end:
                return
            head, body = bytes(buffer[:4]), bytes(buffer[4:end])
            del buffer[:end]
            out.append(Frame("agenkit", head, body, decode_envelope(body)))


def _detect(buffer: bytearray) -> str:
    """agenkit, http, opaque, or detect (these bytes may still begin a frame)."""
    first = buffer[:1]
    if not first:
        return "detect"
    if first == b"\x00":  # a length below 16 MiB: agenkit's frames always start so
        if len(buffer) >= 4 and not 0 < int.from_bytes(buffer[:4], "big") <= MAX_MESSAGE_SIZE:
            return "opaque"
        if len(buffer) < 5:
            return "detect"
        return "agenkit" if buffer[4:5] == b"{" else "opaque"
    if b"A" <= first <= b"Z":
        line_end = buffer.find(b"\r\n", 0, MAX_START_LINE + 2)
        if line_end >= 0:
            line = bytes(buffer[:line_end])
            return "http" if _REQUEST_LINE.match(line) or _STATUS_LINE.match(line) else "opaque"
        if len(buffer) <= MAX_START_LINE and _START_LINE_PREFIX.fullmatch(buffer):
            return "detect"
    return "opaque"


class _HttpParser:
    """HTTP/1.1 message framing, both requests and responses (decided per message)."""

    def __init__(
        self,
        request_methods: deque[str] | None,
        on_request: Callable[[str], None] | None,
    ) -> None:
        self._request_methods = request_methods
        self._on_request = on_request
        self._skip = 0  # body bytes still to pass through untouched
        self._chunked: _ChunkedTracker | None = None
        self._scanned = 0
        # (head length, body length) of a message whose body is still arriving: its
        # head is read once (reading it pops a request method or reports one)
        self._holding: tuple[int, int] | None = None

    def release_partial(self, buffer: bytearray) -> bool:
        """``buffer`` holds a complete head and part of its body: pass it all untouched,
        and the rest of the body after it. False when the head is not complete."""
        if self._holding is None:
            return False
        head_length, length = self._holding
        self._holding = None
        self._skip = head_length + length - len(buffer)
        return True

    def parse(self, buffer: bytearray, out: list[Frame | bytes]) -> bool:
        """Move complete frames and passed-through bytes from ``buffer`` to ``out``.

        Returns False when the stream is not (or no longer) understood.
        """
        while buffer:
            if self._skip:
                taken = min(self._skip, len(buffer))
                out.append(bytes(buffer[:taken]))
                del buffer[:taken]
                self._skip -= taken
                continue
            if self._chunked is not None:
                taken, done, ok = self._chunked.consume(buffer)
                if not ok:
                    return False
                if taken:
                    out.append(bytes(buffer[:taken]))
                    del buffer[:taken]
                if done:
                    self._chunked = None
                    continue
                return True
            if self._holding is not None:
                head_length, length = self._holding
                kind = "length"
            else:
                head_end = buffer.find(b"\r\n\r\n", max(0, self._scanned - 3))
                if head_end < 0:
                    self._scanned = len(buffer)
                    return len(buffer) <= _MAX_HEAD
                self._scanned = 0
                head_length = head_end + 4
                framing = self._framing(bytes(buffer[:head_length]))
                if framing is None:
                    return False
                kind, length = framing
            if kind == "length" and length <= MAX_MESSAGE_SIZE:
                if len(buffer) < head_length + length:
                    self._holding = (head_length, length)
                    return True  # hold until the body is complete
                self._holding = None
                head, body = bytes(buffer[:head_length]), bytes(buffer[head_length : head_length + length])
                del buffer[: head_length + length]
                out.append(Frame("http", head, body, decode_envelope(body)))
                continue
            out.append(bytes(buffer[:head_length]))
            del buffer[:head_length]
            if kind == "length":
                self._skip = length  # too large to hold back: pass it on as it comes
            elif kind == "chunked":
                self._chunked = _ChunkedTracker()
            else:
                return False  # body until close, or a protocol switch: stop parsing
        return True

    def _framing(self, head: bytes) -> tuple[str, int] | None:
        """("length", n), ("chunked", 0) or ("until-close", 0); None when not HTTP/1.1."""
        lines = head[:-4].split(b"\r\n")
        start = lines[0]
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                return None
            headers[name.lower()] = value.strip()
        status = _STATUS_LINE.match(start)
        if status is not None:
            code = int(status.group(1))
            if code < 200:
                return ("until-close", 0) if code == 101 else ("length", 0)
            method = self._request_methods.popleft() if self._request_methods else ""
            if method == "HEAD" or code in (204, 304):
                return ("length", 0)
            if method == "CONNECT" and code < 300:
                return ("until-close", 0)
        elif _REQUEST_LINE.match(start):
            method = start.split(b" ", 1)[0].decode("ascii")
            if self._on_request is not None:
                self._on_request(method)
        else:
            return None
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            return ("chunked", 0)
        if b"content-length" in headers:
            value = headers[b"content-length"]
            if not value.isdigit():
                return None
            return ("length", int(value))
        if status is not None:
            return ("until-close", 0)
        return ("length", 0)


class _ChunkedTracker:
    """Follow a chunked body to its end without holding it back."""

    def __init__(self) -> None:
        self._state = "size"
        self._remaining = 0

    def consume(self, buffer: bytearray) -> tuple[int, bool, bool]:
        """(bytes of ``buffer`` consumed, body finished, still understood)."""
        position = 0
        while position < len(buffer):
            if self._state == "data":
                taken = min(self._remaining, len(buffer) - position)
                position += taken
                self._remaining -= taken
                if self._remaining == 0:
                    self._state = "size"
                continue
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return position, False, len(buffer) - position <= _MAX_HEAD
            line = bytes(buffer[position:line_end])
            position = line_end + 2
            if self._state == "size":
                size_text = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    return position, False, False
                if size == 0:
                    self._state = "trailers"
                else:
                    self._state, self._remaining = "data", size + 2  # data and its CRLF
            elif self._state == "trailers" and not line:
                return position, True, True
        return position, False, True


def _set_content_length(head: bytes, length: int) -> bytes:
    lines = head[:-4].split(b"\r\n")
    replaced = False
    for index, line in enumerate(lines[1:], start=1):
        if line.split(b":", 1)[0].strip().lower() == b"content-length":
            lines[index] = b"Content-Length: " + str(length).encode()
            replaced = True
    if not replaced:
        lines.append(b"Content-Length: " + str(length).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"
