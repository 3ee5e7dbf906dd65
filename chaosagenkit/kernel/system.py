"""Running ``ip`` / ``nft`` / ``tc``, entering namespaces, and what this machine can do.

The only module of the kernel package besides the relay and the guard that
touches the system. Rules kept here:

- ``unavailable_reason`` says in one line why kernel faults cannot run here
  (not Linux, not root, a tool missing); callers refuse or skip with it.
- A command that fails raises ``KernelError`` with the command and the
  last line of its stderr; ``may_fail`` commands (deleting what may already
  be gone) never raise.
- ``in_namespace`` runs a function in a NEW thread that enters the
  namespace first: ``setns`` changes only the calling thread, and a
  throw-away thread never has to find its way back.
- ``remove_namespaces`` only ever touches names this package made
  (``topology.run_id_of``): it kills what still runs inside them, then
  deletes them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

from chaosagenkit.exceptions import ChaosAgenkitError, TargetError
from chaosagenkit.kernel.topology import Command, run_id_of

__all__ = [
    "NETNS_DIR",
    "KernelError",
    "KernelUnavailable",
    "in_namespace",
    "list_namespaces",
    "namespace_fd",
    "netem_available",
    "process_start_time",
    "read_proc_net",
    "remove_namespaces",
    "run",
    "run_all",
    "tun_unavailable_reason",
    "unavailable_reason",
]

NETNS_DIR = "/run/netns"
TOOLS = {"ip": "iproute2", "nft": "nftables", "tc": "iproute2"}
COMMAND_TIMEOUT_S = 20.0


class KernelUnavailable(ChaosAgenkitError):
    """This machine cannot apply kernel faults (not Linux, not root, a tool missing)."""


class KernelError(TargetError):
    """An ``ip`` / ``nft`` / ``tc`` command failed."""


def unavailable_reason() -> str | None:
    """One line saying why kernel faults cannot run here, or None when they can."""
    if not sys.platform.startswith("linux"):
        return f"kernel faults need Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return f"kernel faults need root for network namespaces (running as uid {os.geteuid()})"
    if not hasattr(os, "setns"):
        return "kernel faults need os.setns (Python >= 3.12)"
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            return f"kernel faults need `{tool}` (package {package}: run scripts/install-system-packages as root)"
    return None


def tun_unavailable_reason() -> str | None:
    """Why the TUN relay cannot run here, or None."""
    if not os.path.exists("/dev/net/tun"):
        return "the relay needs /dev/net/tun (the tun module)"
    return None


def run(command: Command, timeout_s: float = COMMAND_TIMEOUT_S) -> str:
    """Run one command; return its stdout. Raise ``KernelError`` unless it succeeds or ``may_fail``."""
    try:
        done = subprocess.run(
            command.argv,
            input=command.stdin,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        if command.may_fail:
            return ""
        raise KernelError(f"`{' '.join(command.argv)}` could not run: {e}") from e
    if done.returncode != 0 and not command.may_fail:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        why = lines[-1].strip() if lines else f"exit status {done.returncode}"
        raise KernelError(f"`{_short(command)}` failed: {why}")
    return done.stdout


def run_all(commands: list[Command]) -> None:
    for command in commands:
        run(command)


def namespace_fd(namespace: str) -> int:
    """An open fd of the namespace's bind mount (close it yourself)."""
    return os.open(os.path.join(NETNS_DIR, namespace), os.O_RDONLY | os.O_CLOEXEC)


def in_namespace[T](namespace: str, func: Callable[[], T]) -> T:
    """Run ``func()`` in a fresh thread inside ``namespace``; return its result or raise its error."""
    outcome: dict[str, object] = {}

    def body() -> None:
        try:
            fd = namespace_fd(namespace)
            try:
                os.setns(fd, os.CLONE_NEWNET)
            finally:
                os.close(fd)
            outcome["value"] = func()
        except BaseException as e:  # handed to the caller's thread
            outcome["error"] = e

    thread = threading.Thread(target=body, name=f"netns-{namespace}", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def read_proc_net(namespace: str, names: tuple[str, ...]) -> list[str]:
    """The texts of /proc/net/<name> as seen from inside ``namespace``."""

    def read() -> list[str]:
        texts = []
        for name in names:
            with open(f"/proc/thread-self/net/{name}") as f:
                texts.append(f.read())
        return texts

    return in_namespace(namespace, read)


def netem_available(namespace: str) -> bool:
    """Whether this kernel has tc's netem qdisc: try it on the loopback of the run's namespace."""
    tc = ("tc", "-n", namespace, "qdisc")
    run(Command((*tc, "add", "dev", "lo", "root", "netem", "delay", "0ms"), may_fail=True))
    listing = run(Command((*tc, "show", "dev", "lo"), may_fail=True))
    found = "netem" in listing
    if found:
        run(Command((*tc, "del", "dev", "lo", "root"), may_fail=True))
    return found


def list_namespaces() -> list[str]:
    """Every named network namespace (``ip netns add``) on this machine."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def remove_namespaces(namespaces: list[str] | tuple[str, ...]) -> list[str]:
    """Kill what runs inside each namespace of ours, then delete it. Returns the names deleted.

    Names this package did not make are refused (ValueError): nothing else is touched.
    """
    foreign = [ns for ns in namespaces if run_id_of(ns) is None]
    if foreign:
        raise ValueError(f"not a chaosagenkit namespace: {foreign[0]!r}")
    deleted = []
    for ns in namespaces:
        if ns not in list_namespaces():
            continue
        for pid in run(Command(("ip", "netns", "pids", ns), may_fail=True)).split():
            if pid.isdigit() and int(pid) != os.getpid():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        run(Command(("ip", "netns", "delete", ns), may_fail=True))
        if ns not in list_namespaces():
            deleted.append(ns)
    return deleted


def process_start_time(pid: int) -> int | None:
    """The start time (clock ticks since boot) of ``pid``, or None when it does not exist.

    With the pid it identifies a process for good: a pid reused later has another start time.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _short(command: Command) -> str:
    text = " ".join(command.argv)
    return text if len(text) <= 160 else text[:157] + "..."
