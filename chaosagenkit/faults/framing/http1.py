"""HTTP/1.1 message framing (agenkit http:// and h2c://, and the WebSocket handshake).

One JSON envelope per message body. Content-Length bodies are messages;
chunked bodies (streaming, SSE) are followed so the parser stays in step
and passed on as they come; a body too large to hold passes as it comes.
Responses to HEAD have no body: the request methods come from the other
direction (``FramingContext``). agenkit's ``h2c://`` is HTTP/1.1 on the
wire: its client (httpx) only speaks HTTP/2 over TLS and its server
(aiohttp) never does, so h2c traffic is read here.

A WebSocket upgrade (a request with ``Upgrade: websocket`` answered by
``101 Switching Protocols``) hands the stream to the WebSocket parser with
what the 101 negotiated; another protocol switch (h2c, CONNECT) makes the
stream opaque.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import ClassVar

from chaosagenkit.faults.framing.base import (
    JSON_KINDS,
    MAX_MESSAGE_SIZE,
    Frame,
    FramingContext,
    NotFraming,
    Parser,
    WebSocketSession,
    corrupt_json,
    decode_envelope,
    pass_through,
)
from chaosagenkit.faults.framing.websocket import WebSocketParser

__all__ = [
    "MAX_HEAD",
    "REQUEST_LINE",
    "STATUS_LINE",
    "HttpFrame",
    "HttpParser",
    "set_content_length",
    "websocket_session",
]

MAX_HEAD = 64 * 1024  # an HTTP head larger than this is not agenkit's
REQUEST_LINE = re.compile(rb"^[A-Z]{3,10} \S+ HTTP/1\.[01]$")
STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3})(?: .*)?$")


class HttpFrame(Frame):
    framing = "http"
    KINDS: ClassVar[tuple[str, ...]] = (
        *JSON_KINDS,
        "truncated",
        "oversized_length",
        "wrong_length",
        "broken_header",
    )
    NOT_APPLICABLE: ClassVar[dict[str, str]] = {
        "invalid_protobuf": "HTTP/1.1 bodies carry JSON, not protobuf (that is grpc)",
        "wrong_compressed_flag": "HTTP/1.1 has no per-message compression flag",
    }

    __slots__ = ("envelope", "head", "payload")

    def __init__(self, head: bytes, body: bytes) -> None:
        self.head = head
        self.payload = body
        self.envelope = decode_envelope(body)

    @property
    def raw(self) -> bytes:
        return self.head + self.payload

    def with_body(self, body: bytes, declared_length: int | None = None) -> bytes:
        length = len(body) if declared_length is None else declared_length
        return set_content_length(self.head, length) + body

    def malformed(self, kind: str) -> tuple[bytes, bool] | None:
        body = self.payload
        if kind in JSON_KINDS:
            return self.with_body(corrupt_json(body, self.envelope, kind)), False
        if kind == "truncated":  # announce it all, send half, close
            return self.with_body(body[: len(body) // 2], len(body)), True
        if kind == "oversized_length":  # agenkit's HTTP transport has no limit: the body ends early
            return self.with_body(body, MAX_MESSAGE_SIZE + 1), True
        if kind == "wrong_length":  # half of it is the body, the rest is read as the next message
            return self.with_body(body, len(body) // 2), False
        if kind == "broken_header":  # a header line without a colon: no parser accepts it
            head_end = self.head.rfind(b"\r\n\r\n")
            return self.head[:head_end] + b"\r\nBroken header line\r\n\r\n" + body, False
        return None


def set_content_length(head: bytes, length: int) -> bytes:
    lines = head[:-4].split(b"\r\n")
    replaced = False
    for index, line in enumerate(lines[1:], start=1):
        if line.split(b":", 1)[0].strip().lower() == b"content-length":
            lines[index] = b"Content-Length: " + str(length).encode()
            replaced = True
    if not replaced:
        lines.append(b"Content-Length: " + str(length).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


def websocket_session(extensions: bytes) -> WebSocketSession:
    """What a 101 response's ``Sec-WebSocket-Extensions`` negotiated."""
    session = WebSocketSession()
    for offer in extensions.split(b","):
        params = [part.strip().lower() for part in offer.split(b";")]
        if params and params[0] == b"permessage-deflate":
            session.deflate = True
            names = {param.split(b"=", 1)[0].strip() for param in params[1:]}
            session.client_no_context_takeover = b"client_no_context_takeover" in names
            session.server_no_context_takeover = b"server_no_context_takeover" in names
    return session


