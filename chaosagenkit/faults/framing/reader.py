"""``FrameReader``: one direction of a stream, split into messages of whichever framing it carries.

It is fed bytes in whatever pieces the network delivers and returns, in
stream order, complete ``Frame`` objects and plain ``bytes`` (traffic it
does not understand or will not hold back: it must pass untouched). It
holds at most one incomplete message. The framing is detected from the
first bytes unless fixed:

- ``\\x00``: an agenkit length prefix (tcp://, unix://) when a ``{``
  follows it, or the SETTINGS frame an HTTP/2 server starts with (grpc://);
- ``PRI * HTTP/2.0``: the HTTP/2 client preface (grpc://);
- an HTTP/1.1 request or status line (http://, h2c://, and ws:// until its
  upgrade, after which the WebSocket parser takes over);
- anything else (TLS, garbage, text) makes the reader opaque for good.

Detection decides within a bounded number of bytes: each byte is checked
against what one of these may begin with, so ``HELLO world\\n`` is opaque
at its line feed and binary at the first byte that cannot start a frame;
an HTTP start line longer than ``MAX_START_LINE`` is not one. Its user
bounds the time as well (the frame toxics give up after
``DETECT_WINDOW_S`` with ``give_up``), so bytes that might still begin a
frame are never held for long.
"""

from __future__ import annotations

import logging
import re

from chaosagenkit.faults.framing.agenkit import AgenkitParser
from chaosagenkit.faults.framing.base import MAX_MESSAGE_SIZE, Frame, FramingContext, NotFraming, Parser
from chaosagenkit.faults.framing.http1 import REQUEST_LINE, STATUS_LINE, HttpParser
from chaosagenkit.faults.framing.http2 import PREFACE, SETTINGS, Http2Parser

__all__ = ["DETECT_WINDOW_S", "MAX_START_LINE", "PROTOCOLS", "FrameReader"]

logger = logging.getLogger(__name__)

#: ``protocol`` values: detect, or fix the framing (websocket starts as HTTP/1.1, its upgrade).
PROTOCOLS = ("auto", "agenkit", "http", "websocket", "grpc")
#: Longest HTTP/1.1 start line detection waits for (then the stream is not HTTP).
MAX_START_LINE = 8 * 1024
#: How long a frame toxic waits for bytes that might still begin a frame.
DETECT_WINDOW_S = 0.2

# what the first bytes of a start line may be before its CRLF has arrived
_VERSION_PREFIX = rb"(?:H|HT|HTT|HTTP|HTTP/|HTTP/1|HTTP/1\.|HTTP/1\.[01]\r?)"
_START_LINE_PREFIX = re.compile(
    rb"[A-Z]{0,10}|[A-Z]{3,10} \S*|[A-Z]{3,10} \S+ " + _VERSION_PREFIX + rb"?"
    rb"|" + _VERSION_PREFIX + rb"|HTTP/1\.[01] (?:\d{0,3}|\d{3}\r|\d{3} [^\r\n]*\r?)"
)


