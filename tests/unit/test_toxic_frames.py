"""Frame-aware toxics over agenkit tcp framing and HTTP/1.1, checked with agenkit's own codec."""

from __future__ import annotations

import json
from collections import deque

import pytest
from agenkit.adapters.python.codec import decode_bytes
from agenkit.adapters.python.errors import InvalidMessageError, MalformedPayloadError

from chaosagenkit.faults.framing import DETECT_WINDOW_S, MAX_MESSAGE_SIZE
from chaosagenkit.faults.framing.base import ONE_WRITE_BYTES
from chaosagenkit.faults.toxics import build_toxic
from tests.unit.network.driver import Run, delivered, run
from tests.unit.network.frames import (
    HEAD_RESPONSE,
    chunked_response,
    http_request,
    http_response,
    request_envelope,
    response_envelope,
    tcp_frame,
)

pytestmark = [pytest.mark.chaos_network]

RESPONSE = tcp_frame(response_envelope("first"))
NEXT = tcp_frame(response_envelope("second"))


def malformed(kind: str, stream: bytes, **kwargs) -> list:
    return run(build_toxic("malformed_frame", {"kind": kind}), [(0.0, "data", stream)], **kwargs)


def split_tcp(data: bytes) -> tuple[int, bytes]:
    return int.from_bytes(data[:4], "big"), data[4:]


# kind -> what agenkit's decoder says about the corrupted envelope
DECODE_ERRORS = [
    ("invalid_json", MalformedPayloadError, "Failed to decode JSON"),
    ("invalid_utf8", MalformedPayloadError, "Failed to decode UTF-8"),
    ("missing_fields", InvalidMessageError, "Missing 'payload' field"),
]


@pytest.mark.parametrize("kind,error,message", DECODE_ERRORS)
def test_corrupted_tcp_frames_keep_valid_framing_and_fail_agenkits_decoder(kind, error, message):
    data = delivered(malformed(kind, RESPONSE + NEXT))
    length, rest = split_tcp(data)
    for body in (rest[:length], rest[length + 4 :]):  # both frames, each still framed
        with pytest.raises(error, match=message):
            decode_bytes(body)


def test_wrong_type_is_a_valid_envelope_of_an_unexpected_type():
    data = delivered(malformed("wrong_type", RESPONSE))
    length, body = split_tcp(data)
    envelope = decode_bytes(body[:length])  # agenkit accepts it as an envelope ...
    assert envelope["type"] == "request"  # ... but a caller expects a response
    request = delivered(malformed("wrong_type", tcp_frame(request_envelope())))
    assert decode_bytes(request[4:])["type"] == "response"


def test_truncated_announces_the_whole_frame_sends_half_and_closes():
    driver = Run(build_toxic("malformed_frame", {"kind": "truncated"}))
    driver.feed(0.0, RESPONSE + NEXT)
    driver.feed(0.1, NEXT)
    out = driver.finish()
    assert driver.acted == 1
    assert out[-1][0] == "close"
    data = delivered(out)
    length, body = split_tcp(data)
    assert length == len(RESPONSE) - 4
    assert len(body) == length // 2, "nothing after the cut reaches the peer"


def test_oversized_length_announces_more_than_agenkit_accepts():
    data = delivered(malformed("oversized_length", RESPONSE))
    length, body = split_tcp(data)
    assert length == MAX_MESSAGE_SIZE + 1
    assert body == RESPONSE[4:]


HTTP = [("POST", http_response(response_envelope("over http")))]


@pytest.mark.parametrize("kind,error,message", DECODE_ERRORS)
def test_over_http_the_body_is_corrupted_and_content_length_fixed(kind, error, message):
    driver = Run(build_toxic("malformed_frame", {"kind": kind}))
    driver.context.framing.record_request("POST")
    driver.feed(0.0, HTTP[0][1])
    data = delivered(driver.finish())
    head, body = data.split(b"\r\n\r\n", 1)
    assert f"Content-Length: {len(body)}".encode() in head
    with pytest.raises(error, match=message):
        decode_bytes(body)


@pytest.mark.parametrize("kind", ["truncated", "oversized_length"])
def test_over_http_length_faults_announce_a_length_then_close(kind):
    driver = Run(build_toxic("malformed_frame", {"kind": kind}))
    driver.context.framing.record_request("POST")
    original = HTTP[0][1]
    driver.feed(0.0, original)
    out = driver.finish()
    assert out[-1][0] == "close"
    head, body = delivered(out).split(b"\r\n\r\n", 1)
    announced = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    assert announced > len(body)
    if kind == "oversized_length":
        assert announced == MAX_MESSAGE_SIZE + 1