class HttpParser:
    """HTTP/1.1 messages of one direction, requests or responses (decided per message).

    An observer (``record=True``) writes what it learns into the context
    (request methods, upgrades); a toxic's parser only reads it.
    """

    def __init__(self, context: FramingContext, *, record: bool = False) -> None:
        self._context = context
        self._record = record
        self._skip = 0  # body bytes still to pass through untouched
        self._chunked: _ChunkedTracker | None = None
        self._scanned = 0
        # (head length, body length) of a message whose body is still arriving: its
        # head is read once (reading it pops a request method or records one)
        self._holding: tuple[int, int] | None = None
        self._upgrading = False  # this direction asked for a WebSocket upgrade
        self._switch: Callable[[], Parser] | None = None
        self._answered = 0  # final responses read (to find the request each one answers)

    def held_bytes(self) -> int:
        return 0

    def changed(self) -> None:
        """Nothing to adjust in this framing."""

    def parse(self, buffer: bytearray, out: list) -> Parser | None:
        """Move complete messages and passed-through bytes from ``buffer`` to ``out``.

        Returns the parser that takes the stream over after a protocol switch,
        else None; raises ``NotFraming`` when the stream is not understood.
        """
        while True:
            if self._switch is not None:
                return self._switch()
            if self._upgrading:
                if not buffer:
                    return None
                switched = self._after_upgrade_request()
                if switched is not None:
                    return switched
                continue
            if not buffer:
                return None
            if self._skip:
                self._skip = pass_through(buffer, out, self._skip)
                continue
            if self._chunked is not None:
                taken, done = self._chunked.consume(buffer)
                if taken:
                    out.append(bytes(buffer[:taken]))
                    del buffer[:taken]
                if done:
                    self._chunked = None
                    continue
                return None
            if self._holding is not None:
                head_length, length = self._holding
            else:
                head_end = buffer.find(b"\r\n\r\n", max(0, self._scanned - 3))
                if head_end < 0:
                    self._scanned = len(buffer)
                    if len(buffer) > MAX_HEAD:
                        raise NotFraming("HTTP head too large")
                    return None
                self._scanned = 0
                head_length = head_end + 4
                kind, length = self._framing(bytes(buffer[:head_length]))
                if kind != "length" or length > MAX_MESSAGE_SIZE or self._record:  # an observer holds no body
                    out.append(bytes(buffer[:head_length]))
                    del buffer[:head_length]
                    if kind == "length":
                        self._skip = length  # too large to hold back: pass it on as it comes
                    elif kind == "chunked":
                        self._chunked = _ChunkedTracker()
                    continue
            if len(buffer) < head_length + length:
                self._holding = (head_length, length)
                return None  # hold until the body is complete
            self._holding = None
            head, body = bytes(buffer[:head_length]), bytes(buffer[head_length : head_length + length])
            del buffer[: head_length + length]
            out.append(HttpFrame(head, body))

    def release_partial(self, buffer: bytearray) -> bytes:
        """A complete head and part of its body: pass them, and the rest of the body after."""
        if self._holding is None:
            return b""
        head_length, length = self._holding
        self._holding = None
        self._skip = head_length + length - len(buffer)
        held = bytes(buffer)
        buffer.clear()
        return held

    def _framing(self, head: bytes) -> tuple[str, int]:
        """("length", n) or ("chunked", 0); a protocol switch is set up here."""
        lines = head[:-4].split(b"\r\n")
        start = lines[0]
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise NotFraming("not an HTTP/1.1 header line")
            headers[name.lower()] = value.strip()
        upgrade = headers.get(b"upgrade", b"").lower()
        status = STATUS_LINE.match(start)
        if status is not None:
            return self._response_framing(int(status.group(1)), headers, upgrade)
        if REQUEST_LINE.match(start) is None:
            raise NotFraming("not an HTTP/1.1 start line")
        method = start.split(b" ", 1)[0].decode("ascii")
        if self._record:
            self._context.record_request(method)
        if upgrade == b"websocket":
            self._upgrading = True
            if self._record:
                self._context.upgrade_requested = True
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            return ("chunked", 0)
        return ("length", _content_length(headers))

    def _response_framing(self, code: int, headers: dict[bytes, bytes], upgrade: bytes) -> tuple[str, int]:
        context = self._context
        if code == 101:
            self._answered += 1
            if upgrade != b"websocket":
                self._switch = _opaque  # h2c or another protocol: not followed
                return ("length", 0)
            session = websocket_session(headers.get(b"sec-websocket-extensions", b""))
            if self._record:
                context.websocket = session
            self._switch = lambda: _websocket(session.deflate, session.server_no_context_takeover)
            return ("length", 0)
        if code < 200:
            return ("length", 0)
        method = context.method_of(self._answered)
        self._answered += 1
        if self._record and context.upgrade_requested and context.websocket is None:
            context.websocket = False  # the upgrade was answered without switching
        if method == "HEAD" or code in (204, 304):
            return ("length", 0)
        if method == "CONNECT" and code < 300:
            self._switch = _opaque
            return ("length", 0)
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            return ("chunked", 0)
        if b"content-length" in headers:
            return ("length", _content_length(headers))
        self._switch = _opaque  # a body until the connection closes: nothing more to frame
        return ("length", 0)

    def _after_upgrade_request(self):
        """The client sends again after asking for an upgrade: was it granted?"""
        self._upgrading = False
        session = self._context.websocket
        if isinstance(session, WebSocketSession):
            return _websocket(session.deflate, session.client_no_context_takeover)
        if session is False:
            return None  # refused: the stream goes on in HTTP/1.1 (parse is called again)
        raise NotFraming("upgrade asked for, its answer unknown")


def _content_length(headers: dict[bytes, bytes]) -> int:
    value = headers.get(b"content-length", b"0")
    if not value.isdigit():
        raise NotFraming("Content-Length is not a number")
    return int(value)


def _opaque() -> Parser:
    raise NotFraming("protocol switched")


def _websocket(deflate: bool, no_context_takeover: bool) -> Parser:

    return WebSocketParser(deflate=deflate, no_context_takeover=no_context_takeover)


class _ChunkedTracker:
    """Follow a chunked body to its end without holding it back."""

    def __init__(self) -> None:
        self._state = "size"
        self._remaining = 0

    def consume(self, buffer: bytearray) -> tuple[int, bool]:
        """(bytes of ``buffer`` consumed, body finished); raises ``NotFraming`` when lost."""
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
                if len(buffer) - position > MAX_HEAD:
                    raise NotFraming("chunk line too long")
                return position, False
            line = bytes(buffer[position:line_end])
            position = line_end + 2
            if self._state == "size":
                size_text = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise NotFraming("not a chunk size") from None
                if size == 0:
                    self._state = "trailers"
                else:
                    self._state, self._remaining = "data", size + 2  # data and its CRLF
            elif self._state == "trailers" and not line:
                return position, True
        return position, False
