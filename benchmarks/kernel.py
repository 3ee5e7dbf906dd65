"""What each kernel-fault mechanism achieves, measured on real namespaces (root only).

Everything runs between the two namespaces of a network this benchmark
builds (``chaosagenkit.kernel.network.KernelNetwork``), with plain sockets
born in each namespace (no agenkit: the point is the packet path):

- **loss (nftables)**: achieved vs configured share, counted by the rule's
  own counters over 10 000 UDP datagrams, for 10, 20 and 30 % and for 20 %
  with correlation 0.5; and a 0.5 MB TCP transfer under 20 % loss both ways
  (the kernel's retransmissions, the time it took);
- **round trip**: a 64-byte TCP ping-pong (2000 per path per round) on the
  veth link, on the veth link with a loss rule that drops nothing of it
  (what evaluating the rule costs), and through the relay with no fault;
  rounds interleaved in rotating order;
- **relay delay accuracy**: the same ping-pong with the relay delaying the
  packets to the target by 1, 10 and 50 ms (and 50 +/- 10 ms): median and
  p99 of the added round trip against the setting;
- **throughput**: a bulk TCP transfer for 3 s on the veth link and through
  the relay (MB/s), and the relay's CPU time per packet carried;
- **bandwidth (tbf)**: achieved vs configured rate (8 Mbit/s and 1 Mbit/s);
- **netem**: whether this kernel has it.

Usage: ``python benchmarks/kernel.py [--rounds 5] [--no-record]``. Results go
to ``benchmarks/results/kernel.json`` and ``kernel.md``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: import `benchmarks`

from benchmarks.common import machine, machine_line, round_order, write_results
from chaosagenkit.kernel import system
from chaosagenkit.kernel.faults import parse_spec
from chaosagenkit.kernel.network import KernelNetwork
from chaosagenkit.kernel.topology import CALLERS_ADDRESS, TARGET_ADDRESS

PING_COUNT = 2000
BULK_S = 3.0
CHUNK = 65536


# -- sockets in the namespaces -------------------------------------------------------


def socket_in(network: KernelNetwork, side: str, kind: int = socket.SOCK_STREAM) -> socket.socket:
    return system.in_namespace(network.topology.namespace(side), lambda: socket.socket(socket.AF_INET, kind))


class Pair:
    """A TCP connection from the callers to the target, with an echo (or sink) thread on the target side."""

    def __init__(self, network: KernelNetwork, sink: bool = False) -> None:
        self.listener = socket_in(network, "target")
        self.listener.bind((TARGET_ADDRESS, 0))
        self.listener.listen()
        self.client = socket_in(network, "callers")
        self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client.connect((TARGET_ADDRESS, self.listener.getsockname()[1]))
        self.server, _ = self.listener.accept()
        self.server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.received = 0
        self.last_received_at = 0.0
        self.thread = threading.Thread(target=self._sink if sink else self._echo, daemon=True)
        self.thread.start()

    def _echo(self) -> None:
        while data := self.server.recv(CHUNK):
            self.server.sendall(data)

    def _sink(self) -> None:
        while data := self.server.recv(CHUNK):
            self.received += len(data)
            self.last_received_at = time.perf_counter()

    def close(self) -> None:
        self.client.close()
        self.thread.join(10)
        self.server.close()
        self.listener.close()


def ping_pong(network: KernelNetwork, count: int = PING_COUNT) -> list[float]:
    """Round trips (ms) of ``count`` 64-byte messages, one after another."""
    pair = Pair(network)
    message = b"x" * 64
    trips = []
    try:
        for _ in range(count):
            sent = time.perf_counter()
            pair.client.sendall(message)
            got = 0
            while got < len(message):
                got += len(pair.client.recv(CHUNK))
            trips.append((time.perf_counter() - sent) * 1000.0)
    finally:
        pair.close()
    return trips


def bulk(network: KernelNetwork, seconds: float = BULK_S) -> float:
    """MB/s of a one-way bulk TCP transfer: sent for ``seconds``, timed until the last byte arrives."""
    pair = Pair(network, sink=True)
    chunk = os.urandom(CHUNK)
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < seconds:
            pair.client.sendall(chunk)
    finally:
        pair.client.shutdown(socket.SHUT_WR)
        pair.thread.join(60)
        received, elapsed = pair.received, pair.last_received_at - started
        pair.close()
    return received / elapsed / 1e6


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- measurements -------------------------------------------------------------------------


def measure_loss() -> dict[str, Any]:
    results: dict[str, Any] = {"datagrams": 10_000, "rates": []}
    for rate, correlation in ((0.1, 0.0), (0.2, 0.0), (0.3, 0.0), (0.2, 0.5)):
        network = KernelNetwork("bench", seed=42)
        network.build()
        try:
            fault = network.inject(
                parse_spec("loss", loss_rate=rate, correlation=correlation), "to_target", 600
            )
            sender = socket_in(network, "callers", socket.SOCK_DGRAM)
            with sender:
                sender.bind((CALLERS_ADDRESS, 0))
                for i in range(results["datagrams"]):
                    sender.sendto(i.to_bytes(4, "big"), (TARGET_ADDRESS, 9))
            stats = network.fault_stats(fault["id"])
            results["rates"].append(
                {
                    "configured": rate,
                    "correlation": correlation,
                    "pattern": fault["pattern_loss_rate_to_target"],
                    "seen": stats["seen"],
                    "dropped": stats["acted"],
                    "achieved": stats["acted"] / stats["seen"],
                }
            )
        finally:
            network.teardown()
    network = KernelNetwork("bench", seed=42)
    network.build()
    try:
        network.inject(parse_spec("loss", loss_rate=0.2), "both", 600)
        pair = Pair(network, sink=True)
        payload = os.urandom(500_000)
        started = time.perf_counter()
        pair.client.sendall(payload)
        pair.client.shutdown(socket.SHUT_WR)
        pair.thread.join(120)
        elapsed = time.perf_counter() - started
        delivered = pair.received
        pair.close()
        counters = network.tcp_counters("callers")
        results["tcp_transfer"] = {
            "bytes": len(payload),
            "delivered": delivered,
            "seconds": round(elapsed, 3),
            "retransmitted_segments": counters["Tcp.RetransSegs"],
            "rto_timeouts": counters["TcpExt.TCPTimeouts"],
            "dropped_packets": network.fault_stats()["acted"],
        }
    finally:
        network.teardown()
    return results


def measure_paths(rounds: int) -> dict[str, Any]:
    """Round trips and throughput: veth, veth with an idle loss rule, relay; then relay delays."""
    veth, relay = KernelNetwork("bench", "veth", seed=42), KernelNetwork("bench", "relay", seed=42)
    veth.build()
    relay.build()
    try:
        ruled = KernelNetwork("bench", "veth", seed=42)
        ruled.build()
        try:
            # a rule on the answers' path that every packet of the ping-pong meets and none matches
            ruled.inject(parse_spec("blackhole", scope="new"), "to_callers", 600)
            paths = {"veth": veth, "veth+nft rule": ruled, "relay": relay}
            trips: dict[str, list[float]] = {name: [] for name in paths}
            medians: dict[str, list[float]] = {name: [] for name in paths}
            for index in range(rounds + 1):
                for name in round_order(list(paths), index):
                    measured = ping_pong(paths[name])
                    if index:  # round 0 warms up
                        trips[name] += measured
                        medians[name].append(statistics.median(measured))
            dropped_by_idle_rule = ruled.fault_stats()["acted"]
        finally:
            ruled.teardown()
        round_trip = {
            name: {
                "p50_ms": round(statistics.median(values), 4),
                "p99_ms": round(percentile(values, 99), 4),
                "round_medians_ms": [round(m, 4) for m in medians[name]],
            }
            for name, values in trips.items()
        }
        round_trip["veth+nft rule"]["packets_dropped"] = dropped_by_idle_rule
        throughput = {}
        relay_pid = relay.relay_stats()["pid"]
        for name, network in (("veth", veth), ("relay", relay)):
            before_cpu = cpu_seconds(relay_pid)
            before_packets = _relay_packets(relay)
            throughput[name] = {"mb_per_s": round(bulk(network), 1)}
            if name == "relay":
                packets = _relay_packets(relay) - before_packets
                throughput[name]["packets"] = packets
                throughput[name]["relay_cpu_us_per_packet"] = round(
                    (cpu_seconds(relay_pid) - before_cpu) / packets * 1e6, 2
                )
        base = statistics.median(trips["relay"])
        delays = []
        for delay_ms, jitter_ms in ((1, 0), (10, 0), (50, 0), (50, 10)):
            fault = relay.inject(
                parse_spec("delay", delay_ms=delay_ms, jitter_ms=jitter_ms), "to_target", 600
            )
            measured = ping_pong(relay, 200 if delay_ms >= 10 else 1000)
            relay.clear(fault["id"])
            added = [t - base for t in measured]
            delays.append(
                {
                    "delay_ms": delay_ms,
                    "jitter_ms": jitter_ms,
                    "added_p50_ms": round(statistics.median(added), 3),
                    "added_min_ms": round(min(added), 3),
                    "added_max_ms": round(max(added), 3),
                    "added_p99_ms": round(percentile(added, 99), 3),
                    "error_p50_ms": round(statistics.median(added) - delay_ms, 3),
                }
            )
    finally:
        veth.teardown()
        relay.teardown()
    return {"round_trip": round_trip, "throughput": throughput, "relay_delay": delays}


def _relay_packets(network: KernelNetwork) -> int:
    stats = network.relay_stats()
    return sum(d["packets"] for d in stats["directions"].values())


def measure_bandwidth() -> list[dict[str, Any]]:
    results = []
    for kbps in (8000, 1000):
        network = KernelNetwork("bench", seed=42)
        network.build()
        try:
            network.inject(parse_spec("bandwidth", rate_kbps=kbps), "to_target", 600)
            achieved = bulk(network, 4.0) * 8000  # MB/s -> kbit/s
            results.append(
                {
                    "configured_kbps": kbps,
                    "achieved_kbps": round(achieved),
                    "ratio": round(achieved / kbps, 3),
                }
            )
        finally:
            network.teardown()
    return results


def netem_here() -> bool:
    network = KernelNetwork("bench", seed=42)
    network.build()
    try:
        return network.netem
    finally:
        network.teardown()


# -- report ---------------------------------------------------------------------------------


def markdown(record: dict[str, Any]) -> str:
    loss, paths = record["loss"], record["paths"]
    lines = [
        "# Kernel faults: what each mechanism achieves",
        "",
        machine_line(record["machine"]),
        "",
        f"Two network namespaces of the benchmark's own, plain sockets in each; netem in this kernel: "
        f"**{'yes' if record['netem'] else 'no'}**.",
        "",
        f"## Loss (nftables, `numgen inc mod 1000` with a seeded residue set), {loss['datagrams']} UDP datagrams",
        "",
        "| configured | correlation | pattern share | packets seen | dropped | achieved |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in loss["rates"]:
        lines.append(
            f"| {r['configured']:.0%} | {r['correlation']} | {r['pattern']:.1%} | {r['seen']} | {r['dropped']} "
            f"| {r['achieved']:.2%} |"
        )
    t = loss["tcp_transfer"]
    lines += [
        "",
        f"A {t['bytes'] / 1e6:g} MB TCP transfer under 20 % loss both ways: {t['delivered']} bytes delivered "
        f"in {t['seconds']} s; the callers' kernel retransmitted {t['retransmitted_segments']} segments "
        f"({t['rto_timeouts']} RTO expiries); the rules dropped {t['dropped_packets']} packets.",
        "",
        f"## Round trip, 64-byte TCP ping-pong, {record['rounds']} interleaved rounds x {PING_COUNT}",
        "",
        "| path | p50 ms | p99 ms | added p50 µs (vs veth) |",
        "| --- | ---: | ---: | ---: |",
    ]
    veth_p50 = paths["round_trip"]["veth"]["p50_ms"]
    for name, r in paths["round_trip"].items():
        added = "-" if name == "veth" else f"{(r['p50_ms'] - veth_p50) * 1000:.0f}"
        lines.append(f"| {name} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {added} |")
    lines += [
        "",
        f"The nft rule (a SYN-only black hole on the answers' path) dropped "
        f"{paths['round_trip']['veth+nft rule']['packets_dropped']} packets of the ping-pong: "
        "what is measured is the cost of evaluating it.",
        "",
        "## Throughput, one-way bulk TCP for 3 s",
        "",
        "| path | MB/s | relay CPU µs per packet |",
        "| --- | ---: | ---: |",
    ]
    for name, r in paths["throughput"].items():
        lines.append(f"| {name} | {r['mb_per_s']} | {r.get('relay_cpu_us_per_packet', '-')} |")
    lines += [
        "",
        "## Relay delay accuracy (packets to the target delayed; added round trip vs the relay without fault)",
        "",
        "| delay ms | jitter ms | added p50 ms | min | max | p99 | p50 error ms |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for d in paths["relay_delay"]:
        lines.append(
            f"| {d['delay_ms']} | {d['jitter_ms']} | {d['added_p50_ms']} | {d['added_min_ms']} | {d['added_max_ms']} "
            f"| {d['added_p99_ms']} | {d['error_p50_ms']:+} |"
        )
    lines += [
        "",
        "## Bandwidth (tc tbf on the sender's link device)",
        "",
        "| configured kbit/s | achieved kbit/s | ratio |",
        "| ---: | ---: | ---: |",
    ]
    for b in record["bandwidth"]:
        lines.append(f"| {b['configured_kbps']} | {b['achieved_kbps']} | {b['ratio']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    reason = system.unavailable_reason() or system.tun_unavailable_reason()
    if reason:
        print(f"benchmarks/kernel.py: skipped: {reason}")
        return 0
    record = {
        "machine": machine("chaosagenkit/kernel", "benchmarks/kernel.py"),
        "rounds": args.rounds,
        "netem": netem_here(),
        "loss": measure_loss(),
        "paths": measure_paths(args.rounds),
        "bandwidth": measure_bandwidth(),
    }
    text = markdown(record)
    print(text)
    if not args.no_record:
        write_results("kernel", record, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
