"""Did a test let its ports go? Asked of the owners of the listening sockets, not of the port.

A test's ports are ephemeral: the moment it releases one, any process may
take it (the other pytest worker's next server, the kernel's choice of a
client's local port; a connect to a free port can even connect to itself).
So "something accepts connections there" is not evidence that the test
left it open, and checking it so failed a CI run. What is evidence: a
socket listening on that port held by this process, one of its
descendants, or an orphaned chaosagenkit process (a child that outlived its
parent, which the process guards in conftest cannot see).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["assert_released", "listening_owners"]

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's "st" column


def assert_released(addresses: Iterable[tuple[str, int]]) -> None:
    """Fail naming the process when one of ours still listens on any of ``addresses``' ports."""
    ours = _tree(os.getpid())
    for host, port in addresses:
        held = [pid for pid in listening_owners(port) if pid in ours or _orphaned_chaosagenkit(pid)]
        assert not held, f"{host}:{port} is still listened on by {', '.join(_describe(p) for p in held)}"


def listening_owners(port: int) -> set[int]:
    """PIDs holding a TCP socket that listens on ``port`` (any address, IPv4 or IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return set()
    owners = set()
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (process / "fd").iterdir()):
                owners.add(int(process.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return owners


def _tree(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for process in Path("/proc").iterdir():
        if process.name.isdigit():
            try:
                parents[int(process.name)] = _ppid(int(process.name))
            except OSError:
                continue
    found = {root}
    grew = True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    return found


def _ppid(pid: int) -> int:
    # pid (comm) state ppid ...; comm may contain spaces, so split after the last ')'
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _orphaned_chaosagenkit(pid: int) -> bool:
    try:
        return _ppid(pid) == 1 and b"chaosagenkit" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _describe(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        command = "?"
    return f"pid {pid} ({command.strip()[:120]})"
