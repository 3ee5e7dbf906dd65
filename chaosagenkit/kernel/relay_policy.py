"""The relay's per-packet decision: drop, delay, duplicate, hold back, corrupt. Pure.

``PathPolicy`` decides the fate of each packet of ONE direction, in arrival
order, from the direction's active faults (``PathFaults``), the clock and
the packet's size, with its own ``random.Random`` derived from the run's
seed. It draws the same six numbers for every packet whatever is active,
so the n-th packet's loss decision is the same with or without a delay
beside it: one seed replays every decision of a given packet sequence.

Ordering: delay and jitter keep packets in order (a packet never leaves
before the one that arrived before it, as on one wire); only a reordering
fault lets later packets overtake, by holding a share of packets back for
``gap_ms`` more. Each returned ``Send`` says when to write the packet and,
for a corrupted copy, which bit to flip (the receiver's IP or TCP checksum
then rejects it, as with noise on a real wire).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from chaosagenkit.kernel.faults import FaultSpec, loss_probability

__all__ = ["Decision", "PathFaults", "PathPolicy", "Send"]


@dataclass(frozen=True)
class PathFaults:
    """The faults active on one direction, combined (0 = off)."""

    loss_rate: float = 0.0
    correlation: float = 0.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    gap_ms: float = 0.0
    corrupt_rate: float = 0.0

    @classmethod
    def of(cls, specs: list[FaultSpec]) -> PathFaults:
        """Combine the specs of one direction (at most one per kind)."""
        values: dict[str, float] = {}
        for spec in specs:
            if spec.kind == "loss":
                values.update(loss_rate=spec.loss_rate, correlation=spec.correlation)
            elif spec.kind == "delay":
                values.update(delay_ms=spec.delay_ms, jitter_ms=spec.jitter_ms)
            elif spec.kind == "duplication":
                values["duplicate_rate"] = spec.rate
            elif spec.kind == "reordering":
                values.update(reorder_rate=spec.rate, gap_ms=spec.gap_ms)
            elif spec.kind == "corruption":
                values["corrupt_rate"] = spec.rate
        return cls(**values)


@dataclass(frozen=True)
class Send:
    """Write the packet (or its copy) at ``at_ms``; flip bit ``corrupt_bit`` first when set."""

    at_ms: float
    corrupt_bit: int | None = None


@dataclass(frozen=True)
class Decision:
    """What happens to one packet: its sends (none = dropped) and which faults acted."""

    sends: tuple[Send, ...]
    lost: bool = False
    delayed: bool = False
    duplicated: bool = False
    reordered: bool = False
    corrupted: bool = False


class PathPolicy:
    """Decides, packet by packet, what one direction of the relay does."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._lost_last = False
        self._last_at = float("-inf")

    def decide(self, faults: PathFaults, now_ms: float, size: int) -> Decision:
        """The fate of a packet of ``size`` bytes read at ``now_ms``."""
        u_loss, u_delay, u_dup, u_reorder, u_corrupt, u_bit = (self._rng.random() for _ in range(6))
        if faults.loss_rate > 0.0:
            self._lost_last = u_loss < loss_probability(faults.loss_rate, faults.correlation, self._lost_last)
            if self._lost_last:
                return Decision(sends=(), lost=True)
        delay = faults.delay_ms + (2.0 * u_delay - 1.0) * faults.jitter_ms
        at = max(now_ms + max(0.0, delay), self._last_at)
        reordered = faults.reorder_rate > 0.0 and u_reorder < faults.reorder_rate
        if reordered:
            at += faults.gap_ms  # held back; the next packets keep the in-order clock
        else:
            self._last_at = at
        corrupted = faults.corrupt_rate > 0.0 and u_corrupt < faults.corrupt_rate and size > 0
        bit = min(int(u_bit * size * 8), size * 8 - 1) if corrupted else None
        duplicated = faults.duplicate_rate > 0.0 and u_dup < faults.duplicate_rate
        sends = (Send(at, bit), Send(at)) if duplicated else (Send(at, bit),)
        return Decision(
            sends=sends,
            delayed=faults.delay_ms > 0.0,
            duplicated=duplicated,
            reordered=reordered,
            corrupted=corrupted,
        )
