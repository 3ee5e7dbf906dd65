"""FrameReader: agenkit tcp framing and HTTP/1.1 split into frames, whatever the chunking."""

from __future__ import annotations

import pytest

from chaosagenkit.faults.framing import MAX_MESSAGE_SIZE, MAX_START_LINE, Frame, FrameReader, FramingContext
from chaosagenkit.faults.framing.agenkit import encode_frame
from tests.unit.network.frames import (
    HEAD_HEALTH,
    HEAD_RESPONSE,
    chunked_response,
    http_request,
    http_response,
    request_envelope,
    response_envelope,
    tcp_frame,
)

pytestmark = [pytest.mark.chaos_network]


def answering(*methods: str) -> FramingContext:
    """A context in which the other direction recorded requests with these methods."""
    context = FramingContext()
    for method in methods:
        context.record_request(method)
    return context


def read_all(reader: FrameReader, stream: bytes, piece: int) -> list:
    items = []
    for offset in range(0, len(stream), piece):
        items.extend(reader.feed(stream[offset : offset + piece]))
    return items


def summary(items: list) -> list:
    """Frames as (protocol, envelope type or None, raw); passed bytes merged."""
    out = []
    for item in items:
        if isinstance(item, Frame):
            out.append((item.framing, (item.envelope or {}).get("type"), item.raw))
        elif out and isinstance(out[-1], bytes):
            out[-1] += item
        else:
            out.append(item)
    return out


TCP_STREAM = tcp_frame(request_envelope("a")) + tcp_frame(request_envelope("b" * 3000))


@pytest.mark.parametrize("piece", [1, 3, 4, 5, 64, 10_000])
def test_agenkit_frames_come_out_whole_whatever_the_chunking(piece):
    items = summary(read_all(FrameReader(), TCP_STREAM, piece))
    first = tcp_frame(request_envelope("a"))
    assert [(p, t) for p, t, _ in items] == [("agenkit", "request"), ("agenkit", "request")]
    assert b"".join(raw for _, _, raw in items) == TCP_STREAM
    assert len(items[0][2]) == len(first)


@pytest.mark.parametrize("piece", [1, 7, 100, 10_000])
def test_http_responses_are_framed_and_head_responses_have_no_body(piece):
    stream = HEAD_RESPONSE + http_response(response_envelope("x"))
    items = summary(read_all(FrameReader(context=answering("HEAD", "POST")), stream, piece))
    assert [(p, t) for p, t, _ in items] == [("http", None), ("http", "response")]
    assert items[0][2] == HEAD_RESPONSE
    assert b"".join(raw for _, _, raw in items) == stream


def test_an_observer_records_requests_for_the_other_direction_and_a_toxic_reader_does_not():
    observed, read = FramingContext(), FramingContext()
    stream = HEAD_HEALTH + http_request(request_envelope())
    observer = FrameReader(context=observed, record=True)
    assert b"".join(observer.feed(stream)) == stream, "an observer holds and assembles nothing"
    items = FrameReader(context=read).feed(stream)
    assert observed.requests == 2 and observed.method_of(0) == "HEAD" and observed.method_of(1) == ""
    assert read.requests == 0
    assert [isinstance(i, Frame) for i in items] == [True, True]
    assert items[1].envelope["type"] == "request"
    frame = tcp_frame(request_envelope())
    tcp_observer = FrameReader(record=True)
    assert tcp_observer.feed(frame[:10]) == [frame[:10]] and tcp_observer.mode == "opaque"


def test_chunked_bodies_pass_as_they_come_and_the_parser_stays_in_step():
    reader = FrameReader(context=answering("POST", "POST"))
    stream = chunked_response([b"data: {}\n\n", b"data: end\n\n"]) + http_response(response_envelope())
    first = reader.feed(stream[:60])
    assert all(isinstance(item, bytes) for item in first), "a streaming body is not held back"
    rest = reader.feed(stream[60:])
    frames = [item for item in rest if isinstance(item, Frame)]
    assert len(frames) == 1 and frames[0].envelope["type"] == "response"
    assert b"".join(i.raw if isinstance(i, Frame) else i for i in first + rest) == stream


