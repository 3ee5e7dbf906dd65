"""The SSE writer and parser (WHATWG event-stream), table-driven. No sockets."""

from __future__ import annotations

import pytest

from chaosagenkit.llm.sse import SseEvent, SseParser, encode_event

pytestmark = [pytest.mark.chaos]

WRITES = [
    # (event, bytes)
    (SseEvent("{}"), b"data: {}\n\n"),
    (SseEvent("[DONE]"), b"data: [DONE]\n\n"),
    (SseEvent('{"a":1}', "message_stop"), b'event: message_stop\ndata: {"a":1}\n\n'),
    (SseEvent("line1\nline2"), b"data: line1\ndata: line2\n\n"),
    (SseEvent("a\r\nb\rc"), b"data: a\ndata: b\ndata: c\n\n"),
    (SseEvent(""), b"data: \n\n"),
    (SseEvent("x", "e", "7", "100"), b"event: e\nid: 7\nretry: 100\ndata: x\n\n"),
    (SseEvent("héllo"), "data: héllo\n\n".encode()),
]


@pytest.mark.parametrize("event,expected", WRITES)
def test_writer(event, expected):
    assert event.encode() == expected


@pytest.mark.parametrize("event,_", WRITES)
def test_what_is_written_parses_back(event, _):
    parsed = SseParser().feed(event.encode())
    normalised = event.data.replace("\r\n", "\n").replace("\r", "\n")
    assert parsed == [SseEvent(normalised, event.event, event.id, event.retry)]


def test_a_name_with_a_line_break_is_refused():
    with pytest.raises(ValueError):
        encode_event("x", event="a\nb")


READS = [
    # (chunks, events)
    ([b"data: 1\n\n"], [SseEvent("1")]),
    ([b"data: 1\r\n\r\n"], [SseEvent("1")]),
    ([b"data: 1\r\r"], [SseEvent("1")]),
    ([b"data: 1\r", b"\n\r\n"], [SseEvent("1")]),
    ([b"da", b"ta: 1", b"\n", b"\n"], [SseEvent("1")]),
    ([b": comment\ndata: x\n\n"], [SseEvent("x")]),
    ([b"data:nospace\n\n"], [SseEvent("nospace")]),
    ([b"data:  two\n\n"], [SseEvent(" two")]),
    ([b"data\n\n"], [SseEvent("")]),
    ([b"event: ping\n\n"], []),  # no data: not dispatched
    ([b"event: a\ndata: 1\n\ndata: 2\n\n"], [SseEvent("1", "a"), SseEvent("2")]),
    ([b"data: a\ndata: b\n\n"], [SseEvent("a\nb")]),
    ([b"data: unterminated"], []),
    (["data: é\n\n".encode()[:7], "data: é\n\n".encode()[7:]], [SseEvent("é")]),
    ([b"unknown: x\ndata: y\n\n"], [SseEvent("y")]),
]


@pytest.mark.parametrize("chunks,expected", READS)
def test_parser(chunks, expected):
    parser = SseParser()
    events = []
    for chunk in chunks:
        events += parser.feed(chunk)
    events += parser.close()
    assert events == expected


def test_byte_by_byte_gives_the_same_events():
    stream = b"event: a\r\ndata: 1\r\n\r\n: c\ndata: \xc3\xa9\n\n"
    whole = SseParser().feed(stream)
    parser = SseParser()
    split = [e for i in range(len(stream)) for e in parser.feed(stream[i : i + 1])]
    assert split == whole == [SseEvent("1", "a"), SseEvent("é")]
