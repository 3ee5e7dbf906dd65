"""Is 80 % of direct throughput with 50 clients reachable by any proxy on this machine?

``benchmarks/proxy.py`` finds our fault proxy at about 0.64 of direct
throughput with 50 concurrent agenkit clients (target 0.80), the same as a
30-line forwarding-only Python proxy. This measures a proxy written in C,
``socat`` (Debian's package; ``fork`` = one process per connection), next to
ours and to direct, in the same run, interleaved, with the same load
(50 RemoteAgents, agenkit echo over tcp://127.0.0.1 in its own process).

Usage: ``python benchmarks/proxy_reference.py [--rounds 6] [--no-record]``
(skips with a message when ``socat`` is not installed). Results go to
``benchmarks/results/proxy_reference.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: import `benchmarks`

from benchmarks.common import machine, machine_line, measure, round_order, start_plain_echo, write_results

PATHS = ("direct", "ours", "socat")
CLIENTS, REQUESTS = 50, 10000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--no-record", action="store_true", help="print only, write no result files")
    args = parser.parse_args()
    socat_binary = shutil.which("socat")
    if not socat_binary:
        print("proxy_reference: socat is not installed (apt-get install socat); nothing measured")
        return

    from chaosagenkit.network import daemons as network_daemons

    echo, endpoint = start_plain_echo()
    upstream = endpoint.removeprefix("tcp://")
    socat_port = free_port()
    socat = subprocess.Popen(
        [socat_binary, f"TCP-LISTEN:{socat_port},bind=127.0.0.1,fork,reuseaddr", f"TCP:{upstream}"]
    )
    rounds = []
    try:
        network_daemons.start_or_register_daemon({"name": "bench"}, {})
        proxy = network_daemons.declare_proxy_from_spec({"name": "bench", "upstream": upstream})
        endpoints = {
            "direct": endpoint,
            "ours": f"tcp://{proxy.listen}",
            "socat": f"tcp://127.0.0.1:{socat_port}",
        }
        for path in PATHS:  # warm-up, not recorded
            asyncio.run(measure(endpoints[path], CLIENTS, REQUESTS // 5))
        for index in range(args.rounds):
            order = round_order(PATHS, index)
            rps = {path: asyncio.run(measure(endpoints[path], CLIENTS, REQUESTS))["rps"] for path in order}
            rounds.append({"order": "-".join(order), **{p: round(rps[p]) for p in PATHS}})
            print(f"round {index + 1}: " + ", ".join(f"{p} {rps[p]:.0f} req/s" for p in PATHS), flush=True)
    finally:
        network_daemons.teardown()
        for child in (socat, echo):
            child.terminate()
            child.wait()

    ratios = {p: round(statistics.median(r[p] / r["direct"] for r in rounds), 3) for p in ("ours", "socat")}
    print(f"throughput / direct, median of rounds: {ratios}")
    if args.no_record:
        return
    info = machine()
    record = {**info, "clients": CLIENTS, "requests": REQUESTS, "ratio_to_direct": ratios, "rounds": rounds}
    lines = [
        "# Proxy throughput reference: ours vs socat (C) vs direct, 50 clients",
        "",
        machine_line(info),
        "",
        f"Throughput / direct, median of {len(rounds)} interleaved rounds: "
        f"ours **{ratios['ours']}**, socat **{ratios['socat']}**.",
        "",
        "| round | order | " + " | ".join(f"{p} req/s" for p in PATHS) + " |",
        "| ---: | --- | " + " | ".join("---:" for _ in PATHS) + " |",
        *(
            f"| {i + 1} | {r['order']} | " + " | ".join(str(r[p]) for p in PATHS) + " |"
            for i, r in enumerate(rounds)
        ),
        "",
    ]
    write_results("proxy_reference", record, "\n".join(lines))


if __name__ == "__main__":
    main()