def test_http_traffic_without_envelopes_passes_untouched():
    driver = Run(build_toxic("malformed_frame", {"kind": "invalid_json"}))
    driver.context.framing.record_request("HEAD")
    driver.context.framing.record_request("GET")
    stream = HEAD_RESPONSE + http_response(body=b'{"status": "healthy"}')
    driver.feed(0.0, stream)
    assert delivered(driver.finish()) == stream
    assert driver.acted == 0


def test_requests_can_be_corrupted_upstream():
    stream = http_request(request_envelope())
    data = delivered(malformed("invalid_json", stream))
    assert data.startswith(b"POST /process HTTP/1.1") and b"\r\n\r\n[" in data


def test_toxicity_is_drawn_per_frame_and_repeats_with_the_seed():
    frames = [tcp_frame(response_envelope(str(i))) for i in range(200)]
    events = [(i * 0.01, "data", frame) for i, frame in enumerate(frames)]
    toxic = build_toxic("drop_frame", {})
    kept = delivered(run(toxic, events, seed=1, toxicity=0.3))
    kept_count = sum(1 for frame in frames if frame in kept)
    assert 100 < kept_count < 180  # about 70 % of 200
    assert kept == delivered(run(toxic, events, seed=1, toxicity=0.3))
    assert kept != delivered(run(toxic, events, seed=2, toxicity=0.3))


def test_drop_frame_keeps_the_stream_in_step():
    out = run(
        build_toxic("drop_frame", {}),
        [(0.0, "data", RESPONSE[:7]), (0.1, "data", RESPONSE[7:] + NEXT)],
        toxicity=1.0,
    )
    assert delivered(out) == b""
    driver = Run(build_toxic("drop_frame", {}), toxicity=0.0)
    driver.feed(0.0, RESPONSE + NEXT)
    assert delivered(driver.finish()) == RESPONSE + NEXT


def test_delay_frame_delays_the_chosen_frame_and_what_follows_waits():
    out = run(build_toxic("delay_frame", {"delay": 250}), [(0.0, "data", RESPONSE), (0.1, "data", NEXT)])
    assert out == [("deliver", 0.25, RESPONSE), ("deliver", 0.35, NEXT)]


def test_duplicate_frame_sends_small_copies_in_the_message_s_write():
    out = run(build_toxic("duplicate_frame", {"copies": 2}), [(0.0, "data", RESPONSE)])
    assert out == [("deliver", 0.0, RESPONSE * 3)]


def test_duplicate_frame_sends_large_copies_as_writes_the_link_can_pause_between():
    large = http_response(response_envelope("x" * ONE_WRITE_BYTES))
    out = run(build_toxic("duplicate_frame", {"copies": 2}), [(0.0, "data", large)])
    assert out == [("deliver", 0.0, large)] * 3


def test_reorder_swaps_a_held_frame_with_the_next_one():
    out = run(build_toxic("reorder_frames", {"window": 100}), [(0.0, "data", RESPONSE), (0.05, "data", NEXT)])
    assert delivered(out) == NEXT + RESPONSE


def test_reorder_never_puts_a_held_message_inside_a_chunked_response():
    first = http_response(response_envelope("first"))
    streamed = chunked_response([b'{"type": "stream_chunk"}', b"more"])
    driver = Run(build_toxic("reorder_frames", {"window": 100}))
    driver.feed(0.0, first)
    driver.feed(0.05, streamed[:100])  # the chunked head and the start of its body
    driver.feed(0.06, streamed[100:])
    out = driver.finish()
    assert delivered(out) == first + streamed, "the held response goes before the pass-through bytes"
    assert out[0] == ("deliver", 0.05, first) and driver.acted == 0


def test_reorder_swaps_a_held_message_with_a_complete_http_message():
    first, second = http_response(response_envelope("first")), http_response(response_envelope("second"))
    out = run(build_toxic("reorder_frames", {"window": 100}), [(0.0, "data", first), (0.05, "data", second)])
    assert delivered(out) == second + first


def test_reorder_releases_a_lone_frame_after_its_window():
    driver = Run(build_toxic("reorder_frames", {"window": 100}))
    driver.feed(0.0, RESPONSE)
    assert driver.finish() == [("deliver", 0.1, RESPONSE)]
    assert driver.acted == 0


