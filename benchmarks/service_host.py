"""The chaos host's cost: echo served plainly by agenkit vs through ``chaosagenkit serve`` (issue 2, item 9).

Two servers of the same echo target run side by side, each in its own
process, over tcp://127.0.0.1:

- ``plain``: agenkit's ``LocalAgent(echo())``, nothing else;
- ``host``: ``chaosagenkit serve`` (``LocalAgent(ChaosAgent(echo()))`` plus
  its control API), with no fault active.

For each concurrency (1 and 50 callers, one ``RemoteAgent`` per caller since
a RemoteAgent serialises its requests) the benchmark runs interleaved rounds
(plain-host, host-plain, ...) so drift hits both alike, and measures
requests/s and the median round trip of every request. A warm-up round is
not recorded. The verdict uses the median of per-round throughput ratios
(host / plain; each pair ran back to back). Target: the host keeps >= 90%.

Usage: ``python benchmarks/service_host.py [--rounds 20] [--no-record]``.
Results go to ``benchmarks/results/service_host.json`` and ``service_host.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
TARGET_RATIO = 0.90
#: concurrency -> requests per side per round
WORKLOADS = {1: 3000, 50: 15000}

sys.path.insert(0, str(ROOT))

_PLAIN_ECHO = """
import asyncio, json, os
from agenkit.adapters.python import LocalAgent
from chaosagenkit.targets import echo

async def main():
    server = LocalAgent(echo(), endpoint="tcp://127.0.0.1:0")
    await server.start()
    port = server._server.sockets[0].getsockname()[1]
    print(json.dumps({"endpoint": f"tcp://127.0.0.1:{port}"}), flush=True)
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(0.2)

