"""HTTP/2 and gRPC framing (grpc://): streams written by the ``h2`` package, read by ours, and what
ours writes read back by ``h2`` as the peer would (header blocks untouched, HPACK in step)."""

from __future__ import annotations

import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import DataReceived, StreamEnded
from h2.exceptions import ProtocolError

from chaosagenkit.faults.framing import MAX_MESSAGE_SIZE, FrameReader, FramingContext
from chaosagenkit.faults.framing.http2 import INVALID_PROTOBUF, GrpcFrame, encode_message

pytestmark = [pytest.mark.chaos_network]

PATH = "/agenkit.AgentService/Process"
PROTOBUF = b"\n\x031.0\x12$6f5e3c1a-0000\x1a\x05hello" * 3  # protobuf-shaped bytes
MESSAGE = encode_message(PROTOBUF, compressed=True)


def request_headers(path: str = PATH, content_type: str = "application/grpc") -> list[tuple[str, str]]:
    return [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "127.0.0.1:1"),
        ("content-type", content_type),
        ("te", "trailers"),
        ("grpc-encoding", "gzip"),
    ]


class Pair:
    """An h2 client and server; ``client_bytes`` / ``server_bytes`` collect what each wrote."""

    def __init__(self) -> None:
        self.client = H2Connection(H2Configuration(client_side=True))
        self.server = H2Connection(H2Configuration(client_side=False))
        self.client.initiate_connection()
        self.client_bytes = self.client.data_to_send()
        self.server.receive_data(self.client_bytes)
        self.server_bytes = self.server.data_to_send()
        self.client.receive_data(self.server_bytes)
        self.client_bytes += self.client.data_to_send()

    def call(self, stream_id: int, messages: list[bytes], path: str = PATH, **options) -> bytes:
        self.client.send_headers(stream_id, request_headers(path, **options))
        for index, message in enumerate(messages):
            self.client.send_data(stream_id, message, end_stream=index == len(messages) - 1)
        return self._flush_client()

    def answer(self, stream_id: int, messages: list[bytes]) -> bytes:
        self.server.send_headers(stream_id, [(":status", "200"), ("content-type", "application/grpc")])
        for message in messages:
            self.server.send_data(stream_id, message)
        self.server.send_headers(stream_id, [("grpc-status", "0")], end_stream=True)
        data = self.server.data_to_send()
        self.server_bytes += data
        self.client.receive_data(data)
        return data

    def _flush_client(self) -> bytes:
        data = self.client.data_to_send()
        self.client_bytes += data
        self.server.receive_data(data)
        self.server_bytes += self.server.data_to_send()
        return data


def items_of(stream: bytes, piece: int = 10_000, **options) -> tuple[FrameReader, list]:
    reader = FrameReader(**options)
    items = []
    for offset in range(0, len(stream), piece):
        items.extend(reader.feed(stream[offset : offset + piece]))
    return reader, items


def as_sent(items: list) -> bytes:
    return b"".join(item.raw if isinstance(item, GrpcFrame) else item for item in items)


def frames(items: list) -> list[GrpcFrame]:
    return [item for item in items if isinstance(item, GrpcFrame)]


@pytest.mark.parametrize("piece", [1, 9, 100, 10_000])
def test_a_call_is_read_from_both_sides_whatever_the_chunking(piece):
    pair = Pair()
    pair.call(1, [MESSAGE])
    pair.answer(1, [encode_message(b"\n\x031.0")])
    context = FramingContext()
    items_of(pair.client_bytes, record=True, context=context)  # the observer of the client side
    assert context.grpc_paths == {1: PATH}
    client, requests = items_of(pair.client_bytes, piece, context=context)
    server, responses = items_of(pair.server_bytes, piece, context=context)
    assert client.mode == server.mode == "http2"
    (request,) = frames(requests)
    assert request.envelope == {"type": "request", "framing": "grpc", "path": PATH}
    assert request.payload == PROTOBUF and request.compressed
    (response,) = frames(responses)
    assert response.envelope["type"] == "response" and response.envelope["path"] == PATH
    assert as_sent(requests) == pair.client_bytes and as_sent(responses) == pair.server_bytes


def test_hpack_state_is_followed_across_calls():
    pair = Pair()
    pair.call(1, [MESSAGE])
    pair.call(3, [MESSAGE], path="/other.Service/Method")
    pair.call(5, [MESSAGE])  # its headers refer to the dynamic table filled by the first calls
    _, items = items_of(pair.client_bytes)
    assert [f.envelope and f.envelope["path"] for f in frames(items)] == [PATH, None, PATH]


def test_a_message_over_several_data_frames_is_held_until_complete():
    pair = Pair()
    pair.client.send_headers(1, request_headers())
    pair.client.send_data(1, MESSAGE[:10])
    pair.client.send_headers(3, request_headers(), end_stream=True)  # another call in between
    pair.client.send_data(1, MESSAGE[10:], end_stream=True)
    pair._flush_client()
    _, items = items_of(pair.client_bytes)
    (message,) = frames(items)
    assert message.payload == PROTOBUF
    assert as_sent(items) == pair.client_bytes


def test_messages_that_share_a_data_frame_pass_and_the_stream_stays_in_step():
    pair = Pair()
    second = encode_message(b"second")
    pair.client.send_headers(1, request_headers())
    pair.client.send_data(1, MESSAGE + second[:3])  # one and a bit: not faulted
    pair.client.send_data(1, second[3:])
    pair.client.send_data(1, encode_message(b"third"), end_stream=True)  # on a boundary again
    pair._flush_client()
    _, items = items_of(pair.client_bytes)
    assert [f.payload for f in frames(items)] == [b"third"]
    assert as_sent(items) == pair.client_bytes


