"""Memory and CPU pressure inside the chaos host, held per fault id.

- Memory: a ``bytearray`` of N MiB with one byte written in every 4 KiB
  page, so the pages are really resident (a fresh allocation is only
  reserved, and would not show in the process's RSS). Released when the
  fault goes; refused up front when N exceeds 90 % of the machine's
  ``MemAvailable``, because the kernel's OOM killer would otherwise pick a
  victim, maybe not this process.
- CPU: threads that hash a 64 KiB buffer in a loop. ``hashlib`` releases
  the GIL on such buffers, so each thread keeps a core busy and competes
  with the host's event loop for CPU the way another busy process or a
  noisy neighbour would, instead of stalling it on the GIL.
- What the host really uses is read from the kernel (``/proc/self``), never
  from what we think we hold: resident memory (VmRSS), address space
  (VmSize) and CPU time (utime + stime), so a probe can show that pressure
  was real and how far the host's own agent grew.
- A memory limit: ``limit_data_memory(headroom_mib)`` caps the host's data
  memory (RLIMIT_DATA: heap and private writable mappings, VmData) at what
  it uses once serving plus the headroom, so an allocation beyond fails
  with ``MemoryError`` in the host, as it would in a container at its
  limit. Not RLIMIT_AS: the address space also counts glibc's 64 MiB
  per-thread malloc arena reservations (PROT_NONE, never used), which are
  made lazily, so the same headroom left between 32 and 104 MiB usable
  from one run to the next (measured); RLIMIT_DATA counts only pages made
  writable.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import resource
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from chaosagenkit.exceptions import ConfigurationError

__all__ = [
    "MIB",
    "PAGE",
    "HostResources",
    "available_memory_mib",
    "cpu_use",
    "data_limit_mib",
    "limit_data_memory",
    "memory_use",
    "process_usage",
]

MIB = 1024 * 1024
PAGE = 4096
_BURN_CHUNK = b"\x5a" * 65536


def available_memory_mib() -> int | None:
    """``MemAvailable`` of this machine in MiB (None where /proc/meminfo is missing)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def process_usage() -> dict[str, float | None]:
    """This process's use as the kernel counts it: ``rss_mib``, ``data_mib`` and ``cpu_s``.

    Resident memory (VmRSS) and data memory (VmData: what RLIMIT_DATA
    limits) from ``/proc/self/status`` (MiB, 1 decimal), CPU time of every
    thread (user + system, s) from ``/proc/self/stat``; a value that cannot
    be read is None.
    """
    usage: dict[str, float | None] = {"rss_mib": None, "data_mib": None, "cpu_s": None}
    fields = {"VmRSS:": "rss_mib", "VmData:": "data_mib"}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            name = line.split(maxsplit=1)[0] if line else ""
            if name in fields:
                usage[fields[name]] = round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        stat = Path("/proc/self/stat").read_text()
        stat_fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": field 3 (state) onwards
        usage["cpu_s"] = round((int(stat_fields[11]) + int(stat_fields[12])) / os.sysconf("SC_CLK_TCK"), 3)
    except (OSError, ValueError, IndexError):
        pass
    return usage


