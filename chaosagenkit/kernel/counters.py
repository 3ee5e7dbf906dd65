"""The kernel's own TCP counters and connection table, parsed. Pure.

``parse_snmp`` reads ``/proc/net/snmp`` and ``/proc/net/netstat`` (pairs of
header and value lines, what ``nstat`` reads) into ``{"Tcp.RetransSegs": n,
"TcpExt.TCPSynRetrans": n, ...}``; ``parse_tcp_table`` reads
``/proc/net/tcp`` into one entry per socket. Both are per network
namespace, so in a namespace of the run they count only the run's traffic.

The counters that show what loss and black holes did (``TCP_EVIDENCE``):

- ``Tcp.RetransSegs``: segments retransmitted (every kind);
- ``TcpExt.TCPSynRetrans``: SYNs (and SYN-ACKs) sent again, unanswered;
- ``TcpExt.TCPTimeouts``: retransmission timer expiries (RTO, not fast retransmit);
- ``TcpExt.TCPLossProbes``: tail-loss probes;
- ``TcpExt.TCPAbortOnTimeout``: connections the kernel gave up on;
- ``Tcp.InCsumErrors``: segments dropped for a bad checksum (corruption);
- ``Tcp.AttemptFails``: connection attempts that failed.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["TCP_EVIDENCE", "TCP_STATES", "delta", "parse_snmp", "parse_tcp_table"]

TCP_EVIDENCE = (
    "Tcp.RetransSegs",
    "TcpExt.TCPSynRetrans",
    "TcpExt.TCPTimeouts",
    "TcpExt.TCPLossProbes",
    "TcpExt.TCPAbortOnTimeout",
    "Tcp.InCsumErrors",
    "Tcp.AttemptFails",
)

#: /proc/net/tcp's state codes (include/net/tcp_states.h).
TCP_STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "NEW_SYN_RECV",
}
_CENTISECONDS_MS = 10  # /proc/net/tcp shows the RTO in USER_HZ (1/100 s) ticks


def parse_snmp(*texts: str) -> dict[str, int]:
    """``{"Group.Name": value}`` from any number of /proc/net/snmp-style texts."""
    counters: dict[str, int] = {}
    for text in texts:
        lines = [line.split() for line in text.splitlines() if line.strip()]
        for header, values in zip(lines[::2], lines[1::2], strict=False):
            if not header or not values or header[0] != values[0]:
                continue
            group = header[0].rstrip(":")
            for name, value in zip(header[1:], values[1:], strict=False):
                try:
                    counters[f"{group}.{name}"] = int(value)
                except ValueError:
                    continue
    return counters


def delta(
    before: dict[str, int], after: dict[str, int], names: tuple[str, ...] | list[str]
) -> dict[str, int]:
    """``after - before`` for each of ``names`` (a counter missing on either side counts 0)."""
    return {name: after.get(name, 0) - before.get(name, 0) for name in names}


def parse_tcp_table(text: str) -> list[dict[str, Any]]:
    """One entry per socket of /proc/net/tcp, listeners left out.

    Each: ``local`` and ``remote`` ("a.b.c.d:port"), ``state``,
    ``unacked_bytes`` (sent, not yet acknowledged), ``retransmits`` (of the
    segment the timer waits on), ``timer`` ("retransmit", "keepalive", ...)
    and ``rto_ms``.
    """
    sockets = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 12:
            continue
        state = TCP_STATES.get(int(fields[3], 16), fields[3])
        if state == "LISTEN":
            continue
        tx_queue = int(fields[4].split(":")[0], 16)
        timer = int(fields[5].split(":")[0], 16)
        sockets.append(
            {
                "local": _address(fields[1]),
                "remote": _address(fields[2]),
                "state": state,
                "unacked_bytes": tx_queue,
                "retransmits": int(fields[6], 16),
                "timer": _TIMERS.get(timer, str(timer)),
                "rto_ms": int(fields[12]) * _CENTISECONDS_MS if len(fields) > 12 else None,
            }
        )
    return sockets


_TIMERS = {0: "none", 1: "retransmit", 2: "keepalive", 3: "time_wait", 4: "zero_window_probe"}


def _address(hex_address: str) -> str:
    host, port = hex_address.split(":")
    octets = bytes.fromhex(host)
    if sys.byteorder == "little":  # the kernel prints the address as a host-order u32
        octets = octets[::-1]
    return f"{'.'.join(str(o) for o in octets)}:{int(port, 16)}"
