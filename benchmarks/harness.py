"""The client harness's own ceiling, next to a hand-written loop over agenkit's RemoteAgent (issue 4, item 6).

Both sides send requests to the same echo target, served by agenkit's
``LocalAgent`` over tcp in a child process, with 50 requests in flight over
50 connections and no middleware, on the same event loop (the client
runtime's), in interleaved rounds (A B B A ...) so drift hits both alike:

- ``hand-written``: 50 ``RemoteAgent``s, one coroutine each, awaiting
  ``process(Message(...))`` in a loop: the least any caller can do;
- ``harness``: ``send_requests`` of a client with ``connections=50`` and
  ``concurrency=50``: the pool, request numbering, the echo answer check
  and outcome recording included.

Target: the harness keeps >= 90% of the hand-written rate, so what
experiments measure is agenkit, not the harness. The verdict uses the median
of the per-round ratios (each round's two sides ran back to back, so the
pairing cancels the machine's drift); the ratio of the median rates is
recorded beside it.

Usage: ``python benchmarks/harness.py [--rounds 8] [--requests 6000] [--no-record]``.
Results go to ``benchmarks/results/harness.json`` and ``harness.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: import `benchmarks`

from benchmarks.common import machine, round_order, start_plain_echo, write_results

TARGET_RATIO = 0.90
CONCURRENCY = 50
#: what the harness side runs: a change there makes the recorded commit "-dirty"
MEASURED_CODE = ("chaosagenkit/client", "benchmarks/harness.py", "benchmarks/common.py")


async def hand_written(remotes: list[Any], requests: int) -> tuple[float, float]:
    """The minimal caller: one loop per RemoteAgent; returns requests/s and loop-thread CPU µs/request."""
    from agenkit.interfaces import Message

    per_agent = requests // len(remotes)

    async def loop(remote: Any, worker: int) -> None:
        for n in range(per_agent):
            rid = f"{worker}:{n}"
            await remote.process(Message(role="user", content=f"req-{n}", metadata={"request_id": rid}))

    started, cpu = time.perf_counter(), time.thread_time()
    await asyncio.gather(*(loop(remote, i) for i, remote in enumerate(remotes)))
    sent = per_agent * len(remotes)
    return sent / (time.perf_counter() - started), (time.thread_time() - cpu) / sent * 1e6


def harness(client_name: str, requests: int) -> tuple[float, float, dict[str, Any]]:
    """The harness: send_requests with 50 in flight; returns requests/s, loop CPU µs/request, summary."""
    from chaosagenkit.client import registry
    from chaosagenkit.client.runtime import RUNTIME

    cpu = RUNTIME.call(time.thread_time)  # the loop thread's CPU: where the harness does its work
    started = time.perf_counter()
    summary = registry.send_requests(client_name, requests, concurrency=CONCURRENCY)
    rate = requests / (time.perf_counter() - started)
    return rate, (RUNTIME.call(time.thread_time) - cpu) / requests * 1e6, summary


def run(rounds: int, requests: int) -> dict[str, Any]:
    from agenkit.adapters.python.remote_agent import RemoteAgent

    from chaosagenkit.client import registry
    from chaosagenkit.client.runtime import RUNTIME

    server, endpoint = start_plain_echo()
    try:
        registry.create_client("bench", endpoint=endpoint, connections=CONCURRENCY, timeout_ms=10_000)
        remotes = [RemoteAgent("bench", endpoint=endpoint, timeout_ms=10_000) for _ in range(CONCURRENCY)]
        # warm-up: connect everything, fill caches, JIT-free Python still likes a first pass
        RUNTIME.run(hand_written(remotes, CONCURRENCY * 20), 120)
        harness("bench", CONCURRENCY * 20)
        rows = []
        for r in range(rounds):
            order = round_order(("hand", "harness"), r)
            row: dict[str, Any] = {"round": r + 1, "order": "-".join(order)}
            for side in order:
                if side == "hand":
                    rate, cpu_us = RUNTIME.run(hand_written(remotes, requests), 300)
                    row["hand_written_rps"], row["hand_written_cpu_us"] = round(rate, 1), round(cpu_us, 2)
                else:
                    rate, cpu_us, summary = harness("bench", requests)
                    row["harness_cpu_us"] = round(cpu_us, 2)
                    if summary["ok"] != requests or summary["wrong_answers"]:
                        raise RuntimeError(f"harness round {r + 1} did not run clean: {summary}")
                    row["harness_rps"] = round(rate, 1)
                    row["harness_p50_ms"] = summary["latency_ms"]["p50"]
            row["ratio"] = round(row["harness_rps"] / row["hand_written_rps"], 3)
            rows.append(row)
            print(json.dumps(row), flush=True)
        for remote in remotes:
            RUNTIME.run(remote.close(), 10)
    finally:
        registry.close_all_clients()
        server.terminate()
        server.wait(10)
    hand_cpu = statistics.median(row["hand_written_cpu_us"] for row in rows)
    harness_cpu = statistics.median(row["harness_cpu_us"] for row in rows)
    hand = statistics.median(row["hand_written_rps"] for row in rows)
    ours = statistics.median(row["harness_rps"] for row in rows)
    ratio = statistics.median(row["ratio"] for row in rows)
    info = machine(*MEASURED_CODE)
    return {
        "benchmark": "harness",
        "question": "requests/s of the client harness vs a hand-written RemoteAgent loop, "
        f"{CONCURRENCY} in flight, echo target, no middleware",
        "commit": info["commit"],
        "date": info["date"],
        "machine": {key: info[key] for key in ("python", "cpus", "platform")},
        "agenkit": info["agenkit"],
        "setup": {
            "server": "agenkit LocalAgent(echo) over tcp://127.0.0.1, child process",
            "concurrency": CONCURRENCY,
            "connections": CONCURRENCY,
            "requests_per_side_per_round": requests,
            "rounds": rounds,
        },
        "rounds": rows,
        "median_hand_written_rps": round(hand, 1),
        "median_harness_rps": round(ours, 1),
        "ratio": round(ratio, 3),  # median of the per-round (paired) ratios: the verdict
        "ratio_of_medians": round(ours / hand, 3),
        "min_round_ratio": min(row["ratio"] for row in rows),
        # CPU of the client loop per request: steadier than rates on a shared machine
        "median_hand_written_cpu_us": round(hand_cpu, 2),
        "median_harness_cpu_us": round(harness_cpu, 2),
        "harness_overhead_cpu_us": round(harness_cpu - hand_cpu, 2),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "target_ratio": TARGET_RATIO,
        "met": ratio >= TARGET_RATIO,
    }


def write(result: dict[str, Any]) -> None:
    lines = [
        "# Harness ceiling vs hand-written RemoteAgent loop",
        "",
        f"Commit `{result['commit']}`, {result['date']}, Python {result['machine']['python']}, "
        f"{result['machine']['cpus']} CPUs, agenkit {result['agenkit']}.",
        "",
        f"{result['setup']['concurrency']} requests in flight over {result['setup']['connections']} connections, "
        f"{result['setup']['requests_per_side_per_round']} requests per side per round, "
        f"{result['setup']['rounds']} interleaved rounds; {result['setup']['server']}.",
        "",
        "| round | order | hand-written req/s | harness req/s | ratio | hand CPU µs/req | harness CPU µs/req | harness p50 ms |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in result["rounds"]:
        lines.append(
            f"| {row['round']} | {row['order']} | {row['hand_written_rps']:.0f} | {row['harness_rps']:.0f} "
            f"| {row['ratio']:.3f} | {row['hand_written_cpu_us']:.2f} | {row['harness_cpu_us']:.2f} "
            f"| {row['harness_p50_ms']} |"
        )
    verdict = "met" if result["met"] else "NOT met"
    lines += [
        "",
        f"Median: hand-written {result['median_hand_written_rps']:.0f} req/s, harness "
        f"{result['median_harness_rps']:.0f} req/s (ratio of medians {result['ratio_of_medians']:.3f}).",
        "",
        f"Median of the per-round ratios: **{result['ratio']:.3f}** "
        f"(target >= {result['target_ratio']}: {verdict}; lowest round {result['min_round_ratio']:.3f}).",
        "",
        f"Client-loop CPU per request (median): hand-written {result['median_hand_written_cpu_us']:.2f} µs, "
        f"harness {result['median_harness_cpu_us']:.2f} µs: the harness's own work (pool, numbering, "
        f"answer check, recording) costs {result['harness_overhead_cpu_us']:.2f} µs per request. "
        f"Load average at the end: {result['load_average']}.",
        "",
    ]
    write_results("harness", result, "\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--no-record", action="store_true", help="print only, write no result files")
    args = parser.parse_args()
    result = run(args.rounds, args.requests)
    print(
        json.dumps({k: result[k] for k in ("median_hand_written_rps", "median_harness_rps", "ratio", "met")})
    )
    if not args.no_record:
        write(result)
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
