"""Kernel packet faults as plain data: what to do to the packets, and which mechanism does it.

A fault is a ``FaultSpec`` (its kind and numbers, units in the field names),
a direction and a TTL. ``mechanism_for`` picks the mechanism from what the
machine offers, by a rule measured on real namespaces (docs/kernel.md):

- loss and black holes: an nftables rule in the receiving namespace (the
  kernel drops the packet; nothing in user space touches the path);
- bandwidth: tc's ``tbf`` qdisc on the sending side's link device;
- delay with jitter, duplication, reordering, corruption: tc's ``netem``
  where the kernel has it, else the TUN relay (a user-space packet path,
  only on a network declared with ``link: relay``).

Nothing here runs a command.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from chaosagenkit.exceptions import ConfigurationError

__all__ = [
    "BLACKHOLE_SCOPES",
    "DIRECTIONS",
    "KINDS",
    "LINKS",
    "MAX_TTL_S",
    "Fault",
    "FaultSpec",
    "check_fault",
    "loss_probability",
    "mechanism_for",
    "parse_spec",
    "unavailable_mechanism_reason",
]

#: ``to_target``: packets from the callers to the target; ``to_callers``: the answers.
DIRECTIONS = ("both", "to_target", "to_callers")
#: ``veth``: a veth pair between the two namespaces; ``relay``: two TUN devices joined by the relay.
LINKS = ("veth", "relay")
#: ``all``: every packet; ``new``: only SYNs that open a connection (established ones go on).
BLACKHOLE_SCOPES = ("all", "new")
#: The longest TTL a kernel fault may have (one day): nft set timeouts and timers hold it.
MAX_TTL_S = 86_400.0
MAX_DELAY_MS = 60_000.0
MAX_RATE_KBPS = 10_000_000


@dataclass(frozen=True)
class FaultSpec:
    """One packet fault. Only the fields of its ``kind`` matter; the others stay at 0.

    - ``loss``: ``loss_rate`` (0 < p <= 1), ``correlation`` (0 <= c < 1: after a
      loss the next packet is lost with probability c + (1 - c) p, so losses
      come in bursts; the mean stays p);
    - ``delay``: ``delay_ms`` (> 0), ``jitter_ms`` (0 <= j <= delay_ms, uniform);
    - ``duplication``, ``corruption``: ``rate`` (0 < p <= 1; a corrupted packet
      has one bit flipped, which the receiver's checksum catches);
    - ``reordering``: ``rate`` (the share of packets held back) and ``gap_ms``
      (how long they are held, so later packets overtake them);
    - ``bandwidth``: ``rate_kbps`` (kilobits per second);
    - ``blackhole``: ``scope`` ``all`` or ``new`` (SYNs only).
    """

    kind: str
    loss_rate: float = 0.0
    correlation: float = 0.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    rate: float = 0.0
    gap_ms: float = 0.0
    rate_kbps: int = 0
    scope: str = "all"

    def to_dict(self) -> dict[str, Any]:
        """The kind and only the fields that belong to it."""
        return {"kind": self.kind, **{name: getattr(self, name) for name in KINDS[self.kind]}}


#: Each kind and the fields it takes (the rest must be absent).
KINDS: dict[str, tuple[str, ...]] = {
    "loss": ("loss_rate", "correlation"),
    "delay": ("delay_ms", "jitter_ms"),
    "duplication": ("rate",),
    "reordering": ("rate", "gap_ms"),
    "corruption": ("rate",),
    "bandwidth": ("rate_kbps",),
    "blackhole": ("scope",),
}
_FIELDS = {f.name for f in fields(FaultSpec)} - {"kind"}


@dataclass(frozen=True)
class Fault:
    """A fault as injected: its id, spec, direction and TTL (seconds)."""

    id: str
    spec: FaultSpec
    direction: str
    ttl_s: float

    def directions(self) -> tuple[str, ...]:
        """The one-way directions it applies to."""
        return ("to_target", "to_callers") if self.direction == "both" else (self.direction,)


def parse_spec(kind: str, **values: Any) -> FaultSpec:
    """Build and check a ``FaultSpec``; raise ``ConfigurationError`` naming the bad field."""
    if kind not in KINDS:
        raise ConfigurationError("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    unknown = sorted(set(values) - _FIELDS)
    if unknown:
        raise ConfigurationError(unknown[0], "is not a field of any kernel fault")
    foreign = sorted(name for name in values if name not in KINDS[kind])
    if foreign:
        raise ConfigurationError(
            foreign[0], f"does not apply to a {kind} fault (takes {', '.join(KINDS[kind])})"
        )
    spec = FaultSpec(kind=kind, **values)
    _check(spec)
    return spec


def check_fault(direction: str, ttl_s: Any) -> None:
    """Check a fault's direction and TTL."""
    if direction not in DIRECTIONS:
        raise ConfigurationError("direction", f"must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    _number(ttl_s, "duration_s", low=0.0, high=MAX_TTL_S, low_open=True)


def loss_probability(loss_rate: float, correlation: float, lost_last: bool) -> float:
    """The chance that the next packet is lost, after a lost (``lost_last``) or a delivered one.

    A two-state (Gilbert) chain whose long-run mean is ``loss_rate``: after a
    loss c + (1 - c) p, else (1 - c) p. The same model as the proxy's emulated
    ``packet_loss`` toxic, so both mean the same by ``correlation``.
    """
    if lost_last:
        return correlation + (1.0 - correlation) * loss_rate
    return (1.0 - correlation) * loss_rate


def mechanism_for(kind: str, *, link: str, netem: bool) -> str:
    """The mechanism that applies ``kind`` on a ``link`` network (``netem``: the kernel has it).

    Returns "nft", "tbf", "netem" or "relay". Raises ``ConfigurationError``
    (``kind``) when nothing here can apply it, with the one-line reason.
    """
    if kind in ("loss", "blackhole"):
        return "nft"
    if kind == "bandwidth":
        return "tbf"
    if netem:
        return "netem"
    if link == "relay":
        return "relay"
    raise ConfigurationError("kind", unavailable_mechanism_reason(kind))


def unavailable_mechanism_reason(kind: str) -> str:
    return (
        f"{kind} needs tc's netem qdisc, which this kernel does not have, or a network "
        "declared with link 'relay' (a user-space packet path through TUN devices)"
    )


def _check(spec: FaultSpec) -> None:
    if spec.kind == "loss":
        _number(spec.loss_rate, "loss_rate", low=0.0, high=1.0, low_open=True)
        _number(spec.correlation, "correlation", low=0.0, high=1.0, high_open=True)
    elif spec.kind == "delay":
        _number(spec.delay_ms, "delay_ms", low=0.0, high=MAX_DELAY_MS, low_open=True)
        _number(spec.jitter_ms, "jitter_ms", low=0.0, high=spec.delay_ms)
    elif spec.kind in ("duplication", "corruption"):
        _number(spec.rate, "rate", low=0.0, high=1.0, low_open=True)
    elif spec.kind == "reordering":
        _number(spec.rate, "rate", low=0.0, high=1.0, low_open=True)
        _number(spec.gap_ms, "gap_ms", low=0.0, high=MAX_DELAY_MS, low_open=True)
    elif spec.kind == "bandwidth":
        _number(spec.rate_kbps, "rate_kbps", low=8, high=MAX_RATE_KBPS, integer=True)
    elif spec.kind == "blackhole" and spec.scope not in BLACKHOLE_SCOPES:
        raise ConfigurationError("scope", f"must be one of {', '.join(BLACKHOLE_SCOPES)}, got {spec.scope!r}")


def _number(
    value: Any,
    name: str,
    *,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer:
        ok = float(value).is_integer()
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        kind = "an integer" if integer else "a number"
        raise ConfigurationError(name, f"must be {kind} in {left}{low:g}, {high:g}{right}, got {value!r}")