@pytest.mark.parametrize(
    "stream",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS client hello
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"\x00\x00\x00\x05hello",  # length-prefixed, but not JSON
        (MAX_MESSAGE_SIZE + 1).to_bytes(4, "big") + b"{}",
    ],
)
def test_traffic_that_is_not_understood_passes_at_once(stream):
    reader = FrameReader()
    items = reader.feed(stream)
    assert b"".join(items) == stream
    assert reader.mode == "opaque"
    assert reader.feed(b"more") == [b"more"]


def test_an_oversized_prefix_in_mid_stream_stops_parsing_without_losing_bytes():
    reader = FrameReader(protocol="agenkit")
    bad = (MAX_MESSAGE_SIZE + 1).to_bytes(4, "big") + b'{"type": "x"}'
    items = reader.feed(tcp_frame(response_envelope()) + bad)
    assert isinstance(items[0], Frame) and items[1] == bad


def test_non_envelope_bodies_are_frames_without_an_envelope():
    reader = FrameReader(context=answering("GET"))
    (frame,) = reader.feed(http_response(body=b'{"status": "healthy"}'))
    assert frame.envelope is None


def test_flush_returns_an_incomplete_frame_and_goes_opaque():
    reader = FrameReader()
    frame = tcp_frame(response_envelope())
    assert reader.feed(frame[:10]) == []
    assert reader.flush() == frame[:10]
    assert reader.feed(frame[10:]) == [frame[10:]]


def test_rewriting_fixes_the_length_for_both_protocols():
    reader = FrameReader(context=answering("POST"))
    (http,) = reader.feed(http_response(response_envelope()))
    rewritten = http.with_body(b'{"a": 1}')
    assert b"Content-Length: 8\r\n" in rewritten and rewritten.endswith(b'\r\n\r\n{"a": 1}')
    assert encode_frame(b"xyz") == b"\x00\x00\x00\x03xyz"
    assert encode_frame(b"xyz", declared_length=99)[:4] == (99).to_bytes(4, "big")