asyncio.run(main())
"""


def start_plain() -> tuple[subprocess.Popen[bytes], str]:
    child = subprocess.Popen([sys.executable, "-c", _PLAIN_ECHO], stdout=subprocess.PIPE, cwd=ROOT)
    assert child.stdout is not None
    endpoint = json.loads(child.stdout.readline())["endpoint"]
    return child, endpoint


async def measure(endpoint: str, callers: int, requests: int) -> dict[str, float]:
    """``requests`` requests from ``callers`` RemoteAgents; requests/s and round trips (ms)."""
    from agenkit.adapters.python import RemoteAgent
    from agenkit.interfaces import Message

    remotes = [RemoteAgent("echo", endpoint=endpoint, timeout_ms=30_000) for _ in range(callers)]
    per_caller = requests // callers
    round_trips: list[float] = []

    async def loop(remote: Any, worker: int) -> None:
        for n in range(per_caller):
            message = Message(role="user", content=f"req-{n}", metadata={"request_id": f"{worker}:{n}"})
            sent = time.perf_counter()
            reply = await remote.process(message)
            round_trips.append((time.perf_counter() - sent) * 1000.0)
            if reply.metadata.get("request_id") != f"{worker}:{n}":
                raise AssertionError("an answer did not belong to its request")

    try:
        await asyncio.gather(*(r._ensure_connected() for r in remotes))  # noqa: SLF001 - connect outside the clock
        started = time.perf_counter()
        await asyncio.gather(*(loop(remote, i) for i, remote in enumerate(remotes)))
        elapsed = time.perf_counter() - started
    finally:
        await asyncio.gather(*(r.close() for r in remotes), return_exceptions=True)
    return {
        "requests": per_caller * callers,
        "rps": per_caller * callers / elapsed,
        "p50_ms": statistics.median(round_trips),
    }


def run(rounds: int) -> dict[str, Any]:
    from chaosagenkit.service import process

    plain, plain_endpoint = start_plain()
    host = process.start_server("bench-host", seed=1)
    endpoints = {"plain": plain_endpoint, "host": host.endpoint}
    results: dict[str, Any] = {}
    try:
        for callers, requests in WORKLOADS.items():
            for side in ("plain", "host"):  # warm-up, not recorded
                asyncio.run(measure(endpoints[side], callers, requests // 5))
            rows = []
            for index in range(rounds):
                order = ("plain", "host") if index % 2 == 0 else ("host", "plain")
                row: dict[str, Any] = {"round": index + 1, "order": "-".join(order)}
                for side in order:
                    row[side] = asyncio.run(measure(endpoints[side], callers, requests))
                row["ratio"] = row["host"]["rps"] / row["plain"]["rps"]
                rows.append(row)
                print(f"callers={callers} round {index + 1}: plain {row['plain']['rps']:.0f} req/s, "
                      f"host {row['host']['rps']:.0f} req/s, ratio {row['ratio']:.3f}", flush=True)
            results[str(callers)] = summarise(rows, requests)
        stats = process.client_for(host).get("/stats")
        if stats["injected"]:
            raise AssertionError(f"a fault was active during the benchmark: {stats['injected']}")
        results["host_requests_seen"] = stats["requests"]
    finally:
        process.stop_started_servers()
        plain.terminate()
        plain.wait()
    return results


def summarise(rows: list[dict[str, Any]], requests: int) -> dict[str, Any]:
    ratios = [row["ratio"] for row in rows]
    median_ratio = statistics.median(ratios)
    return {
        "requests_per_side_per_round": requests,
        "rounds": rows,
        "plain_rps_median": statistics.median(r["plain"]["rps"] for r in rows),
        "host_rps_median": statistics.median(r["host"]["rps"] for r in rows),
        "plain_p50_ms_median": statistics.median(r["plain"]["p50_ms"] for r in rows),
        "host_p50_ms_median": statistics.median(r["host"]["p50_ms"] for r in rows),
        "ratio_median": median_ratio,
        "ratio_min": min(ratios),
        "target": TARGET_RATIO,
        "met": median_ratio >= TARGET_RATIO,
    }


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    return {
        "commit": commit,
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "agenkit": version("agenkit"),
    }


def write(record: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "service_host.json").write_text(json.dumps(record, indent=2) + "\n")
    info = record["machine"]
    lines = [
        "# Chaos host overhead: plain agenkit LocalAgent vs chaosagenkit serve (no fault)",
        "",
        f"Commit `{info['commit']}`, {info['date']}, Python {info['python']}, {info['cpus']} CPUs, "
        f"agenkit {info['agenkit']}, {info['platform']}.",
        "",
        "Echo target over tcp://127.0.0.1, each server in its own process; one RemoteAgent per "
        "caller; interleaved rounds; ratio = host req/s / plain req/s of the same round.",
        "",
    ]
    for callers in WORKLOADS:
        result = record["results"][str(callers)]
        lines += [
            f"## {callers} caller{'s' if callers > 1 else ''}, "
            f"{result['requests_per_side_per_round']} requests per side per round",
            "",
            "| round | order | plain req/s | host req/s | ratio | plain p50 ms | host p50 ms |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in result["rounds"]:
            lines.append(
                f"| {row['round']} | {row['order']} | {row['plain']['rps']:.0f} | {row['host']['rps']:.0f} "
                f"| {row['ratio']:.3f} | {row['plain']['p50_ms']:.3f} | {row['host']['p50_ms']:.3f} |"
            )
        lines += [
            "",
            f"Median: plain {result['plain_rps_median']:.0f} req/s (p50 {result['plain_p50_ms_median']:.3f} ms), "
            f"host {result['host_rps_median']:.0f} req/s (p50 {result['host_p50_ms_median']:.3f} ms), "
            f"ratio **{result['ratio_median']:.3f}** (target >= {TARGET_RATIO}: "
            f"{'met' if result['met'] else 'NOT met'}; lowest round {result['ratio_min']:.3f}).",
            "",
        ]
    (RESULTS / "service_host.md").write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--no-record", action="store_true", help="print only; do not write results/")
    args = parser.parse_args()
    record = {"machine": machine(), "results": run(args.rounds)}
    if not args.no_record:
        write(record)
    for callers in WORKLOADS:
        result = record["results"][str(callers)]
        print(f"callers={callers}: ratio {result['ratio_median']:.3f} "
              f"({'met' if result['met'] else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
