"""nftables scripts for loss and black holes, and reading their counters back.

One fault, in the namespace that RECEIVES its packets, is (a design rule):

- a set ``live_<id>`` holding the link device's name with the fault's TTL as
  the element's timeout: the kernel itself expires the fault, even if every
  chaosagenkit process is gone;
- a chain ``<id>`` with two counted rules: ``seen`` (every packet that met
  the fault) and ``acted`` (every packet it dropped);
- a jump ``iifname @live_<id> jump <id>`` in the ``faults`` chain, which is
  rebuilt whole on each change (jumps carry no state, so no rule handles
  are needed and counters survive).

Dropping on receipt, not on send, matters: a packet dropped in the sender's
OUTPUT hook fails the sending syscall (``connect`` gets EPERM), which no real
network does; a packet dropped on receipt just never arrives.

Loss is seeded: the rule drops the packets whose ``numgen inc mod 1000``
falls in a set of residues drawn from the run's seed, so the kernel drops
exactly the configured share of every 1000 packets, in a pattern the seed
replays (with ``correlation``, the pattern is one walk of the same chain the
relay uses, and its share is reported as ``pattern_loss_rate``).
"""

from __future__ import annotations

import json
import random
from typing import Any

from chaosagenkit.kernel.faults import FaultSpec, loss_probability
from chaosagenkit.kernel.topology import DEVICE, TABLE

__all__ = [
    "PATTERN_PERIOD",
    "add_fault_script",
    "chain_counters",
    "jump_rules",
    "live",
    "loss_pattern",
    "remove_fault_script",
]

PATTERN_PERIOD = 1000


def loss_pattern(loss_rate: float, correlation: float, rng: random.Random) -> tuple[int, ...]:
    """The residues (0..PATTERN_PERIOD-1) of the packets to drop in each period of 1000.

    Without correlation exactly ``round(loss_rate * 1000)`` residues (at least
    one), chosen by ``rng``; with correlation one walk of the loss chain.
    """
    if correlation == 0.0:
        count = max(1, min(PATTERN_PERIOD, round(loss_rate * PATTERN_PERIOD)))
        return tuple(sorted(rng.sample(range(PATTERN_PERIOD), count)))
    dropped, lost = [], False
    for residue in range(PATTERN_PERIOD):
        lost = rng.random() < loss_probability(loss_rate, correlation, lost)
        if lost:
            dropped.append(residue)
    return tuple(dropped) or (rng.randrange(PATTERN_PERIOD),)


def add_fault_script(
    fault_id: str, spec: FaultSpec, ttl_s: float, pattern: tuple[int, ...], live_ids: list[str]
) -> str:
    """The nft script that adds fault ``fault_id`` beside the faults ``live_ids`` already there."""
    return "\n".join(
        [
            f"add set inet {TABLE} live_{fault_id} {{ type ifname; flags timeout; }}",
            f'add element inet {TABLE} live_{fault_id} {{ "{DEVICE}" timeout {_ms(ttl_s)}ms }}',
            f"add chain inet {TABLE} {fault_id}",
            f'add rule inet {TABLE} {fault_id} counter comment "seen"',
            f'add rule inet {TABLE} {fault_id} {_match(spec, pattern)}counter drop comment "acted"',
            *jump_rules([*live_ids, fault_id]),
            "",
        ]
    )


def remove_fault_script(fault_id: str, remaining_ids: list[str]) -> str:
    """The nft script that removes fault ``fault_id`` and keeps ``remaining_ids``."""
    return "\n".join(
        [
            *jump_rules(remaining_ids),
            f"flush chain inet {TABLE} {fault_id}",
            f"delete chain inet {TABLE} {fault_id}",
            f"delete set inet {TABLE} live_{fault_id}",
            "",
        ]
    )


def jump_rules(fault_ids: list[str]) -> list[str]:
    """Rebuild the ``faults`` chain: one jump per fault, taken while its set holds the device."""
    return [f"flush chain inet {TABLE} faults"] + [
        f"add rule inet {TABLE} faults iifname @live_{i} jump {i}" for i in fault_ids
    ]


def chain_counters(listing: str) -> dict[str, int]:
    """``{"seen": packets, "acted": packets}`` from ``nft -j list chain inet chaosagenkit <id>``."""
    counters = {"seen": 0, "acted": 0}
    for item in _items(listing):
        rule = item.get("rule")
        if not rule or rule.get("comment") not in counters:
            continue
        for expr in rule.get("expr", []):
            if "counter" in expr:
                counters[rule["comment"]] += int(expr["counter"].get("packets", 0))
    return counters


def live(listing: str) -> bool:
    """True while the set of ``nft -j list set ...`` still holds its element (TTL not reached)."""
    return any("set" in item and item["set"].get("elem") for item in _items(listing))


def _match(spec: FaultSpec, pattern: tuple[int, ...]) -> str:
    if spec.kind == "loss":
        return f"numgen inc mod {PATTERN_PERIOD} {{ {', '.join(map(str, pattern))} }} "
    if spec.kind == "blackhole" and spec.scope == "new":
        return "tcp flags & (syn | ack) == syn "
    if spec.kind == "blackhole":
        return ""
    raise ValueError(f"nft does not apply {spec.kind} faults")


def _items(listing: str) -> list[dict[str, Any]]:
    try:
        return list(json.loads(listing).get("nftables", []))
    except (ValueError, AttributeError):
        return []


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