@pytest.mark.parametrize(
    "options,expected",
    [
        ({"content_type": "application/json"}, 0),  # not gRPC: its DATA passes
        ({"path": "/grpc.health.v1.Health/Check"}, 1),  # gRPC, not agenkit's: a frame without envelope
    ],
)
def test_other_http2_traffic_is_not_agenkits(options, expected):
    pair = Pair()
    pair.call(1, [MESSAGE], **options)
    _, items = items_of(pair.client_bytes)
    assert [f.envelope for f in frames(items)] == [None] * expected
    assert as_sent(items) == pair.client_bytes


def received(pair_before: bytes, rewritten: bytes):
    """Events of an h2 server that got the untouched start of the connection, then ``rewritten``."""
    server = H2Connection(H2Configuration(client_side=False))
    server.receive_data(pair_before)
    return server.receive_data(rewritten)


def _one_call() -> tuple[bytes, GrpcFrame, bytes]:
    pair = Pair()
    start = pair.client_bytes
    pair.call(1, [MESSAGE])
    _, items = items_of(pair.client_bytes)
    (message,) = frames(items)
    before = as_sent(items[: items.index(message)])
    assert before.startswith(start)
    return before, message, as_sent(items[items.index(message) + 1 :])


def data_of(events) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, DataReceived))


def test_rewritten_messages_keep_http2_valid_and_the_stream_ends():
    before, message, _ = _one_call()
    events = received(before, message.dropped())
    assert data_of(events) == b"" and any(isinstance(e, StreamEnded) for e in events)
    events = received(before, message.copies(3)[0])
    assert data_of(events) == MESSAGE * 3 and any(isinstance(e, StreamEnded) for e in events)
    assert message.copies(1) == [message.raw]


# kind -> the gRPC message an h2 peer receives (None: the connection is broken)
MALFORMED = [
    ("truncated", b"\x01" + len(PROTOBUF).to_bytes(4, "big") + PROTOBUF[: len(PROTOBUF) // 2]),
    ("oversized_length", b"\x01" + (MAX_MESSAGE_SIZE + 1).to_bytes(4, "big") + PROTOBUF),
    ("wrong_length", b"\x01" + (len(PROTOBUF) // 2).to_bytes(4, "big") + PROTOBUF),
    ("invalid_protobuf", b"\x00" + len(INVALID_PROTOBUF).to_bytes(4, "big") + INVALID_PROTOBUF),
    ("wrong_compressed_flag", b"\x00" + MESSAGE[1:]),
    ("broken_header", None),
]


@pytest.mark.parametrize("kind,expected", MALFORMED, ids=[k for k, _ in MALFORMED])
def test_each_malformed_kind_is_what_an_h2_peer_receives(kind, expected):
    before, message, _ = _one_call()
    data, close = message.malformed(kind)
    assert not close, "HTTP/2 framing stays valid: the connection is not cut"
    if expected is None:
        with pytest.raises(ProtocolError):
            received(before, data)
        return
    events = received(before, data)
    assert data_of(events) == expected
    assert any(isinstance(e, StreamEnded) for e in events)


def test_json_kinds_do_not_apply_to_grpc():
    _, message, _ = _one_call()
    for kind in ("invalid_json", "invalid_utf8", "wrong_type", "missing_fields"):
        assert message.malformed(kind) is None and kind in GrpcFrame.NOT_APPLICABLE


def test_a_held_message_is_released_untouched_and_the_stream_stays_in_step():
    pair = Pair()
    pair.client.send_headers(1, request_headers())
    pair.client.send_data(1, MESSAGE[:10])
    pair._flush_client()
    reader, items = items_of(pair.client_bytes)
    assert reader.buffered > 0
    released = reader.release_partial()
    pair.client.send_data(1, MESSAGE[10:])
    pair.client.send_data(1, MESSAGE, end_stream=True)
    rest = pair._flush_client()
    later = reader.feed(rest)
    assert [f.payload for f in frames(later)] == [PROTOBUF], "the next message is faultable again"
    assert as_sent(items) + released + as_sent(later) == pair.client_bytes


def test_a_fixed_grpc_reader_reads_either_side():
    pair = Pair()
    pair.call(1, [MESSAGE])
    pair.answer(1, [MESSAGE])
    for stream in (pair.client_bytes, pair.server_bytes):
        reader, items = items_of(stream, protocol="grpc")
        assert reader.mode == "http2" and len(frames(items)) == 1


def test_what_is_not_http2_after_the_preface_passes_untouched():
    stream = (
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x04\x09\x00\x00\x00\x00\x01abcd"
    )  # lone CONTINUATION
    reader, items = items_of(stream)
    assert as_sent(items) == stream and reader.mode == "opaque"


def test_invalid_encoding_is_invalid_protobuf_over_grpc():
    from chaosagenkit.faults.toxics import build_toxic
    from chaosagenkit.faults.toxics.malformed_frame import MalformedFrameConfig

    assert GrpcFrame.ENCODING_KIND == "invalid_protobuf"
    build_toxic("malformed_frame", {"kind": "invalid_encoding", "protocol": "grpc"})  # applies: no refusal
    MalformedFrameConfig(kind="invalid_encoding", protocol="agenkit").validate()
    _, message, _ = _one_call()
    assert message.malformed(GrpcFrame.ENCODING_KIND) == message.malformed("invalid_protobuf")
