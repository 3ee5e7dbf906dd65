"""Real agenkit messages as they appear on the wire, built with agenkit's own codec."""

from __future__ import annotations

import json
import struct

from agenkit.adapters.python.codec import (
    create_request_envelope,
    create_response_envelope,
    encode_bytes,
    encode_message,
)
from agenkit.interfaces import Message


def request_envelope(text: str = "hello") -> dict:
    return create_request_envelope(
        "process", "echo", {"message": encode_message(Message(role="user", content=text))}
    )


def response_envelope(text: str = "hello") -> dict:
    return create_response_envelope("req-1", {"message": encode_message(Message(role="agent", content=text))})


def tcp_frame(envelope: dict) -> bytes:
    body = encode_bytes(envelope)
    return struct.pack(">I", len(body)) + body


def http_response(envelope: dict | None = None, *, body: bytes | None = None) -> bytes:
    if body is None:
        body = json.dumps(envelope).encode()
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nDate: Tue, 24 Nov 2026 09:47:52 GMT\r\n"
        "Server: Python/3.13 aiohttp/3.14.5\r\n\r\n"
    )
    return head.encode() + body


def http_request(envelope: dict, path: str = "/process") -> bytes:
    body = json.dumps(envelope).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: */*\r\n"
        "Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n"
        f"Content-Length: {len(body)}\r\nContent-Type: application/json\r\n\r\n"
    )
    return head.encode() + body


HEAD_HEALTH = b"HEAD /health HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
HEAD_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: 29\r\n\r\n"
)


def chunked_response(chunks: list[bytes]) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"".join(b"%x\r\n" % len(c) + c + b"\r\n" for c in chunks) + b"0\r\n\r\n"
    return head + body