# Bytes that are no frame: the reader must say so by the byte that rules a frame out,
# however the stream is cut (fed here one byte at a time, the worst case).
NOT_FRAMES = [
    ("upper-case text", b"HELLO world\n"),
    ("lower-case text", b"hello world\n"),
    ("a short upper-case line", b"OK\n"),
    ("a request line ended by a bare line feed", b"GET / HTTP/1.1\n"),
    ("a method longer than ten letters", b"ABCDEFGHIJK / HTTP/1.1\r\n"),
    ("a method of two letters", b"GO / HTTP/1.1\r\n"),
    ("a request with a space in its target", b"GET /a b HTTP/1.1\r\n"),
    ("a status line of HTTP/2", b"HTTP/2.0 200 OK\r\n"),
    ("a status code of two digits", b"HTTP/1.1 20 OK\r\n"),
    ("binary", bytes(range(1, 256))),
    ("a null byte then text", b"\x00hello"),
    ("a length prefix of 16 MiB or more", b"\x01\x00\x00\x00{}"),
    ("a length prefix beyond agenkit's limit", (MAX_MESSAGE_SIZE + 1).to_bytes(4, "big") + b"{}"),
    ("a zero length", b"\x00\x00\x00\x00{}"),
    ("a length prefix not followed by JSON", b"\x00\x00\x00\x05hello"),
    ("a TLS client hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
]


@pytest.mark.parametrize("stream", [s for _, s in NOT_FRAMES], ids=[w for w, _ in NOT_FRAMES])
def test_bytes_that_are_no_frame_pass_by_the_byte_that_rules_a_frame_out(stream):
    reader = FrameReader()
    out = []
    for index in range(len(stream)):
        out.extend(reader.feed(stream[index : index + 1]))
    assert reader.mode == "opaque"
    assert b"".join(out) == stream, "nothing is held once the stream is known not to be framed"


@pytest.mark.parametrize(
    "stream,mode",
    [
        (tcp_frame(request_envelope()), "agenkit"),
        (http_request(request_envelope()), "http"),
        (http_response(response_envelope()), "http"),
        (HEAD_HEALTH, "http"),
    ],
)
def test_every_framing_is_recognised_when_fed_one_byte_at_a_time(stream, mode):
    reader = FrameReader(context=answering("POST"))
    items = read_all(reader, stream, 1)
    assert reader.mode == mode
    assert [isinstance(item, Frame) for item in items] == [True]


def test_a_start_line_longer_than_the_limit_is_not_http():
    reader = FrameReader()
    stream = b"GET /" + b"a" * MAX_START_LINE
    assert b"".join(read_all(reader, stream, 1000)) == stream
    assert reader.mode == "opaque"


@pytest.mark.parametrize("start", [b"\x00", b"\x00\x00\x01", b"GET /index", b"HTTP/1.1 200 OK", b"POST"])
def test_what_may_still_begin_a_frame_waits_and_give_up_hands_it_back(start):
    reader = FrameReader()
    assert reader.feed(start) == []
    assert reader.mode == "detect" and reader.buffered == len(start)
    assert reader.give_up() == start
    assert reader.mode == "opaque" and reader.feed(b"rest") == [b"rest"]


@pytest.mark.parametrize("cut", [5, 10, 100])
def test_a_released_agenkit_frame_passes_untouched_and_framing_goes_on(cut):
    first, second = tcp_frame(request_envelope("a" * 500)), tcp_frame(request_envelope("b"))
    reader = FrameReader()
    assert reader.feed(first[:cut]) == []
    assert reader.release_partial() == first[:cut]
    items = reader.feed(first[cut:] + second)
    assert items[0] == first[cut:], "the rest of the released frame passes as bytes"
    assert isinstance(items[1], Frame) and items[1].raw == second


@pytest.mark.parametrize("protocol", ["agenkit", "auto"])
def test_a_start_too_short_to_say_its_length_is_kept(protocol):
    reader = FrameReader(protocol=protocol)
    assert reader.feed(b"\x00\x00") == []
    assert reader.release_partial() == b""
    assert reader.buffered == 2


def test_a_released_http_message_passes_untouched_and_framing_goes_on():
    first, second = http_response(response_envelope("a" * 500)), http_response(response_envelope("b"))
    reader = FrameReader(context=answering("POST", "POST"))
    head_end = first.index(b"\r\n\r\n") + 4
    assert reader.feed(first[:head_end]) == [] and reader.feed(first[head_end : head_end + 10]) == []
    assert reader.release_partial() == first[: head_end + 10]
    items = reader.feed(first[head_end + 10 :] + second)
    assert items[0] == first[head_end + 10 :]
    assert isinstance(items[1], Frame) and items[1].envelope["type"] == "response"


def test_an_http_head_is_read_once_however_its_body_arrives():
    # each read of a head counts a response: reading it again per piece of the body
    # would misalign the responses to HEAD requests that follow
    reader = FrameReader(context=answering("POST", "HEAD"))
    stream = http_response(response_envelope("x" * 300)) + HEAD_RESPONSE + http_response(response_envelope())
    items = summary(read_all(reader, stream, 50))
    assert [t for _, t, _ in items] == ["response", None, "response"]


def test_a_parser_that_fails_steps_aside_and_the_bytes_pass(caplog):
    reader = FrameReader()
    reader.feed(b"\x00\x00\x00\x10{")
    assert reader.mode == "agenkit"
    reader._parser.parse = lambda buffer, out: 1 / 0  # a bug, simulated: no input provokes one
    assert b"".join(reader.feed(b"rest")) == b"\x00\x00\x00\x10{rest"
    assert reader.mode == "opaque" and "parser failed" in caplog.text
