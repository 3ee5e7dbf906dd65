"""The fault proxy's cost and the latency toxic's accuracy (issue 3, item 8).

Three paths to the same agenkit echo server (``LocalAgent(echo())`` over
tcp://127.0.0.1, in its own process), measured in one run, interleaved:

- ``direct``: the client talks to the echo server;
- ``ours``: through ``chaosagenkit proxy`` (its own process) with no toxic,
  on its default event loop (uvloop when installed, as with ``make bench``);
- ``ours_asyncio``: the same daemon forced onto the standard asyncio loop
  (``--loop asyncio``), what an install without uvloop gets;
- ``faulty``: through the ``faulty`` PyPI proxy (its own process) with no fault;
- ``floor``: a 30-line forwarding-only proxy on uvloop (no toxics, no API,
  no counters): what any Python userspace proxy costs here, for reference;
- ``toxiproxy``: the real Toxiproxy (Go) with no toxic, when its binary is
  found (``$TOXIPROXY_SERVER`` or ``toxiproxy-server`` on PATH; ``make
  bench`` points it at ../shared/toxiproxy/bin/toxiproxy-server when that
  exists). Targets then: our added median round trip (1 client) and our
  proxy CPU per request below Toxiproxy's.

Workloads: 1 client sending requests one after another (median and p99
round trip), and 50 concurrent clients, one RemoteAgent each since a
RemoteAgent serialises its requests (requests/s). Each round runs every
path once, in a rotating order, so drift hits all alike; a warm-up round is
not recorded. Targets: our added median round trip (ours - direct) at most
half of faulty's (faulty - direct); with 50 clients at least 80 % of direct
throughput (median of per-round ratios). The CPU time each proxy process
spends per request is recorded too: on a 2-core machine that runs client,
proxy and server at once, throughput is a CPU budget.

Then the latency toxic's accuracy: at 100, 500 and 2000 ms on the downstream
stream, the median observed extra round trip (against the proxy without
toxic, measured just before) must be within 3 ms of the setting.

Usage: ``python benchmarks/proxy.py [--rounds 10] [--no-record]``.
Results go to ``benchmarks/results/proxy.json`` and ``proxy.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: import `benchmarks`

from benchmarks.common import (
    machine,
    machine_line,
    measure,
    round_order,
    start_child,
    start_plain_echo,
    write_results,
)

PATHS = ("direct", "ours", "ours_asyncio", "faulty", "floor")
PROXIES = ("ours", "ours_asyncio", "faulty", "floor")
TOXIPROXY = "toxiproxy"  # a path when the real Toxiproxy is available
#: clients -> requests per path per round
WORKLOADS = {1: 2000, 50: 10000}
LATENCY_SAMPLES = {100: 30, 500: 12, 2000: 6}
LATENCY_TOLERANCE_MS = 3.0
ADDED_RATIO_TARGET = 0.5
THROUGHPUT_TARGET = 0.8

_FAULTY = """
import asyncio, json, sys
from faulty.core.proxy import FaultyProxy
from benchmarks.common import wait_for_parent_exit

async def main():
    host, port = sys.argv[1].rsplit(":", 1)
    proxy = FaultyProxy("127.0.0.1", 0, host, int(port))
    async with proxy:
        bound = proxy._server.sockets[0].getsockname()[1]
        print(json.dumps({"listen": f"127.0.0.1:{bound}"}), flush=True)
        await wait_for_parent_exit()

asyncio.run(main())
"""


_FLOOR = """
import asyncio, json, sys
import uvloop
from benchmarks.common import wait_for_parent_exit

class Side(asyncio.Protocol):
    peer = None
    def __init__(self):
        self.early = []
    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        if self.peer is None:
            self.early.append(data)
        else:
            self.peer.transport.write(data)
    def connection_lost(self, exc):
        if self.peer is not None:
            self.peer.transport.close()

class Client(Side):
    def connection_made(self, transport):
        super().connection_made(transport)
        transport.pause_reading()
        asyncio.get_running_loop().create_task(self.open())
    async def open(self):
        host, port = sys.argv[1].rsplit(":", 1)
        _, server = await asyncio.get_running_loop().create_connection(Side, host, int(port))
        server.peer, self.peer = self, server
        for data in self.early:
            server.transport.write(data)
        self.transport.resume_reading()

async def main():
    listener = await asyncio.get_running_loop().create_server(Client, "127.0.0.1", 0)
    print(json.dumps({"listen": f"127.0.0.1:{listener.sockets[0].getsockname()[1]}"}), flush=True)
    await wait_for_parent_exit()

