"""What every framing shares: the message (``Frame``), the facts two directions share, the limits.

A ``Frame`` is one complete message of one framing as it came off the
stream, with what it carries (``payload``, and ``envelope`` when it is an
agenkit message) and the ways to write it differently: the frame toxics
only ever call these, so they work on every framing without knowing it.
Each writer keeps the framing valid unless breaking it is the point (the
``malformed`` kinds that cut, lie about a length or break a header).
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any, ClassVar, Protocol

__all__ = [
    "JSON_KINDS",
    "MALFORMED_KINDS",
    "MAX_MESSAGE_SIZE",
    "Frame",
    "FramingContext",
    "NotFraming",
    "WebSocketSession",
    "corrupt_json",
    "decode_envelope",
    "pass_through",
]

#: agenkit's transport.MAX_MESSAGE_SIZE (not imported: the proxy must not import agenkit).
MAX_MESSAGE_SIZE = 10 * 1024 * 1024
#: Copies of a duplicated message up to this size in all go out in one write (``Frame.copies``).
ONE_WRITE_BYTES = 64 * 1024

#: Every way ``malformed_frame`` can corrupt a message; each framing says which apply to it.
MALFORMED_KINDS = (
    "invalid_json",
    "invalid_utf8",
    "truncated",
    "oversized_length",
    "wrong_length",
    "wrong_type",
    "missing_fields",
    "broken_header",
    "invalid_protobuf",
    "wrong_compressed_flag",
    "invalid_encoding",
)
#: The kinds that rewrite an agenkit JSON envelope.
JSON_KINDS = ("invalid_json", "invalid_utf8", "wrong_type", "missing_fields")


class NotFraming(Exception):
    """The stream is not (or no longer) in the framing its parser reads: pass it untouched."""


class Parser(Protocol):
    """What FrameReader asks of each framing's parser (agenkit, HTTP/1.1, HTTP/2, WebSocket)."""

    def held_bytes(self) -> int: ...

    def changed(self) -> None: ...

    def release_partial(self, buffer: bytearray) -> bytes: ...

    def parse(self, buffer: bytearray, out: list) -> Parser | None:
        """Move messages from ``buffer`` to ``out``; the parser taking over after an upgrade, or None."""
        ...


class WebSocketSession:
    """What a WebSocket upgrade negotiated (read from the server's 101 response)."""

    __slots__ = ("client_no_context_takeover", "deflate", "server_no_context_takeover")

    def __init__(
        self,
        deflate: bool = False,
        client_no_context_takeover: bool = False,
        server_no_context_takeover: bool = False,
    ) -> None:
        self.deflate = deflate
        self.client_no_context_takeover = client_no_context_takeover
        self.server_no_context_takeover = server_no_context_takeover


class FramingContext:
    """Facts one direction of a connection learns and the other needs.

    Recorded only by the proxy's observers (one per direction, reading what
    is actually sent), read by the frame toxics' readers:

    - ``record_request`` / ``method_of``: the HTTP/1.1 requests sent
      upstream, counted, with the method of those whose response has no
      body whatever its headers say (HEAD, CONNECT); each response parser
      counts the responses it read and asks for the method of its next one;
    - ``upgrade_requested`` / ``websocket``: a WebSocket upgrade was asked
      for; what the 101 response negotiated (``False`` when it was refused);
    - ``grpc_paths``: the ``:path`` of each HTTP/2 stream the client opened
      (the most recent 1024).
    """

    __slots__ = ("_special", "grpc_paths", "requests", "upgrade_requested", "websocket")

    def __init__(self) -> None:
        self.requests = 0
        self._special: deque[tuple[int, str]] = deque(maxlen=1024)
        self.upgrade_requested = False
        self.websocket: WebSocketSession | bool | None = None
        self.grpc_paths: dict[int, str] = {}

    def record_request(self, method: str) -> None:
        if method in ("HEAD", "CONNECT"):
            self._special.append((self.requests, method))
        self.requests += 1

    def method_of(self, index: int) -> str:
        """The method of request ``index`` (counted from 0) if it was HEAD or CONNECT, else ""."""
        for number, method in self._special:
            if number == index:
                return method
        return ""


class Frame:
    """One complete message: subclasses know their framing's writer.

    ``raw`` passes the message on unchanged; ``copies`` sends it ``times``
    times; ``dropped`` is what must still be sent when the message is taken
    out (nothing for most framings); ``malformed`` returns the bytes of a
    corrupted message and whether the stream must be closed after them, or
    None when the kind does not apply to the framing.
    """

    framing: ClassVar[str] = ""
    #: The malformed kinds this framing supports, and why the others do not apply.
    KINDS: ClassVar[tuple[str, ...]] = ()
    NOT_APPLICABLE: ClassVar[dict[str, str]] = {}
    #: What ``invalid_encoding`` is in this framing: a payload that does not decode as the
    #: message it carries (broken JSON in agenkit's envelopes; over gRPC, not a protobuf).
    ENCODING_KIND: ClassVar[str] = "invalid_json"

    envelope: dict[str, Any] | None
    payload: bytes

    @property
    def raw(self) -> bytes:
        raise NotImplementedError

    def copies(self, times: int) -> list[bytes]:
        """The message ``times`` times in a row: one write up to ``ONE_WRITE_BYTES`` in all.

        One write puts the copies in the reader's same read, whatever the load
        on either machine: separate writes of a small message arrive as
        separate segments that a fast reader sees apart and a slow one
        together, and an HTTP/1.1 client that drops an idle connection with
        unread bytes behaves differently in the two cases (httpcore does).
        Larger messages go as separate writes, which the link can pause
        between.
        """
        raw = self.raw
        if len(raw) * times <= ONE_WRITE_BYTES:
            return [raw * times]
        return [raw] * times

    def dropped(self) -> bytes:
        return b""

    def malformed(self, kind: str) -> tuple[bytes, bool] | None:
        raise NotImplementedError


def pass_through(buffer: bytearray, out: list, count: int) -> int:
    """Move up to ``count`` bytes from ``buffer`` to ``out`` untouched (the rest of a message
    that is not held); return how many of them are still to come."""
    taken = min(count, len(buffer))
    if taken:
        out.append(bytes(buffer[:taken]))
        del buffer[:taken]
    return count - taken


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


def corrupt_json(body: bytes, envelope: dict[str, Any] | None, kind: str) -> bytes:
    """An agenkit JSON envelope corrupted in one of ``JSON_KINDS``."""
    if kind == "invalid_json":
        return b"[" + body[1:]  # the opening brace becomes a bracket
    if kind == "invalid_utf8":
        quote = body.find(b'"') + 1  # inside the first JSON string
        return body[:quote] + b"\xff\xfe" + body[quote:]
    changed = dict(envelope or {})
    if kind == "wrong_type":
        changed["type"] = "response" if changed.get("type") == "request" else "request"
    elif kind == "missing_fields":
        changed.pop("payload", None)
    else:  # pragma: no cover - callers pass JSON kinds only
        raise ValueError(kind)
    return json.dumps(changed).encode()
