"""The LLM endpoint's cost in pass-through: requests through ``llm-proxy --upstream`` vs straight to the model.

Two ``chaosagenkit llm-proxy`` processes run on 127.0.0.1:

- ``model``: the built-in deterministic model (the "provider");
- ``proxy``: the fault endpoint in pass-through mode, forwarding to
  ``model``, with no fault active.

A client (aiohttp, in this process, keep-alive connections) sends OpenAI
chat-completions requests to each side in interleaved rounds (direct-proxy,
proxy-direct, ...), JSON and streamed (SSE, read to the end), with 1 and 16
concurrent callers. The ratio of a round is proxy req/s / direct req/s; the
verdict uses the median ratio. A warm-up round is not recorded. Every
answer is checked (content == the prompt, the built-in model's echo).

Usage: ``python benchmarks/llm_endpoint.py [--rounds 6] [--no-record]``.
Results go to ``benchmarks/results/llm_endpoint.json`` and ``llm_endpoint.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: import `benchmarks`

from benchmarks.common import machine, machine_line, round_order, write_results

#: (label, stream, callers) -> requests per side per round
WORKLOADS = {
    ("json", False, 1): 600,
    ("json", False, 16): 2400,
    ("stream", True, 1): 600,
    ("stream", True, 16): 2400,
}
PROMPT = "benchmark prompt of a few tokens"


async def measure(base_url: str, stream: bool, callers: int, requests: int) -> dict[str, Any]:
    """Send ``requests`` chat completions from ``callers`` loops; return req/s and the median round trip."""
    import aiohttp

    body = json.dumps(
        {"model": "m", "messages": [{"role": "user", "content": PROMPT}], "stream": stream}
    ).encode()
    url = f"{base_url}/v1/chat/completions"
    per_caller = requests // callers
    round_trips: list[float] = []
    connector = aiohttp.TCPConnector(limit=callers)
    async with aiohttp.ClientSession(
        connector=connector, headers={"Content-Type": "application/json"}
    ) as session:

        async def loop() -> None:
            for _ in range(per_caller):
                sent = time.perf_counter()
                async with session.post(url, data=body) as response:
                    data = await response.read()
                round_trips.append((time.perf_counter() - sent) * 1000.0)
                if response.status != 200 or (
                    not stream and json.loads(data)["choices"][0]["message"]["content"] != PROMPT
                ):
                    raise AssertionError(f"a wrong answer: {response.status} {data[:200]!r}")
                if stream and not data.endswith(b"data: [DONE]\n\n"):
                    raise AssertionError(f"an incomplete stream: {data[-200:]!r}")

        await asyncio.gather(*(loop() for _ in range(callers)))  # connect before the clock starts
        started = time.perf_counter()
        round_trips.clear()
        await asyncio.gather(*(loop() for _ in range(callers)))
        elapsed = time.perf_counter() - started
    sent_total = per_caller * callers
    return {"requests": sent_total, "rps": sent_total / elapsed, "p50_ms": statistics.median(round_trips)}


def run(rounds: int) -> dict[str, Any]:
    from chaosagenkit.llm import process
    from chaosagenkit.sandbox import SANDBOX

    model = process.start_endpoint("bench-model", seed=1)
    proxy = process.start_endpoint("bench-proxy", seed=2, upstream=model.base_url)
    urls = {"direct": model.base_url, "proxy": proxy.base_url}
    results: dict[str, Any] = {}
    try:
        for (label, stream, callers), requests in WORKLOADS.items():
            key = f"{label}-{callers}"
            for side in urls:  # warm-up, not recorded
                asyncio.run(measure(urls[side], stream, callers, max(callers, requests // 10)))
            rows = []
            for index in range(rounds):
                order = round_order(("direct", "proxy"), index)
                row: dict[str, Any] = {"round": index + 1, "order": "-".join(order)}
                for side in order:
                    row[side] = asyncio.run(measure(urls[side], stream, callers, requests))
                row["ratio"] = row["proxy"]["rps"] / row["direct"]["rps"]
                rows.append(row)
                print(
                    f"{key} round {index + 1}: direct {row['direct']['rps']:.0f} req/s, "
                    f"proxy {row['proxy']['rps']:.0f} req/s, ratio {row['ratio']:.3f}",
                    flush=True,
                )
            results[key] = summarise(rows, requests)
        stats = process.client_for(proxy).get("/stats")
        if stats["injected"]:
            raise AssertionError(f"a fault was active during the benchmark: {stats['injected']}")
        results["proxy_requests_seen"] = stats["requests"]
    finally:
        process.teardown()
        SANDBOX.reset()
    return results


def summarise(rows: list[dict[str, Any]], requests: int) -> dict[str, Any]:
    ratios = [row["ratio"] for row in rows]
    direct_p50 = statistics.median(r["direct"]["p50_ms"] for r in rows)
    proxy_p50 = statistics.median(r["proxy"]["p50_ms"] for r in rows)
    return {
        "requests_per_side_per_round": requests,
        "rounds": rows,
        "direct_rps_median": statistics.median(r["direct"]["rps"] for r in rows),
        "proxy_rps_median": statistics.median(r["proxy"]["rps"] for r in rows),
        "direct_p50_ms_median": direct_p50,
        "proxy_p50_ms_median": proxy_p50,
        "added_p50_ms": proxy_p50 - direct_p50,
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
    }


def write(record: dict[str, Any]) -> None:
    lines = [
        "# LLM fault endpoint in pass-through (no fault) vs the model called directly",
        "",
        machine_line(record["machine"]),
        "",
        "OpenAI chat completions over http://127.0.0.1 with keep-alive (aiohttp client in the benchmark "
        "process); `direct` = the built-in model (`chaosagenkit llm-proxy`), `proxy` = `chaosagenkit "
        "llm-proxy --upstream <direct>` in front of it; each in its own process; interleaved rounds; "
        "ratio = proxy req/s / direct req/s of the same round. A pass-through request crosses one more "
        "HTTP hop and process, on a machine with 2 CPUs shared by the client and both servers.",
        "",
        "| workload | direct req/s | proxy req/s | ratio (median) | lowest | direct p50 ms | proxy p50 ms | added p50 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, result in record["results"].items():
        if not isinstance(result, dict):
            continue
        lines.append(
            f"| {key} ({result['requests_per_side_per_round']} req/round) | {result['direct_rps_median']:.0f} "
            f"| {result['proxy_rps_median']:.0f} | **{result['ratio_median']:.3f}** | {result['ratio_min']:.3f} "
            f"| {result['direct_p50_ms_median']:.3f} | {result['proxy_p50_ms_median']:.3f} "
            f"| {result['added_p50_ms']:.3f} |"
        )
    single = {key: record["results"][f"{key}-1"]["added_p50_ms"] for key in ("json", "stream")}
    lines += [
        "",
        f"With one caller a pass-through adds {single['json']:.2f} ms (JSON) and {single['stream']:.2f} ms "
        "(stream) at p50: the cost of a second aiohttp hop, small beside a provider's answer "
        "(hundreds of ms); with 16 callers the three processes share 2 CPUs and the proxy halves "
        "the throughput of a model that answers in a millisecond.",
    ]
    lines += ["", "Per round:", ""]
    for key, result in record["results"].items():
        if not isinstance(result, dict):
            continue
        lines += [
            f"### {key}",
            "",
            "| round | order | direct req/s | proxy req/s | ratio |",
            "| ---: | --- | ---: | ---: | ---: |",
        ]
        for row in result["rounds"]:
            lines.append(
                f"| {row['round']} | {row['order']} | {row['direct']['rps']:.0f} | {row['proxy']['rps']:.0f} "
                f"| {row['ratio']:.3f} |"
            )
        lines.append("")
    write_results("llm_endpoint", record, "\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--no-record", action="store_true", help="print only; do not write results/")
    args = parser.parse_args()
    record = {
        "machine": machine("chaosagenkit/llm", "benchmarks/llm_endpoint.py"),
        "results": run(args.rounds),
    }
    if not args.no_record:
        write(record)
    for key, result in record["results"].items():
        if isinstance(result, dict):
            print(f"{key}: ratio {result['ratio_median']:.3f}, added p50 {result['added_p50_ms']:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
