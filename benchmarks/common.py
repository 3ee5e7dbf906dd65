"""What the benchmark scripts share: the plain echo server, the RemoteAgent load, the record.

Rules every benchmark here follows, stated once:

- each server or proxy under test runs in its own child process on
  127.0.0.1 (``start_child``), prints one JSON line when ready and exits by
  itself when its parent goes (``wait_for_parent_exit``), so a killed
  benchmark leaves nothing behind;
- the sides compared run in interleaved rounds (``round_order``), so the
  machine's drift hits all of them alike;
- results go to ``benchmarks/results/<name>.json`` and ``<name>.md``
  (``write_results``), with the commit they measured (``machine``).

Child processes import this module before they serve, so it imports
nothing heavy at module level (agenkit only inside the functions that use it).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

# Run with ``python -c`` from ROOT, where ``benchmarks`` is importable.
_PLAIN_ECHO = """
import asyncio
from benchmarks.common import serve_plain_echo
asyncio.run(serve_plain_echo())
"""


async def wait_for_parent_exit() -> None:
    """Return once the process that started this one has gone (its pid is no longer our parent)."""
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(0.2)


async def serve_plain_echo() -> None:
    """Serve the echo target with agenkit's ``LocalAgent`` alone on an ephemeral tcp port; print its endpoint."""
    from agenkit.adapters.python import LocalAgent

    from chaosagenkit.targets import echo

    server = LocalAgent(echo(), endpoint="tcp://127.0.0.1:0")
    await server.start()
    port = server._server.sockets[0].getsockname()[1]
    print(json.dumps({"endpoint": f"tcp://127.0.0.1:{port}"}), flush=True)
    await wait_for_parent_exit()


def start_child(script: str, *args: str) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Run ``script`` with ``python -c`` from the repository root; return the process and its ready line."""
    child = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert child.stdout is not None
        return child, json.loads(child.stdout.readline())
    except BaseException:
        child.terminate()
        child.wait()
        raise


def start_plain_echo() -> tuple[subprocess.Popen[bytes], str]:
    """Start the plain agenkit echo server (``serve_plain_echo``) in a child process; return it and its endpoint."""
    child, ready = start_child(_PLAIN_ECHO)
    return child, ready["endpoint"]


async def measure(endpoint: str, callers: int, requests: int) -> dict[str, Any]:
    """Send ``requests`` echo requests from ``callers`` RemoteAgents, one loop each.

    A RemoteAgent serialises its requests, hence one per caller. Connecting
    happens before the clock starts. Returns the requests sent (``requests``
    rounded down to a multiple of ``callers``), requests/s and every round
    trip in ms; raises AssertionError when an answer does not carry its
    request's id.
    """
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
        await asyncio.gather(*(r._ensure_connected() for r in remotes))
        started = time.perf_counter()
        await asyncio.gather(*(loop(remote, i) for i, remote in enumerate(remotes)))
        elapsed = time.perf_counter() - started
    finally:
        await asyncio.gather(*(r.close() for r in remotes), return_exceptions=True)
    sent_total = per_caller * callers
    return {"requests": sent_total, "rps": sent_total / elapsed, "round_trips_ms": round_trips}


def round_order[T](sides: Sequence[T], index: int) -> tuple[T, ...]:
    """The order the sides run in round ``index``: rotated by one each round (A-B, B-A, ... for two)."""
    shift = index % len(sides)
    return (*sides[shift:], *sides[:shift])


def git_commit(*watched: str) -> str:
    """The short hash of HEAD, ``-dirty`` added if a ``watched`` path has uncommitted changes; "unknown" without git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        if not watched:
            return head.stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", *watched], cwd=ROOT, capture_output=True, text=True
        )
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def machine(*watched: str) -> dict[str, Any]:
    """Where and when a result was measured: commit (see ``git_commit``), UTC date, Python, platform, CPUs, agenkit."""
    from importlib.metadata import version

    return {
        "commit": git_commit(*watched),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "agenkit": version("agenkit"),
    }


def machine_line(info: dict[str, Any]) -> str:
    """The Markdown sentence that says where and when (``machine()``'s dict)."""
    return (
        f"Commit `{info['commit']}`, {info['date']}, Python {info['python']}, {info['cpus']} CPUs, "
        f"agenkit {info['agenkit']}, {info['platform']}."
    )


def write_results(name: str, record: dict[str, Any], markdown: str) -> None:
    """Write ``record`` to ``results/<name>.json`` (indented, as people read it) and ``markdown`` to ``<name>.md``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
