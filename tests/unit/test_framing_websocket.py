"""WebSocket framing (ws://): frames written by the ``websockets`` package agenkit uses, read by ours,
and what ours writes read back by ``websockets`` as agenkit's peer would."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import PayloadTooBig, ProtocolError
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.streams import StreamReader

from chaosagenkit.faults.framing import MAX_MESSAGE_SIZE, Frame, FrameReader, FramingContext
from chaosagenkit.faults.framing.base import WebSocketSession
from chaosagenkit.faults.framing.websocket import WebSocketFrame, WebSocketParser, apply_mask, encode_frame

pytestmark = [pytest.mark.chaos_network]

ENVELOPE = {"version": "1.0", "type": "response", "id": "r1", "payload": {"message": {"content": "hi"}}}
BODY = json.dumps(ENVELOPE).encode()
UPGRADE_REQUEST = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1:1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: aWRArL7VxYR/X3CboCjhyw==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
)
UPGRADE_RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: T6/mP1TDAS+4Qdv+3f+ZkPRNkgo=\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12; client_max_window_bits=12\r\n\r\n"
)


def deflate(no_context_takeover: bool = False) -> PerMessageDeflate:
    return PerMessageDeflate(no_context_takeover, no_context_takeover, 15, 15)


def sent(*frames: WsFrame, mask: bool, extension: PerMessageDeflate | None = None) -> bytes:
    """What a ``websockets`` peer writes for ``frames`` (one compressor across them)."""
    extensions = [extension] if extension else None
    return b"".join(frame.serialize(mask=mask, extensions=extensions) for frame in frames)


def received(data: bytes, *, masked: bool, extension: PerMessageDeflate | None = None) -> list[WsFrame]:
    """What a ``websockets`` peer reads from ``data`` (raises what it raises)."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    extensions = [extension] if extension else None
    frames = []
    while reader.buffer:
        parser = WsFrame.parse(
            reader.read_exact, mask=masked, max_size=MAX_MESSAGE_SIZE, extensions=extensions
        )
        try:
            while True:
                next(parser)
        except StopIteration as done:
            frames.append(done.value)
        except EOFError:
            raise AssertionError("a frame ends before its announced length") from None
    return frames


def read(data: bytes, parser: WebSocketParser, piece: int = 10_000) -> list:
    items: list = []
    buffer = bytearray()
    for offset in range(0, len(data), piece):
        buffer += data[offset : offset + piece]
        parser.parse(buffer, items)
    assert not buffer
    return items


def binary(payload: bytes = BODY, *, fin: bool = True) -> WsFrame:
    return WsFrame(Opcode.BINARY, payload, fin=fin)


# (id, frames a peer sends, masked, compressed): each becomes one message with the envelope
MESSAGES = [
    ("server, plain", [binary()], False, False),
    ("client, masked", [binary()], True, False),
    ("server, compressed", [binary()], False, True),
    ("client, masked and compressed", [binary()], True, True),
    ("fragmented", [binary(BODY[:10], fin=False), WsFrame(Opcode.CONT, BODY[10:])], True, False),
]


@pytest.mark.parametrize(
    "frames,masked,compressed", [case[1:] for case in MESSAGES], ids=[case[0] for case in MESSAGES]
)
@pytest.mark.parametrize("piece", [1, 7, 10_000])
def test_messages_are_read_whatever_the_chunking(frames, masked, compressed, piece):
    data = sent(*frames, mask=masked, extension=deflate() if compressed else None)
    (message,) = read(data, WebSocketParser(deflate=compressed), piece)
    assert isinstance(message, WebSocketFrame)
    assert message.payload == BODY and message.envelope == ENVELOPE
    assert message.raw == data, "an untouched message passes byte for byte"


def test_control_frames_pass_at_once_even_between_fragments():
    ping = WsFrame(Opcode.PING, b"are you there")
    data = sent(binary(BODY[:10], fin=False), ping, WsFrame(Opcode.CONT, BODY[10:]), mask=True)
    items = read(data, WebSocketParser(), 1)
    assert [f.data for f in received(items[0], masked=True)] == [b"are you there"]
    assert isinstance(items[1], WebSocketFrame) and items[1].payload == BODY


def test_context_takeover_is_followed_across_messages():
    extension = deflate()
    data = sent(binary(BODY), binary(BODY), binary(BODY[::-1]), mask=False, extension=extension)
    messages = read(data, WebSocketParser(deflate=True))
    assert [m.payload for m in messages] == [BODY, BODY, BODY[::-1]]
    assert len(messages[1].original) < len(messages[0].original), "the second refers back to the first"


def test_once_changed_compressed_messages_go_uncompressed_and_the_receiver_stays_in_step():
    sender = deflate()
    data = sent(*(binary(BODY + bytes([48 + i])) for i in range(4)), mask=False, extension=sender)
    parser = WebSocketParser(deflate=True)
    messages = read(data, parser)
    out = messages[0].raw  # passed untouched, compressed
    parser.changed()  # a toxic drops the second message
    out += messages[2].raw + messages[3].raw
    frames = received(out, masked=False, extension=deflate())
    assert [f.data for f in frames] == [BODY + b"0", BODY + b"2", BODY + b"3"]
    assert out[0] & 0x40 and not messages[2].raw[0] & 0x40, "RSV1: compressed, then not"


