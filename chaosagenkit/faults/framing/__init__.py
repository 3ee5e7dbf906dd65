"""Pure parsers and writers for every framing agenkit puts on a stream (no sockets, like h11).

- ``agenkit``: tcp:// and unix://, a 4-byte length and a JSON envelope;
- ``http1``: http:// and h2c:// (HTTP/1.1 on the wire), one envelope per body;
- ``websocket``: ws://, RFC 6455 frames after the HTTP/1.1 upgrade;
- ``http2``: grpc://, HTTP/2 frames and gRPC's length-prefixed protobuf messages.

``FrameReader`` (``reader``) detects the framing and splits a direction of
a stream into ``Frame`` objects (``base``) and bytes to pass untouched; the
frame toxics act on the frames through the writers each framing provides.
"""

from chaosagenkit.faults.framing.base import (
    JSON_KINDS,
    MALFORMED_KINDS,
    MAX_MESSAGE_SIZE,
    Frame,
    FramingContext,
    decode_envelope,
)
from chaosagenkit.faults.framing.reader import DETECT_WINDOW_S, MAX_START_LINE, PROTOCOLS, FrameReader

__all__ = [
    "DETECT_WINDOW_S",
    "JSON_KINDS",
    "MALFORMED_KINDS",
    "MAX_MESSAGE_SIZE",
    "MAX_START_LINE",
    "PROTOCOLS",
    "Frame",
    "FrameReader",
    "FramingContext",
    "decode_envelope",
]
