"""The chaos host's resources, read from /proc and its control API: fds, agent connections, tasks.

Only for a host this run started (its pid is known): open file descriptors
(``/proc/PID/fd``), connections on its agent port (entries of
``/proc/PID/net/tcp`` and ``tcp6`` whose socket the host owns, on the agent
port, in any state but LISTEN: a CLOSE_WAIT the host never closes counts),
and its asyncio tasks (``GET /stats``: ``asyncio_tasks``). /proc is read
before the control API is called, so the API's own connection is not counted.
``parse_proc_net_tcp`` is pure.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from chaosagenkit.exceptions import TargetError
from chaosagenkit.explore.history import HostSample

__all__ = ["measure_host", "parse_proc_net_tcp", "settle_host"]

_LISTEN = "0A"


def parse_proc_net_tcp(text: str) -> list[tuple[int, str, int]]:
    """(local port, state hex, inode) of every socket in a ``/proc/net/tcp``-style table."""
    rows = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or ":" not in fields[1]:
            continue
        try:
            port = int(fields[1].rsplit(":", 1)[1], 16)
            rows.append((port, fields[3].upper(), int(fields[9])))
        except ValueError:
            continue
    return rows


def measure_host(ref: object) -> HostSample | None:
    """A sample of the host ``ref`` (a ``ServerRef`` this run started), or None if it is not running."""
    process = getattr(ref, "process", None)
    if process is None or process.poll() is not None:
        return None
    pid = process.pid
    try:
        fd_dir = Path(f"/proc/{pid}/fd")
        inodes = set()
        fds = 0
        for entry in os.listdir(fd_dir):
            fds += 1
            try:
                link = os.readlink(fd_dir / entry)
            except OSError:
                continue  # closed while we looked
            if link.startswith("socket:["):
                inodes.add(int(link[len("socket:[") : -1]))
        port = _agent_port(getattr(ref, "endpoint", ""))
        connections = 0
        for table in ("tcp", "tcp6"):
            path = Path(f"/proc/{pid}/net/{table}")
            if port is None or not path.exists():
                continue
            for local_port, state, inode in parse_proc_net_tcp(path.read_text()):
                connections += local_port == port and state != _LISTEN and inode in inodes
    except (FileNotFoundError, ProcessLookupError):
        return None
    return HostSample(time.time(), pid, fds, connections, _tasks(ref))


def settle_host(ref: object, before: HostSample, settle_s: float, poll_s: float = 0.1) -> HostSample | None:
    """Sample until the host is back to ``before``'s counts or ``settle_s`` passed; the last sample."""
    deadline = time.monotonic() + settle_s
    while True:
        sample = measure_host(ref)
        if sample is None or sample.pid != before.pid:
            return sample
        settled = sample.fds <= before.fds and sample.connections <= before.connections
        if settled and (before.tasks is None or sample.tasks is None or sample.tasks <= before.tasks):
            return sample
        if time.monotonic() >= deadline:
            return sample
        time.sleep(poll_s)


def _agent_port(endpoint: str) -> int | None:
    if "://" not in endpoint:
        return None
    rest = endpoint.split("://", 1)[1].split("/", 1)[0]
    _, _, port = rest.rpartition(":")
    return int(port) if port.isdigit() else None


def _tasks(ref: object) -> int | None:
    # Imported on use: it loads aiohttp and chaoslib; other paths here never need it.
    from chaosagenkit.service.hosts import client_for

    try:
        stats = client_for(ref, timeout_s=5.0).get("/stats")  # type: ignore[arg-type]
    except TargetError:
        return None
    tasks = stats.get("asyncio_tasks") if isinstance(stats, dict) else None
    return tasks if isinstance(tasks, int) else None
