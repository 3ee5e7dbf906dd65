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
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from chaosagenkit.exceptions import ConfigurationError

__all__ = ["MIB", "PAGE", "HostResources", "available_memory_mib"]

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
        return {
            "memory_held_mib": sum(len(b) for b in self._memory.values()) // MIB,
            "cpu_threads": sum(1 for _, workers in self._cpu.values() for w in workers if w.is_alive()),
        }