uvloop.run(main())
"""


def start_script(script: str, upstream: str) -> tuple[subprocess.Popen[bytes], str]:
    child, ready = start_child(script, upstream)
    return child, ready["listen"]


def start_faulty(upstream: str) -> tuple[subprocess.Popen[bytes], str]:
    return start_script(_FAULTY, upstream)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def compare(endpoints: dict[str, str], pids: dict[str, int], rounds: int) -> dict[str, Any]:
    paths = tuple(endpoints)  # PATHS, and TOXIPROXY when it runs
    proxies = tuple(p for p in paths if p != "direct")
    results: dict[str, Any] = {"paths": list(paths)}
    for clients, requests in WORKLOADS.items():
        for path in paths:  # warm-up
            asyncio.run(measure(endpoints[path], clients, requests // 5))
        rows = []
        pooled: dict[str, list[float]] = {path: [] for path in paths}
        for index in range(rounds):
            order = round_order(paths, index)
            row: dict[str, Any] = {"round": index + 1, "order": "-".join(order)}
            for path in order:
                cpu_before = cpu_seconds(pids[path]) if path in pids else 0.0
                measured = asyncio.run(measure(endpoints[path], clients, requests))
                cpu_used = cpu_seconds(pids[path]) - cpu_before if path in pids else 0.0
                pooled[path] += measured["round_trips_ms"]
                row[path] = {
                    "rps": measured["rps"],
                    "p50_ms": statistics.median(measured["round_trips_ms"]),
                    "proxy_cpu_us_per_request": cpu_used / requests * 1e6,
                }
            row["ours_vs_direct"] = row["ours"]["rps"] / row["direct"]["rps"]
            row["ours_asyncio_vs_direct"] = row["ours_asyncio"]["rps"] / row["direct"]["rps"]
            row["floor_vs_direct"] = row["floor"]["rps"] / row["direct"]["rps"]
            if TOXIPROXY in paths:
                row["toxiproxy_vs_direct"] = row[TOXIPROXY]["rps"] / row["direct"]["rps"]
            rows.append(row)
            print(
                f"clients={clients} round {index + 1}: "
                + ", ".join(f"{p} {row[p]['rps']:.0f} req/s p50 {row[p]['p50_ms']:.3f} ms" for p in paths),
                flush=True,
            )
        summary = {
            path: {
                "p50_ms": statistics.median(pooled[path]),
                "p99_ms": percentile(pooled[path], 0.99),
                "rps_median": statistics.median(row[path]["rps"] for row in rows),
                "proxy_cpu_us_per_request": statistics.median(
                    row[path]["proxy_cpu_us_per_request"] for row in rows
                ),
            }
            for path in paths
        }
        added = {path: summary[path]["p50_ms"] - summary["direct"]["p50_ms"] for path in proxies}
        results[str(clients)] = {
            "requests_per_path_per_round": requests,
            "rounds": rows,
            "summary": summary,
            "added_p50_ms": added,
            "added_ratio": {
                path: added[path] / added["faulty"] if added["faulty"] > 0 else None
                for path in ("ours", "ours_asyncio")
            },
            "throughput_ratio_median": {
                path: statistics.median(row[f"{path}_vs_direct"] for row in rows)
                for path in ("ours", "ours_asyncio", "floor", TOXIPROXY)
                if path in paths
            },
        }
    one, fifty = results["1"], results["50"]
    results["targets"] = {}
    for path in ("ours", "ours_asyncio"):
        added_ratio = one["added_ratio"][path]
        throughput = fifty["throughput_ratio_median"][path]
        results["targets"][path] = {
            "added_ratio": {
                "target": ADDED_RATIO_TARGET,
                "value": added_ratio,
                "met": added_ratio is not None and added_ratio <= ADDED_RATIO_TARGET,
            },
            "throughput_ratio_50": {
                "target": THROUGHPUT_TARGET,
                "value": throughput,
                "met": throughput >= THROUGHPUT_TARGET,
            },
        }
    if TOXIPROXY in paths:
        ours_cpu = [results[str(c)]["summary"]["ours"]["proxy_cpu_us_per_request"] for c in WORKLOADS]
        their_cpu = [results[str(c)]["summary"][TOXIPROXY]["proxy_cpu_us_per_request"] for c in WORKLOADS]
        results["targets"]["vs_toxiproxy"] = {
            "added_p50_us": {
                "ours": one["added_p50_ms"]["ours"] * 1000,
                "toxiproxy": one["added_p50_ms"][TOXIPROXY] * 1000,
                "met": one["added_p50_ms"]["ours"] < one["added_p50_ms"][TOXIPROXY],
            },
            "proxy_cpu_us_per_request": {
                "ours": dict(zip(map(str, WORKLOADS), ours_cpu, strict=True)),
                "toxiproxy": dict(zip(map(str, WORKLOADS), their_cpu, strict=True)),
                "met": all(o < t for o, t in zip(ours_cpu, their_cpu, strict=True)),
            },
        }
    return results


def latency_accuracy(api: Any, endpoint: str) -> dict[str, Any]:
    rows = {}
    for latency_ms, samples in LATENCY_SAMPLES.items():
        baseline = statistics.median(asyncio.run(measure(endpoint, 1, 200))["round_trips_ms"])
        api.post(
            "/proxies/bench/toxics",
            {"type": "latency", "name": "accuracy", "attributes": {"latency": latency_ms}},
        )
        try:
            observed = asyncio.run(measure(endpoint, 1, samples))["round_trips_ms"]
        finally:
            api.delete("/proxies/bench/toxics/accuracy")
        extra = statistics.median(observed) - baseline
        rows[str(latency_ms)] = {
            "samples": samples,
            "baseline_p50_ms": baseline,
            "extra_p50_ms": extra,
            "error_ms": extra - latency_ms,
            "met": abs(extra - latency_ms) <= LATENCY_TOLERANCE_MS,
        }
        print(f"latency {latency_ms} ms: observed extra {extra:.2f} ms", flush=True)
    return rows


def run(rounds: int) -> dict[str, Any]:
    from chaosagenkit.control_client import ControlClient
    from chaosagenkit.network import daemons
    from tests.differential.toxiproxy_support import start_toxiproxy, stop_toxiproxy, toxiproxy_binary

    binary = toxiproxy_binary()
    toxiproxy, toxiproxy_url = start_toxiproxy(binary) if binary else (None, "")
    echo, direct = start_plain_echo()
    upstream = direct.removeprefix("tcp://")
    daemon, ready = daemons.start_daemon(seed=1)
    plain_daemon, plain_ready = daemons.start_daemon(seed=1, loop="asyncio")
    faulty, faulty_listen = start_faulty(upstream)
    floor, floor_listen = start_script(_FLOOR, upstream)
    try:
        api = ControlClient(ready["api"])
        plain_api = ControlClient(plain_ready["api"])
        ours = api.post("/proxies", {"name": "bench", "upstream": upstream})["listen"]
        ours_asyncio = plain_api.post("/proxies", {"name": "bench", "upstream": upstream})["listen"]
        endpoints = {
            "direct": direct,
            "ours": f"tcp://{ours}",
            "ours_asyncio": f"tcp://{ours_asyncio}",
            "faulty": f"tcp://{faulty_listen}",
            "floor": f"tcp://{floor_listen}",
        }
        pids = {
            "ours": daemon.pid,
            "ours_asyncio": plain_daemon.pid,
            "faulty": faulty.pid,
            "floor": floor.pid,
        }
        if toxiproxy is not None:
            created = ControlClient(toxiproxy_url).post(
                "/proxies", {"name": "bench", "listen": "127.0.0.1:0", "upstream": upstream}
            )
            endpoints[TOXIPROXY] = f"tcp://{created['listen']}"
            pids[TOXIPROXY] = toxiproxy.pid
        else:
            print("the real Toxiproxy is absent (TOXIPROXY_SERVER, PATH): not compared", flush=True)
        results = compare(endpoints, pids, rounds)
        results["loops"] = {"ours": ready["loop"], "ours_asyncio": plain_ready["loop"]}
        results["latency_accuracy"] = latency_accuracy(api, endpoints["ours"])
        results["targets"]["latency_accuracy"] = {
            "target_ms": LATENCY_TOLERANCE_MS,
            "met": all(row["met"] for row in results["latency_accuracy"].values()),
        }
        stats = api.get("/proxies/bench/stats")
        if stats["toxics"].keys() - {"accuracy"}:
            raise AssertionError(f"a toxic was active during the comparison: {stats['toxics']}")
        results["proxy_bytes"] = {"upstream": stats["upstream"], "downstream": stats["downstream"]}
    finally:
        daemons.stop_daemon(daemon)
        daemons.stop_daemon(plain_daemon)
        for child in (faulty, floor, echo):
            child.terminate()
            child.wait()
        if toxiproxy is not None:
            stop_toxiproxy(toxiproxy)
    return results


def write(record: dict[str, Any]) -> None:
    results = record["results"]
    targets = results["targets"]
    paths = results["paths"]
    lines = [
        "# Fault proxy: direct vs chaosagenkit proxy vs faulty (no fault), and latency accuracy",
        "",
        machine_line(record["machine"]),
        "",
        "agenkit echo over tcp://127.0.0.1; echo server, our proxy and faulty each in their own "
        "process; one RemoteAgent per client; rounds interleaved in rotating order.",
        "",
        f"`ours` ran on {results['loops']['ours']}, `ours_asyncio` on {results['loops']['ours_asyncio']}.",
        "",
        "## Targets",
        "",
        "| target | ours | ours_asyncio |",
        "| --- | ---: | ---: |",
        f"| added median round trip <= {ADDED_RATIO_TARGET} x faulty's (1 client) "
        + "".join(f"| {_verdict(targets[p]['added_ratio'])} " for p in ("ours", "ours_asyncio"))
        + "|",
        f"| >= {THROUGHPUT_TARGET:.0%} of direct req/s (50 clients, median of rounds) "
        + "".join(f"| {_verdict(targets[p]['throughput_ratio_50'])} " for p in ("ours", "ours_asyncio"))
        + "|",
        f"| latency toxic within {LATENCY_TOLERANCE_MS:g} ms at 100/500/2000 ms "
        f"| {'met' if targets['latency_accuracy']['met'] else 'NOT met'} | |",
        "",
    ]
    versus = targets.get("vs_toxiproxy")
    if versus:
        added, cpu = versus["added_p50_us"], versus["proxy_cpu_us_per_request"]
        lines += [
            "Against the real Toxiproxy (no toxic, same rounds):",
            "",
            "| target | ours | toxiproxy | |",
            "| --- | ---: | ---: | --- |",
            f"| added median round trip, 1 client (µs) | {added['ours']:.0f} | {added['toxiproxy']:.0f} "
            f"| {'met' if added['met'] else 'NOT met'} |",
        ]
        for clients in cpu["ours"]:
            lines.append(
                f"| proxy CPU µs/request, {clients} client(s) | {cpu['ours'][clients]:.1f} "
                f"| {cpu['toxiproxy'][clients]:.1f} | {'met' if cpu['met'] else 'NOT met'} |"
            )
        lines.append("")
    else:
        lines += ["The real Toxiproxy was not available: not compared.", ""]
    for clients in WORKLOADS:
        result = results[str(clients)]
        summary = result["summary"]
        lines += [
            f"## {clients} client{'s' if clients > 1 else ''}, "
            f"{result['requests_per_path_per_round']} requests per path per round",
            "",
            "| path | median req/s | p50 ms | p99 ms | added p50 µs | proxy CPU µs/request |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for path in paths:
            added = result["added_p50_ms"].get(path, 0.0) * 1000
            cpu = summary[path]["proxy_cpu_us_per_request"]
            lines.append(
                f"| {path} | {summary[path]['rps_median']:.0f} | {summary[path]['p50_ms']:.3f} "
                f"| {summary[path]['p99_ms']:.3f} | {added:.0f} | "
                f"{cpu:.1f} |"
                if path != "direct"
                else f"| {path} | {summary[path]['rps_median']:.0f} | {summary[path]['p50_ms']:.3f} "
                f"| {summary[path]['p99_ms']:.3f} | - | - |"
            )
        lines += [
            "",
            "Throughput / direct, median of rounds: "
            + ", ".join(f"{p} {v:.3f}" for p, v in result["throughput_ratio_median"].items())
            + ".",
            "",
            "| round | order | "
            + " | ".join(f"{p} req/s" for p in paths)
            + " | ours/direct | floor/direct |",
            "| ---: | --- | " + " | ".join("---:" for _ in paths) + " | ---: | ---: |",
        ]
        for row in result["rounds"]:
            lines.append(
                f"| {row['round']} | {row['order']} | "
                + " | ".join(f"{row[p]['rps']:.0f}" for p in paths)
                + f" | {row['ours_vs_direct']:.3f} | {row['floor_vs_direct']:.3f} |"
            )
        lines.append("")
    lines += [
        "## Latency toxic accuracy (downstream, 1 client)",
        "",
        "| setting ms | samples | baseline p50 ms | observed extra p50 ms | error ms | within 3 ms |",
        "| ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for setting, row in results["latency_accuracy"].items():
        lines.append(
            f"| {setting} | {row['samples']} | {row['baseline_p50_ms']:.3f} | {row['extra_p50_ms']:.2f} "
            f"| {row['error_ms']:+.2f} | {'yes' if row['met'] else 'NO'} |"
        )
    write_results("proxy", record, "\n".join(lines) + "\n")


def _verdict(target: dict[str, Any]) -> str:
    value = target["value"]
    shown = "n/a" if value is None else f"{value:.3f}"
    return f"{shown} ({'met' if target['met'] else 'NOT met'})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    record = {"machine": machine(), "results": run(args.rounds)}
    print(json.dumps(record["results"]["targets"], indent=2))
    if not args.no_record:
        write(record)


if __name__ == "__main__":
    main()