def data_limit_mib() -> int | None:
    """The soft RLIMIT_DATA in MiB, or None when unlimited."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_DATA)
    return None if soft == resource.RLIM_INFINITY else soft // MIB


def limit_data_memory(headroom_mib: int) -> int:
    """Cap this process's data memory (RLIMIT_DATA) at its current VmData plus ``headroom_mib``.

    Returns the cap in MiB. Raises ``ConfigurationError`` when VmData cannot
    be read or the hard limit is lower than the cap.
    """
    if isinstance(headroom_mib, bool) or not isinstance(headroom_mib, int) or headroom_mib < 1:
        raise ConfigurationError("memory_headroom_mib", f"must be an integer >= 1, got {headroom_mib!r}")
    data_mib = process_usage()["data_mib"]
    if data_mib is None:
        raise ConfigurationError("memory_headroom_mib", "needs /proc/self/status (Linux) to size the limit")
    limit = (math.ceil(data_mib) + headroom_mib) * MIB
    _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY and limit > hard:
        raise ConfigurationError(
            "memory_headroom_mib", f"would exceed the hard data-memory limit ({hard // MIB} MiB)"
        )
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    return limit // MIB


def cpu_use(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float | None]:
    """CPU the host used between two of its stats readings: cores (CPU s per s), CPU s, window s."""
    try:
        cpu_s = float(after["cpu_s"]) - float(before["cpu_s"])
        window_s = float(after["clock_s"]) - float(before["clock_s"])
    except (KeyError, TypeError, ValueError):
        return {"cores": None, "cpu_s": None, "window_s": None}
    cores = round(cpu_s / window_s, 3) if window_s > 0 else None
    return {"cores": cores, "cpu_s": round(cpu_s, 3), "window_s": round(window_s, 3)}


def memory_use(stats: dict[str, Any]) -> dict[str, float | None]:
    """The host's memory from one stats reading (MiB; None for what it does not say).

    RSS now and at start and the growth between them; data memory
    (VmData), its limit, and ``free_mib``: how much more the host may
    allocate before the limit (None without a limit).
    """
    rss, baseline = stats.get("rss_mib"), stats.get("baseline_rss_mib")
    data, limit = stats.get("data_mib"), stats.get("memory_limit_mib")
    return {
        "rss_mib": rss,
        "baseline_rss_mib": baseline,
        "growth_mib": _difference(rss, baseline),
        "data_mib": data,
        "limit_mib": limit,
        "free_mib": _difference(limit, data),
    }


def _difference(a: Any, b: Any) -> float | None:
    numbers = isinstance(a, int | float) and isinstance(b, int | float)
    return round(a - b, 1) if numbers else None


def _allocate(mib: int) -> bytearray:
    buffer = bytearray(mib * MIB)
    buffer[::PAGE] = b"\x01" * len(range(0, len(buffer), PAGE))
    return buffer


def _burn(stop: threading.Event) -> None:
    while not stop.is_set():
        hashlib.sha256(_BURN_CHUNK).digest()


class HostResources:
    """Memory held and CPU threads running, keyed by the fault that asked for them."""

    def __init__(self) -> None:
        self.baseline_rss_mib = process_usage()["rss_mib"]
        self._memory: dict[str, bytearray] = {}
        self._cpu: dict[str, tuple[threading.Event, list[threading.Thread]]] = {}

    @staticmethod
    def check_memory(requests: Iterable[tuple[str, int]]) -> None:
        """Refuse memory requests ((field, mib) pairs) the machine cannot hold safely."""
        available = available_memory_mib()
        requests = list(requests)
        if available is None or not requests:
            return
        limit = int(available * 0.9)
        total = sum(mib for _, mib in requests)
        if total > limit:
            field = requests[-1][0]
            raise ConfigurationError(
                field, f"must keep the total <= {limit} MiB (90% of available memory), got {total} MiB"
            )

    async def hold_memory(self, fault_id: str, mib: int) -> None:
        try:
            self._memory[fault_id] = await asyncio.to_thread(_allocate, mib)
        except MemoryError as e:
            raise ConfigurationError("mib", f"could not be allocated ({mib} MiB): {e}") from e

    def start_cpu(self, fault_id: str, threads: int) -> None:
        stop = threading.Event()
        workers = [
            threading.Thread(target=_burn, args=(stop,), name=f"cpu-pressure-{fault_id}-{i}", daemon=True)
            for i in range(threads)
        ]
        for worker in workers:
            worker.start()
        self._cpu[fault_id] = (stop, workers)

    def release(self, fault_ids: Iterable[str]) -> None:
        for fault_id in list(fault_ids):
            self._memory.pop(fault_id, None)
            stop_workers = self._cpu.pop(fault_id, None)
            if stop_workers is not None:
                stop_workers[0].set()

    def release_all_but(self, keep: set[str]) -> None:
        """Release whatever belongs to a fault not in ``keep`` (removed or expired)."""
        self.release([f for f in (*self._memory, *self._cpu) if f not in keep])

    def held_ids(self) -> set[str]:
        return set(self._memory) | set(self._cpu)

    def stats(self) -> dict[str, Any]:
        """What the faults asked for, and what the kernel says the host uses (see ``process_usage``).

        ``baseline_rss_mib`` is the RSS when the host started; ``clock_s`` a
        monotonic clock (s) to turn two ``cpu_s`` readings into CPU use;
        ``memory_limit_mib`` the data-memory limit (null: none).
        """
        return {
            "memory_held_mib": sum(len(b) for b in self._memory.values()) // MIB,
            "cpu_threads": sum(1 for _, workers in self._cpu.values() for w in workers if w.is_alive()),
            **process_usage(),
            "baseline_rss_mib": self.baseline_rss_mib,
            "memory_limit_mib": data_limit_mib(),
            "clock_s": round(time.monotonic(), 3),
        }
