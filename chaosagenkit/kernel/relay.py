"""The TUN relay: a user-space packet path between the run's two namespaces.

``python -m chaosagenkit.kernel.relay --callers NS --target NS --seed N``
creates one TUN device (``cak0``) in each namespace, prints a ready line,
then carries every IP packet that one namespace routes to the other across,
letting ``relay_policy.PathPolicy`` decide its fate (drop, delay, duplicate,
hold back, corrupt). The kernels on both sides see real IP packets arrive
late, twice, out of order or broken, and answer with their own TCP.

Rules kept here:

- It lives as long as its stdin: the chaos process holds the other end, so
  its death (even SIGKILL) ends the relay at once; the TUN devices vanish
  with it (the link goes down, it does not turn into a black hole).
- Commands arrive on stdin as JSON lines and each gets one JSON line back
  on stdout: ``{"op": "add", "id", "direction", "fault": {...}, "ttl_s"}``,
  ``{"op": "remove", "id"}``, ``{"op": "stats"}``.
- Every fault expires on the relay's own clock after ``ttl_s``.
- One ``random.Random`` per direction, derived from the run's seed.
"""

from __future__ import annotations

import argparse
import fcntl
import heapq
import json
import os
import random
import selectors
import signal
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from chaosagenkit.kernel.faults import FaultSpec, parse_spec
from chaosagenkit.kernel.relay_policy import Decision, PathFaults, PathPolicy
from chaosagenkit.kernel.topology import DEVICE
from chaosagenkit.seeds import derive_seed

__all__ = ["Relay", "main", "open_tun"]

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_PACKET = 65536
READ_BATCH = 64
DIRECTIONS = ("to_target", "to_callers")
#: Which decision flag shows that a fault of each kind acted on a packet.
_ACTED = {
    "loss": "lost",
    "delay": "delayed",
    "duplication": "duplicated",
    "reordering": "reordered",
    "corruption": "corrupted",
}


def open_tun(namespace: str, name: str = DEVICE) -> int:
    """Create TUN device ``name`` inside ``namespace`` (this thread enters it); return its fd."""
    ns_fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.setns(ns_fd, os.CLONE_NEWNET)
    finally:
        os.close(ns_fd)
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    request = struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI)
    fcntl.ioctl(fd, TUNSETIFF, request)
    return fd


@dataclass
class _Live:
    direction: str
    spec: FaultSpec
    deadline: float
    seen: int = 0
    acted: int = 0


@dataclass
class _Path:
    read_fd: int
    write_fd: int
    policy: PathPolicy
    faults: PathFaults = field(default_factory=PathFaults)
    stats: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("packets", "bytes", "sent", "lost", "duplicated", "reordered", "corrupted", "write_errors"), 0
        )
    )


