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
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: import `benchmarks`

from benchmarks.common import machine, machine_line, measure, round_order, start_plain_echo, write_results

TARGET_RATIO = 0.90
#: concurrency -> requests per side per round
WORKLOADS = {1: 3000, 50: 15000}


def measure_side(endpoint: str, callers: int, requests: int) -> dict[str, float]:
    """One side of a round: requests sent, requests/s and the median round trip (ms)."""
    measured = asyncio.run(measure(endpoint, callers, requests))
    return {
        "requests": measured["requests"],
        "rps": measured["rps"],
        "p50_ms": statistics.median(measured["round_trips_ms"]),
    }


def run(rounds: int) -> dict[str, Any]:
    from chaosagenkit.service import hosts

    plain, plain_endpoint = start_plain_echo()
    host = hosts.start_server("bench-host", seed=1)
    endpoints = {"plain": plain_endpoint, "host": host.endpoint}
    results: dict[str, Any] = {}
    try:
        for callers, requests in WORKLOADS.items():
            for side in ("plain", "host"):  # warm-up, not recorded
                asyncio.run(measure(endpoints[side], callers, requests // 5))
            rows = []
            for index in range(rounds):
                order = round_order(("plain", "host"), index)
                row: dict[str, Any] = {"round": index + 1, "order": "-".join(order)}
                for side in order:
                    row[side] = measure_side(endpoints[side], callers, requests)
                row["ratio"] = row["host"]["rps"] / row["plain"]["rps"]
                rows.append(row)
                print(
                    f"callers={callers} round {index + 1}: plain {row['plain']['rps']:.0f} req/s, "
                    f"host {row['host']['rps']:.0f} req/s, ratio {row['ratio']:.3f}",
                    flush=True,
                )
            results[str(callers)] = summarise(rows, requests)
        stats = hosts.client_for(host).get("/stats")
        if stats["injected"]:
            raise AssertionError(f"a fault was active during the benchmark: {stats['injected']}")
        results["host_requests_seen"] = stats["requests"]
    finally:
        hosts.stop_started_servers()
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


def write(record: dict[str, Any]) -> None:
    lines = [
        "# Chaos host overhead: plain agenkit LocalAgent vs chaosagenkit serve (no fault)",
        "",
        machine_line(record["machine"]),
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
    write_results("service_host", record, "\n".join(lines))


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
        print(
            f"callers={callers}: ratio {result['ratio_median']:.3f} ({'met' if result['met'] else 'NOT met'})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
