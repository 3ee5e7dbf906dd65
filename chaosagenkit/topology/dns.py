"""A tiny DNS responder for one zone, with name-resolution faults (no forwarding, ever).

It runs inside the run's own network namespace (``chaosagenkit.topology.netns``),
where it is the only nameserver the namespace's ``resolv.conf`` names. Rules
kept here:

- It answers ONLY for names in its zone (``<host>.chaos.test``): an A query
  gets ``address``, any other type an empty NOERROR answer; names outside
  the zone get REFUSED. It never forwards a query anywhere, so no query of
  the run can leave the machine through it.
- A fault on a name (the faults file, JSON ``{name: {"mode", "expires_at"}}``,
  re-read when it changes) answers NXDOMAIN, SERVFAIL, or nothing at all
  (``silent``: the resolver's own timeout is what the caller waits for).
  A fault past its ``expires_at`` (epoch s) is ignored: faults expire by
  themselves even if nobody clears them.
- ``respond`` is pure (bytes and a clock in, bytes or None out); only
  ``serve`` touches a socket.

``python -m chaosagenkit.topology.dns --listen 127.0.0.1:53 --zone chaos.test
--faults FILE`` prints one JSON ready line, answers until SIGTERM, and exits
when its parent dies.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import struct
import sys
import time
from typing import Any

__all__ = ["DNS_MODES", "parse_query", "respond", "serve"]

#: Faults a name can have.
DNS_MODES = ("nxdomain", "servfail", "silent")
NOERROR, SERVFAIL, NXDOMAIN, REFUSED = 0, 2, 3, 5
TYPE_A, CLASS_IN = 1, 1
TTL_S = 0  # never cached: a fault takes effect at the next lookup


def parse_query(data: bytes) -> tuple[int, int, str, int, bytes] | None:
    """(id, flags, name, qtype, question bytes) of a one-question query; None if it is not one."""
    if len(data) < 12:
        return None
    ident, flags, qdcount = struct.unpack(">HHH", data[:6])
    if flags & 0x8000 or qdcount != 1:  # a response, or not exactly one question
        return None
    labels, offset = [], 12
    while offset < len(data):
        length = data[offset]
        if length == 0 or length > 63:
            break
        labels.append(data[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    if offset >= len(data) or data[offset] != 0 or offset + 5 > len(data):
        return None
    qtype, _qclass = struct.unpack(">HH", data[offset + 1 : offset + 5])
    return ident, flags, ".".join(labels).lower(), qtype, data[12 : offset + 5]


def respond(
    data: bytes, zone: str, address: str, faults: dict[str, dict[str, Any]], now: float
) -> tuple[bytes | None, str]:
    """The answer to a query (None: stay silent) and what was decided (for the log and counts)."""
    query = parse_query(data)
    if query is None:
        return None, "ignored"
    ident, flags, name, qtype, question = query
    zone = zone.lower().strip(".")
    if name != zone and not name.endswith("." + zone):
        return _reply(ident, flags, question, REFUSED), "refused"
    fault = faults.get(name)
    if fault and float(fault.get("expires_at", 0)) > now:
        mode = fault.get("mode")
        if mode == "silent":
            return None, "silent"
        if mode in ("nxdomain", "servfail"):
            return _reply(ident, flags, question, NXDOMAIN if mode == "nxdomain" else SERVFAIL), mode
    if qtype != TYPE_A:
        return _reply(ident, flags, question, NOERROR), "empty"
    record = b"\xc0\x0c" + struct.pack(">HHIH", TYPE_A, CLASS_IN, TTL_S, 4) + socket.inet_aton(address)
    return _reply(ident, flags, question, NOERROR, record), "answered"


def _reply(ident: int, flags: int, question: bytes, rcode: int, answer: bytes = b"") -> bytes:
    # QR=1, opcode and RD copied from the query, AA=1, RA=0
    reply_flags = 0x8000 | (flags & 0x7900) | 0x0400 | rcode
    return struct.pack(">HHHHHH", ident, reply_flags, 1, 1 if answer else 0, 0, 0) + question + answer


def serve(listen: tuple[str, int], zone: str, address: str, faults_path: str) -> None:
    """Answer queries on UDP ``listen`` until SIGTERM or the parent's death."""
    parent = os.getppid()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(listen)
    sock.settimeout(0.5)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    faults: dict[str, dict[str, Any]] = {}
    seen_mtime = None
    print(
        json.dumps({"event": "ready", "dns": f"{listen[0]}:{sock.getsockname()[1]}", "pid": os.getpid()}),
        flush=True,
    )
    while not stop and os.getppid() == parent:
        try:
            data, peer = sock.recvfrom(4096)
        except TimeoutError:
            continue
        try:
            mtime = os.stat(faults_path).st_mtime_ns
            if mtime != seen_mtime:
                with open(faults_path) as f:
                    faults = json.load(f)
                seen_mtime = mtime
        except (OSError, ValueError):
            faults, seen_mtime = {}, None
        answer, _decision = respond(data, zone, address, faults, time.time())
        if answer is not None:
            sock.sendto(answer, peer)
    sock.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="chaosagenkit.topology.dns", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:53")
    parser.add_argument("--zone", default="chaos.test")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--faults", required=True)
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    try:
        serve((host, int(port)), args.zone, args.address, args.faults)
    except OSError as e:
        print(f"chaosagenkit.topology.dns: cannot serve on {args.listen}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