def test_a_released_fragmented_message_passes_and_the_inflater_stays_in_step():
    sender = deflate()
    first = sent(binary(BODY), mask=False, extension=sender)
    fragmented = sent(
        binary(BODY[:20], fin=False), WsFrame(Opcode.CONT, BODY[20:]), mask=False, extension=sender
    )
    last = sent(binary(BODY), mask=False, extension=sender)
    parser = WebSocketParser(deflate=True)
    buffer = bytearray(first + fragmented[: len(fragmented) // 2])
    items: list = []
    parser.parse(buffer, items)
    released = parser.release_partial(buffer)
    buffer += fragmented[len(fragmented) // 2 :] + last
    parser.parse(buffer, items)
    assert items[0].payload == BODY and items[-1].payload == BODY, "still in step after the release"
    out = items[0].raw + released + b"".join(i if isinstance(i, bytes) else i.raw for i in items[1:])
    assert out == first + fragmented + last


@pytest.mark.parametrize(
    "data,why",
    [
        (encode_frame(0x3, b"x"), "reserved opcode"),
        (encode_frame(0x0, b"x"), "continuation without a message"),
        (encode_frame(0x2, b"x", fin=False) + encode_frame(0x2, b"y"), "new message inside a fragmented one"),
        (encode_frame(0x2, b"x", rsv=0x4), "RSV1 set without permessage-deflate"),
        (encode_frame(0x2, b"", declared_length=MAX_MESSAGE_SIZE + 1), "beyond agenkit's max_size"),
    ],
)
def test_what_is_not_agenkit_websocket_makes_the_reader_opaque(data, why):
    reader = FrameReader(context=_upgraded(WebSocketSession()))
    reader.feed(UPGRADE_RESPONSE.replace(b"permessage-deflate", b"x-none"))
    assert reader.mode == "websocket"
    assert b"".join(i for i in reader.feed(data) if isinstance(i, bytes)) == data, why
    assert reader.mode == "opaque"


def _upgraded(session: WebSocketSession) -> FramingContext:
    context = FramingContext()
    context.record_request("GET")
    context.upgrade_requested = True
    context.websocket = session
    return context


def test_the_upgrade_hands_both_directions_to_websocket_with_what_was_negotiated():
    observed = FramingContext()
    FrameReader(context=observed, record=True).feed(UPGRADE_REQUEST)
    downstream_observer = FrameReader(context=observed, record=True)
    downstream_observer.feed(UPGRADE_RESPONSE)
    assert downstream_observer.mode == "opaque", "an observer stops at the upgrade"
    session = observed.websocket
    assert isinstance(session, WebSocketSession) and session.deflate

    server_to_client = FrameReader(context=observed)
    items = server_to_client.feed(UPGRADE_RESPONSE + sent(binary(), mask=False, extension=deflate()))
    assert server_to_client.mode == "websocket" and items[-1].payload == BODY
    client_to_server = FrameReader(context=observed)
    assert client_to_server.feed(UPGRADE_REQUEST) != []
    items = client_to_server.feed(sent(binary(), mask=True, extension=deflate()))
    assert client_to_server.mode == "websocket" and items[0].payload == BODY


def test_a_refused_upgrade_keeps_the_client_direction_in_http():
    context = FramingContext()
    FrameReader(context=context, record=True).feed(UPGRADE_REQUEST)
    FrameReader(context=context, record=True).feed(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    assert context.websocket is False
    reader = FrameReader(context=context)
    reader.feed(UPGRADE_REQUEST)
    items = reader.feed(b"POST /process HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
    assert reader.mode == "http" and isinstance(items[-1], Frame)


def _message(masked: bool, compressed: bool) -> WebSocketFrame:
    extension = deflate() if compressed else None
    (message,) = read(sent(binary(), mask=masked, extension=extension), WebSocketParser(deflate=compressed))
    return message


def _receive_error(data: bytes, masked: bool, compressed: bool) -> Exception | list:
    try:
        return received(data, masked=masked, extension=deflate() if compressed else None)
    except Exception as e:  # what websockets raises is the expectation
        return e


# kind -> what a websockets peer reads (agenkit's decoder sees the JSON ones)
@pytest.mark.parametrize("masked", [False, True], ids=["from server", "from client"])
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "deflate"])
def test_each_malformed_kind_is_what_a_websockets_peer_reads(masked, compressed):
    message = _message(masked, compressed)
    results = {}
    for kind in WebSocketFrame.KINDS:
        data, close = message.malformed(kind)
        results[kind] = (_receive_error(data, masked, compressed), close)
    for kind in ("invalid_json", "invalid_utf8", "wrong_type", "missing_fields"):
        (frame,), close = results[kind]
        assert not close and not frame.rsv1, "corrupted messages go uncompressed"
        if kind == "invalid_json":
            with pytest.raises(ValueError):
                json.loads(frame.data)
        elif kind == "invalid_utf8":
            with pytest.raises(UnicodeDecodeError):
                frame.data.decode()
        else:
            assert json.loads(frame.data) != ENVELOPE
    error, close = results["truncated"]
    assert isinstance(error, AssertionError) and close, "the frame announces more than is sent"
    error, close = results["oversized_length"]
    assert isinstance(error, PayloadTooBig) and close
    error, _ = results["wrong_length"]  # the rest of the payload is read as the next frame
    if isinstance(error, list):
        with pytest.raises(ValueError):
            json.loads(error[0].data)
    else:
        assert isinstance(error, (ProtocolError, AssertionError))
    error, _ = results["broken_header"]
    assert isinstance(error, ProtocolError) and "reserved bits" in str(error)
    error, _ = results["wrong_compressed_flag"]
    if compressed:  # the compressed bytes are read as the message
        (frame,) = error
        assert not frame.rsv1 and frame.data != BODY
    else:
        assert isinstance(error, ProtocolError)


def test_masking_round_trips():
    key = b"\x01\x02\x03\x04"
    assert apply_mask(apply_mask(BODY, key), key) == BODY
    assert apply_mask(b"", key) == b""
