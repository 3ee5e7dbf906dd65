"""tc commands for the faults a qdisc applies: ``tbf`` (bandwidth) and ``netem`` (where it exists).

A qdisc sits on a device's EGRESS, so a fault on the packets to the target
goes on the callers' link device and one on the answers on the target's.
All tc faults of one device form one tree, rebuilt whole on each change::

    root 1: netem (delay, jitter, duplicate, corrupt, reorder)   when any
      parent 1:1 -> 10: tbf (rate)                               when both
    root 1: tbf (rate)                                           bandwidth only

A qdisc has no TTL of its own, so ``expiry_schedule`` lists, for each
deadline, the tree to install once the faults that expire then are gone;
the run's guard process (``chaosagenkit.kernel.guard``) runs it at that time
even when the chaos process is dead (and deletes the namespaces then anyway).

netem's own random draws come from the kernel and are not seeded; the
relay's are (docs/kernel.md).
"""

from __future__ import annotations

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.kernel.faults import FaultSpec
from chaosagenkit.kernel.topology import DEVICE, MTU, Command

__all__ = ["TBF_QUEUE_MS", "expiry_schedule", "netem_arguments", "qdisc_commands", "tbf_arguments"]

#: How long tbf lets a packet queue before dropping it (a router's buffer).
TBF_QUEUE_MS = 500


def qdisc_commands(namespace: str, specs: list[FaultSpec]) -> list[Command]:
    """Commands that leave ``DEVICE`` in ``namespace`` with exactly the qdiscs of ``specs``."""
    tc = ("tc", "-n", namespace, "qdisc")
    commands = [Command((*tc, "del", "dev", DEVICE, "root"), may_fail=True)]
    bandwidth = [s for s in specs if s.kind == "bandwidth"]
    emulated = [s for s in specs if s.kind != "bandwidth"]
    if emulated:
        commands.append(
            Command((*tc, "add", "dev", DEVICE, "root", "handle", "1:", "netem", *netem_arguments(emulated)))
        )
    if bandwidth:
        where = ("parent", "1:1", "handle", "10:") if emulated else ("root", "handle", "1:")
        commands.append(Command((*tc, "add", "dev", DEVICE, *where, "tbf", *tbf_arguments(bandwidth[0]))))
    return commands


def tbf_arguments(spec: FaultSpec) -> tuple[str, ...]:
    """``rate``, ``burst`` (10 ms of rate, at least two full packets) and ``latency``."""
    burst = max(2 * (MTU + 14), spec.rate_kbps * 1000 // 8 // 100)
    return ("rate", f"{spec.rate_kbps}kbit", "burst", str(burst), "latency", f"{TBF_QUEUE_MS}ms")


def netem_arguments(specs: list[FaultSpec]) -> tuple[str, ...]:
    """netem's arguments for delay, duplication, corruption and reordering together.

    netem reorders by sending a share of packets at once while the others
    wait ``delay``; held-back packets (our ``rate``) are the waiting ones, so
    ``reorder`` gets 1 - rate and ``delay`` the gap. It cannot also delay
    every packet by another amount: a delay and a reordering together are
    refused (the relay does both).
    """
    by_kind = {s.kind: s for s in specs}
    args: list[str] = []
    delay, reorder = by_kind.get("delay"), by_kind.get("reordering")
    if delay and reorder:
        raise ConfigurationError(
            "kind", "netem cannot delay every packet and hold back some by another gap; use link 'relay'"
        )
    if delay:
        args += ["delay", _ms(delay.delay_ms), _ms(delay.jitter_ms)]
    if reorder:
        args += ["delay", _ms(reorder.gap_ms), "reorder", _percent(1.0 - reorder.rate)]
    if "duplication" in by_kind:
        args += ["duplicate", _percent(by_kind["duplication"].rate)]
    if "corruption" in by_kind:
        args += ["corrupt", _percent(by_kind["corruption"].rate)]
    return tuple(args)


def expiry_schedule(
    namespace: str, faults: list[tuple[FaultSpec, float]], now_s: float
) -> list[tuple[float, list[Command]]]:
    """For each deadline (absolute, s) after ``now_s``: (seconds from now, commands to run then)."""
    deadlines = sorted({deadline for _, deadline in faults if deadline > now_s})
    return [
        (deadline - now_s, qdisc_commands(namespace, [spec for spec, d in faults if d > deadline]))
        for deadline in deadlines
    ]


def _ms(value: float) -> str:
    return f"{value:g}ms"


def _percent(share: float) -> str:
    return f"{share * 100:g}%"