@pytest.mark.parametrize("ending", ["end", "remove"])
def test_held_and_partial_frames_are_released_at_the_end_and_on_removal(ending):
    driver = Run(build_toxic("reorder_frames", {"window": 10_000}))
    driver.feed(0.0, RESPONSE + NEXT[:5])
    getattr(driver, ending)(1.0)
    out = driver.finish(until=2.0)
    assert delivered(out) == RESPONSE + NEXT[:5]
    assert (out[-1][0] == "close") == (ending == "end")


def test_a_frame_toxic_added_mid_stream_passes_what_it_cannot_frame():
    # the toxic joins after 10 bytes of a frame went by: the rest is not a frame start
    driver = Run(build_toxic("malformed_frame", {"kind": "invalid_json"}))
    driver.feed(0.0, RESPONSE[10:])
    assert delivered(driver.finish()) == RESPONSE[10:]
    assert driver.acted == 0


def test_envelopes_stay_json_for_wrong_type_and_missing_fields():
    for kind in ("wrong_type", "missing_fields"):
        data = delivered(malformed(kind, RESPONSE))
        json.loads(data[4:])


def test_frame_toxics_ask_for_the_facts_of_the_other_direction():
    driver = Run(build_toxic("drop_frame", {}))
    assert driver.context.wants_framing


FRAME_TOXICS = [
    ("malformed_frame", {"kind": "invalid_json"}),
    ("drop_frame", {}),
    ("delay_frame", {"delay": 100}),
    ("duplicate_frame", {"copies": 1}),
    ("reorder_frames", {"window": 100}),
]
PLAIN = [b"HELLO world\n", b"hello world\n", bytes(range(1, 256)), b"\x00\x00\x00\x05hello"]


@pytest.mark.parametrize("toxicity", [0.0, 1.0])
@pytest.mark.parametrize("type_name,attributes", FRAME_TOXICS, ids=[t for t, _ in FRAME_TOXICS])
def test_frame_toxics_pass_what_is_no_frame_at_once(type_name, attributes, toxicity):
    for stream in PLAIN:
        driver = Run(build_toxic(type_name, attributes), toxicity=toxicity)
        for index in range(len(stream)):  # however it is cut
            driver.feed(0.0, stream[index : index + 1])
        out = driver.finish()
        assert delivered(out) == stream and {item[1] for item in out} == {0.0}, stream
        assert driver.acted == 0


@pytest.mark.parametrize("type_name,attributes", FRAME_TOXICS, ids=[t for t, _ in FRAME_TOXICS])
def test_what_may_begin_a_frame_waits_at_most_the_detection_window(type_name, attributes):
    driver = Run(build_toxic(type_name, attributes))
    driver.feed(0.0, b"GET /index")
    driver.feed(0.05, b".html")
    later = round(DETECT_WINDOW_S + 0.1, 6)
    driver.feed(later, RESPONSE)  # given up: later frames pass untouched
    out = driver.finish()
    assert out == [("deliver", DETECT_WINDOW_S, b"GET /index.html"), ("deliver", later, RESPONSE)]
    assert driver.acted == 0


def test_shed_lets_an_incomplete_frame_go_untouched_and_the_stream_stays_in_step():
    driver = Run(build_toxic("drop_frame", {}))
    driver.feed(0.0, RESPONSE[:20])
    assert driver.toxic.held_bytes(driver.state) == 20
    driver.shed(0.1)
    assert driver.toxic.held_bytes(driver.state) == 0
    driver.feed(0.2, RESPONSE[20:] + NEXT)
    assert delivered(driver.finish()) == RESPONSE, "the shed frame passes whole; the next is dropped"
    assert driver.acted == 1


def test_a_reorder_toxic_counts_the_frame_it_holds():
    driver = Run(build_toxic("reorder_frames", {"window": 100}))
    driver.feed(0.0, RESPONSE + NEXT[:10])
    assert driver.toxic.held_bytes(driver.state) == len(RESPONSE) - 4 + 10  # its payload, the partial frame


def test_invalid_encoding_is_invalid_json_in_agenkit_envelopes():
    assert delivered(malformed("invalid_encoding", RESPONSE + NEXT)) == delivered(
        malformed("invalid_json", RESPONSE + NEXT)
    )
    with pytest.raises(MalformedPayloadError, match="Failed to decode JSON"):
        decode_bytes(split_tcp(delivered(malformed("invalid_encoding", RESPONSE)))[1])