class Relay:
    """The relay's state: two paths, the live faults, and the packets waiting to be written."""

    def __init__(self, callers_fd: int, target_fd: int, seed: int) -> None:
        self.paths = {
            "to_target": _Path(
                callers_fd, target_fd, PathPolicy(random.Random(derive_seed(seed, "relay:to_target")))
            ),
            "to_callers": _Path(
                target_fd, callers_fd, PathPolicy(random.Random(derive_seed(seed, "relay:to_callers")))
            ),
        }
        self.faults: dict[str, _Live] = {}
        self.queue: list[tuple[float, int, str, bytes]] = []  # (at_ms, order, direction, packet)
        self._order = 0

    # -- packets ---------------------------------------------------------------

    def receive(self, direction: str, now_ms: float) -> None:
        """Read what is waiting on ``direction``'s device and decide each packet."""
        path = self.paths[direction]
        for _ in range(READ_BATCH):
            try:
                packet = os.read(path.read_fd, MAX_PACKET)
            except BlockingIOError:
                return
            path.stats["packets"] += 1
            path.stats["bytes"] += len(packet)
            decision = path.policy.decide(path.faults, now_ms, len(packet))
            self._count(direction, decision)
            for send in decision.sends:
                data = packet
                if send.corrupt_bit is not None:
                    broken = bytearray(packet)
                    broken[send.corrupt_bit // 8] ^= 1 << (send.corrupt_bit % 8)
                    data = bytes(broken)
                if send.at_ms <= now_ms:
                    self._write(path, data)
                else:
                    self._order += 1
                    heapq.heappush(self.queue, (send.at_ms, self._order, direction, data))

    def flush(self, now_ms: float) -> None:
        """Write every packet whose time has come."""
        while self.queue and self.queue[0][0] <= now_ms:
            _, _, direction, data = heapq.heappop(self.queue)
            self._write(self.paths[direction], data)

    def next_wakeup_ms(self) -> float | None:
        times = [self.queue[0][0]] if self.queue else []
        times += [live.deadline for live in self.faults.values()]
        return min(times) if times else None

    # -- faults ----------------------------------------------------------------

    def add(self, fault_id: str, direction: str, fault: dict[str, Any], ttl_s: float, now_ms: float) -> None:
        spec = parse_spec(**fault)
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        self.faults[fault_id] = _Live(direction, spec, now_ms + ttl_s * 1000.0)
        self._recombine()

    def remove(self, fault_id: str) -> bool:
        removed = self.faults.pop(fault_id, None) is not None
        self._recombine()
        return removed

    def expire(self, now_ms: float) -> None:
        expired = [i for i, live in self.faults.items() if live.deadline <= now_ms]
        for fault_id in expired:
            del self.faults[fault_id]
        if expired:
            self._recombine()

    def stats(self) -> dict[str, Any]:
        return {
            "directions": {d: dict(p.stats) for d, p in self.paths.items()},
            "faults": {i: {"seen": live.seen, "acted": live.acted} for i, live in self.faults.items()},
            "queued": len(self.queue),
        }

    def _recombine(self) -> None:
        for direction, path in self.paths.items():
            path.faults = PathFaults.of([f.spec for f in self.faults.values() if f.direction == direction])

    def _count(self, direction: str, decision: Decision) -> None:
        stats = self.paths[direction].stats
        for flag in ("lost", "duplicated", "reordered", "corrupted"):
            stats[flag] += int(getattr(decision, flag))
        for live in self.faults.values():
            if live.direction == direction:
                live.seen += 1
                live.acted += int(getattr(decision, _ACTED[live.spec.kind]))

    @staticmethod
    def _write(path: _Path, data: bytes) -> None:
        try:
            os.write(path.write_fd, data)
            path.stats["sent"] += 1
        except OSError:  # the receiving kernel refused it (queue full, device going down)
            path.stats["write_errors"] += 1


def _answer(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _command(relay: Relay, line: bytes, now_ms: float) -> None:
    try:
        request = json.loads(line)
        op = request.get("op")
        if op == "add":
            relay.add(
                str(request["id"]), request["direction"], request["fault"], float(request["ttl_s"]), now_ms
            )
            _answer({"ok": True})
        elif op == "remove":
            _answer({"ok": True, "removed": relay.remove(str(request["id"]))})
        elif op == "stats":
            _answer({"ok": True, **relay.stats()})
        else:
            _answer({"ok": False, "error": f"unknown op {op!r}"})
    except Exception as e:  # a bad command is answered, never fatal
        _answer({"ok": False, "error": f"{type(e).__name__}: {e}"})


def serve(relay: Relay) -> None:
    """Relay packets until stdin closes."""
    selector = selectors.DefaultSelector()
    selector.register(relay.paths["to_target"].read_fd, selectors.EVENT_READ, "to_target")
    selector.register(relay.paths["to_callers"].read_fd, selectors.EVENT_READ, "to_callers")
    stdin = sys.stdin.buffer.fileno()
    os.set_blocking(stdin, False)
    selector.register(stdin, selectors.EVENT_READ, "control")
    pending = b""
    while True:
        now = time.monotonic() * 1000.0
        wakeup = relay.next_wakeup_ms()
        timeout = None if wakeup is None else max(0.0, (wakeup - now) / 1000.0)
        for key, _ in selector.select(timeout):
            now = time.monotonic() * 1000.0
            if key.data == "control":
                try:
                    chunk = os.read(stdin, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    return  # the chaos process is gone or done: so are we
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if line.strip():
                        _command(relay, line, now)
            else:
                relay.receive(key.data, now)
        now = time.monotonic() * 1000.0
        relay.flush(now)
        relay.expire(now)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaosagenkit.kernel.relay")
    parser.add_argument("--callers", required=True, help="the callers' namespace")
    parser.add_argument("--target", required=True, help="the target's namespace")
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the chaos process stops us (stdin), not Ctrl-C
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        callers_fd = open_tun(args.callers)
        target_fd = open_tun(args.target)
    except OSError as e:
        print(f"relay: cannot create the TUN devices: {e}", file=sys.stderr)
        return 1
    _answer({"event": "ready", "device": DEVICE, "pid": os.getpid()})
    serve(Relay(callers_fd, target_fd, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
