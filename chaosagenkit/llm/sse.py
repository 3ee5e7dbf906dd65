"""Server-sent events (the WHATWG "text/event-stream" format): a writer and an incremental parser.

Pure: bytes in, events out, and events in, bytes out. The endpoint writes
every streamed answer with ``encode_event`` and, in pass-through mode,
reads the upstream's stream with ``SseParser``, so a stream is always a
sequence of ``SseEvent`` whatever its source.

Rules kept (from the spec, section 9.2): lines end in LF, CRLF or CR; an
empty line dispatches the event; ``data`` lines of one event are joined
with LF; a line starting with ``:`` is a comment; ``event`` names the
event (None = the default "message"); a field without a colon has an empty
value; one leading space after the colon is dropped. An event with no data
line is not dispatched. ``id`` and ``retry`` are kept as given and
re-encoded, never interpreted (no client here reconnects).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SseEvent", "SseParser", "encode_event"]


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One event: its ``data`` (lines joined by LF), name and id."""

    data: str
    event: str | None = None
    id: str | None = None
    retry: str | None = None

    def encode(self) -> bytes:
        return encode_event(self.data, self.event, self.id, self.retry)


def encode_event(
    data: str, event: str | None = None, id: str | None = None, retry: str | None = None
) -> bytes:
    """The bytes of one event: ``event:`` and ``id:`` lines if given, one ``data:`` line per line of data."""
    lines = []
    for name, value in (("event", event), ("id", id), ("retry", retry)):
        if value is not None:
            if "\n" in value or "\r" in value:
                raise ValueError(f"an SSE {name} cannot contain a line break: {value!r}")
            lines.append(f"{name}: {value}")
    lines.extend(f"data: {line}" for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


class SseParser:
    """Feed bytes as they arrive; get complete events back."""

    def __init__(self) -> None:
        self._buffer = ""
        self._pending_cr = False
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._retry: str | None = None
        self._decoder_tail = b""

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Parse ``chunk`` (any split, even inside a UTF-8 sequence); return the events it completed."""
        raw = self._decoder_tail + chunk
        text, self._decoder_tail = _decode_prefix(raw)
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]  # the LF of a CRLF split across chunks
        self._pending_cr = text.endswith("\r")
        self._buffer += text
        events = []
        lines = self._buffer.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._buffer = lines.pop()  # an incomplete last line waits for more bytes
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[SseEvent]:
        """End of input: an event not closed by an empty line is discarded, as the spec says."""
        self._buffer = ""
        self._data, self._event, self._id, self._retry = [], None, None, None
        return []

    def _line(self, line: str) -> SseEvent | None:
        if line == "":
            if not self._data:
                self._event = None
                return None
            event = SseEvent("\n".join(self._data), self._event, self._id, self._retry)
            self._data, self._event, self._retry = [], None, None
            return event
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        elif name == "retry":
            self._retry = value
        return None


def _decode_prefix(raw: bytes) -> tuple[str, bytes]:
    """Decode the longest valid UTF-8 prefix; keep an incomplete trailing sequence for later."""
    try:
        return raw.decode(), b""
    except UnicodeDecodeError as e:
        if e.start >= len(raw) - 3 and e.reason == "unexpected end of data":
            return raw[: e.start].decode(), raw[e.start :]
        return raw.decode(errors="replace"), b""
