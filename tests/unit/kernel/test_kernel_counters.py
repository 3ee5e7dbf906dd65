"""Parsing the kernel's TCP counters and connection table (what nstat and ss read)."""

from __future__ import annotations

from chaosagenkit.kernel.counters import delta, parse_snmp, parse_tcp_table

SNMP = """Ip: Forwarding DefaultTTL InReceives
Ip: 1 64 1200
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 5 3 1 0 2 400 380 17 0 1 2
"""
NETSTAT = """TcpExt: SyncookiesSent TCPTimeouts TCPLossProbes TCPSynRetrans TCPAbortOnTimeout
TcpExt: 0 5 12 3 1
IpExt: InNoRoutes InCsumErrors
IpExt: 0 0
"""


def test_parse_snmp_pairs_headers_with_values():
    counters = parse_snmp(SNMP, NETSTAT)
    assert counters["Tcp.RetransSegs"] == 17
    assert counters["Tcp.MaxConn"] == -1
    assert counters["TcpExt.TCPSynRetrans"] == 3
    assert counters["TcpExt.TCPAbortOnTimeout"] == 1
    assert counters["Tcp.InCsumErrors"] == 2
    assert counters["IpExt.InCsumErrors"] == 0


def test_parse_snmp_ignores_mismatched_or_odd_lines():
    assert parse_snmp("Tcp: A B\nUdp: 1 2\n") == {}
    assert parse_snmp("Tcp: A B\n") == {}
    assert parse_snmp("Tcp: A B\nTcp: 1 x\n") == {"Tcp.A": 1}


def test_delta_counts_missing_counters_as_zero():
    assert delta({"a": 1, "b": 5}, {"a": 4, "c": 2}, ["a", "b", "c"]) == {"a": 3, "b": -5, "c": 2}


TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 020012C6:8E25 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 57022 1 0000000000000000 100 0 0 10 0
   1: 010012C6:B63A 020012C6:8E25 01 000003EA:00000000 01:0000009C 00000003     0        0 57030 2 0000000000000000 163 4 30 1 2
   2: 010012C6:A632 020012C6:9F8B 04 00000218:00000000 01:00000050 00000003     0        0 0 1 0000000000000000 163 4 30 1 2
"""


def test_parse_tcp_table_leaves_listeners_out():
    sockets = parse_tcp_table(TCP)
    assert sockets == [
        {
            "local": "198.18.0.1:46650",
            "remote": "198.18.0.2:36389",
            "state": "ESTABLISHED",
            "unacked_bytes": 1002,
            "retransmits": 3,
            "timer": "retransmit",
            "rto_ms": 1630,
        },
        {
            "local": "198.18.0.1:42546",
            "remote": "198.18.0.2:40843",
            "state": "FIN_WAIT1",
            "unacked_bytes": 536,
            "retransmits": 3,
            "timer": "retransmit",
            "rto_ms": 1630,
        },
    ]