class FrameReader:
    """Split one direction of a stream into ``Frame`` objects and bytes to pass on untouched.

    ``context`` holds what the two directions of the connection share; an
    observer (``record=True``) writes into it what it reads (the proxy
    runs one per direction, on what is actually sent).
    """

    def __init__(
        self,
        protocol: str = "auto",
        *,
        context: FramingContext | None = None,
        record: bool = False,
    ) -> None:
        self.context = context if context is not None else FramingContext()
        self._record = record
        self._buffer = bytearray()
        self._parser: Parser | None = None
        self._mode = "detect"
        if protocol == "agenkit":
            self._start("agenkit")
        elif protocol in ("http", "websocket"):
            self._start("http")
        # a fixed grpc reader learns from the first byte which side it reads (preface or not)
        self._fixed_grpc = protocol == "grpc"

    @property
    def mode(self) -> str:
        """detect, agenkit, http, websocket, http2 or opaque."""
        return self._mode

    @property
    def buffered(self) -> int:
        """Bytes held: the start of a message, or bytes detection has not decided on yet."""
        held = self._parser.held_bytes() if self._parser is not None else 0
        return len(self._buffer) + held

    def feed(self, data: bytes) -> list[Frame | bytes]:
        if self._mode == "opaque":
            return [data] if data else []
        buffer = self._buffer
        buffer += data
        out: list[Frame | bytes] = []
        if self._mode == "detect":
            if self._fixed_grpc:
                self._start("http2-client" if buffer[:1] == b"P" else "http2-server")
            else:
                self._detect()
            if self._mode == "detect":
                return out
        try:
            while self._parser is not None:
                switched = self._parser.parse(buffer, out)
                if switched is None:
                    break
                if self._record:
                    raise NotFraming("an observer has nothing to learn after an upgrade")
                self._parser, self._mode = switched, "websocket"
        except NotFraming:
            self._go_opaque(out)
        except Exception:  # a parser bug must not break the traffic it reads: say so, step aside
            logger.exception(
                "framing: the %s parser failed; the rest of this stream passes untouched", self._mode
            )
            self._go_opaque(out)
        if self._mode == "opaque" and buffer:
            out.append(bytes(buffer))
            buffer.clear()
        return out

    def give_up(self) -> bytes:
        """Stop detecting (too long without deciding): the bytes held, to pass on; opaque."""
        if self._mode != "detect":
            return b""
        return self.flush()

    def release_partial(self) -> bytes:
        """Let go of an incomplete message: its bytes so far, to pass on unchanged.

        The rest of that message will pass untouched too, then framing goes
        on (the stream stays in step). A start too short to say how long its
        message is (a length prefix, an HTTP head, a frame header, bytes
        detection has not decided on: all small) is kept.
        """
        if self._parser is None:
            return b""
        try:
            return self._parser.release_partial(self._buffer)
        except NotFraming:
            return self.flush()

    def changed(self) -> None:
        """A toxic chose a message: the framing adjusts what it passes from now on."""
        if self._parser is not None:
            self._parser.changed()

    def flush(self) -> bytes:
        """Give up everything held (an incomplete message) and go opaque."""
        held = self._take_held()
        held += self._buffer
        self._buffer.clear()
        self._mode, self._parser = "opaque", None
        return bytes(held)

    # -- detection -------------------------------------------------------------------
    def _detect(self) -> None:
        buffer = self._buffer
        first = buffer[:1]
        if first == b"\x00":
            self._detect_binary()
        elif b"A" <= first <= b"Z":
            if PREFACE.startswith(bytes(buffer[: len(PREFACE)])):
                if len(buffer) >= len(PREFACE):
                    self._start("http2-client")
                return
            line_end = buffer.find(b"\r\n", 0, MAX_START_LINE + 2)
            if line_end >= 0:
                line = bytes(buffer[:line_end])
                if REQUEST_LINE.match(line) or STATUS_LINE.match(line):
                    self._start("http")
                else:
                    self._mode = "opaque"
            elif len(buffer) > MAX_START_LINE or not _START_LINE_PREFIX.fullmatch(buffer):
                self._mode = "opaque"
        elif first:
            self._mode = "opaque"

    def _detect_binary(self) -> None:
        """A length prefix then ``{`` (agenkit), or an HTTP/2 SETTINGS frame on stream 0."""
        buffer = self._buffer
        if len(buffer) < 5:
            if len(buffer) == 4 and not 0 < int.from_bytes(buffer[:4], "big") <= MAX_MESSAGE_SIZE:
                self._mode = "opaque"
            return
        if buffer[4:5] == b"{":
            ok = 0 < int.from_bytes(buffer[:4], "big") <= MAX_MESSAGE_SIZE
            if ok:
                self._start("agenkit")
            else:
                self._mode = "opaque"
            return
        if buffer[3] != SETTINGS or buffer[4] not in (0, 1):
            self._mode = "opaque"
            return
        if len(buffer) < 9:
            return
        if int.from_bytes(buffer[5:9], "big") != 0 or int.from_bytes(buffer[:3], "big") % 6:
            self._mode = "opaque"
            return
        self._start("http2-server")

    def _start(self, framing: str) -> None:
        if framing == "agenkit":
            if self._record:  # nothing for an observer to learn there
                self._mode = "opaque"
                return
            self._parser, self._mode = AgenkitParser(), "agenkit"
        elif framing == "http":
            self._parser, self._mode = HttpParser(self.context, record=self._record), "http"
        else:
            client = framing == "http2-client"
            self._parser = Http2Parser(self.context, client=client, record=self._record)
            self._mode = "http2"

    def _go_opaque(self, out: list) -> None:
        held = self._take_held()
        if held:
            out.append(held)
        self._mode, self._parser = "opaque", None

    def _take_held(self) -> bytes:
        take = getattr(self._parser, "take_held", None)
        return take() if take is not None else b""
