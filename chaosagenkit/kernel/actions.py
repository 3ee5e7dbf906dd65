"""Chaos Toolkit actions: real packet faults on the link between the run's callers and its target.

The network is the one the experiment's control declares (``"network":
{"name": "network", "link": "veth"}``); ``network`` names it. Every action
takes ``direction`` ("to_target": the callers' packets to the target,
"to_callers": the answers, or "both") and ``duration_s``, a TTL (default
300 s, above 0) after which the fault expires by itself, in the kernel or
the relay, even if the chaos process is gone. Each returns the fault as
``{"id": "f1", "kind": ..., "mechanism": "nft" | "tbf" | "netem" | "relay",
"seen": 0, "acted": 0, "live": true, ...}`` and records it on the run's
fault timeline. A kind already live on a direction is refused: clear it
first. Delay, duplication, reordering and corruption need tc's netem qdisc
or a network declared with ``"link": "relay"``; elsewhere they fail with
that reason and change nothing.
"""

from typing import Any

from chaosagenkit.activity import activity, require_choice, require_number, require_text
from chaosagenkit.kernel import network as kernel_network
from chaosagenkit.kernel.faults import BLACKHOLE_SCOPES, DIRECTIONS, MAX_TTL_S, parse_spec

__all__ = [
    "clear_packet_faults",
    "inject_bandwidth_limit",
    "inject_blackhole",
    "inject_packet_corruption",
    "inject_packet_delay",
    "inject_packet_duplication",
    "inject_packet_loss",
    "inject_packet_reordering",
]

#: Default TTL (seconds) of a kernel fault, as for every other fault.
DEFAULT_TTL_S = 300.0
DEFAULT_NETWORK = kernel_network.DEFAULT_NAME


@activity
def inject_packet_loss(
    loss_rate: float,
    correlation: float = 0.0,
    direction: str = "both",
    duration_s: float = DEFAULT_TTL_S,
    network: str = DEFAULT_NETWORK,
) -> dict[str, Any]:
    """Drop a share of the packets on the link, in the kernel (nftables).

    ``loss_rate`` (0 < p <= 1) is the share dropped: exactly round(p * 1000)
    of every 1000 packets, in a pattern drawn from the run's seed;
    ``correlation`` (0 <= c < 1) makes losses come in bursts with the same
    mean. The kernels on both sides retransmit what is lost.
    """
    return _inject(network, direction, duration_s, "loss", loss_rate=loss_rate, correlation=correlation)


@activity
def inject_packet_delay(
    delay_ms: float,
    jitter_ms: float = 0.0,
    direction: str = "both",
    duration_s: float = DEFAULT_TTL_S,
    network: str = DEFAULT_NETWORK,
) -> dict[str, Any]:
    """Delay every packet on the link by ``delay_ms`` +/- ``jitter_ms`` (uniform), keeping their order."""
    return _inject(network, direction, duration_s, "delay", delay_ms=delay_ms, jitter_ms=jitter_ms)


@activity
def inject_packet_duplication(
    rate: float, direction: str = "both", duration_s: float = DEFAULT_TTL_S, network: str = DEFAULT_NETWORK
) -> dict[str, Any]:
    """Deliver a share ``rate`` (0 < p <= 1) of the packets twice."""
    return _inject(network, direction, duration_s, "duplication", rate=rate)


@activity
def inject_packet_reordering(
    rate: float,
    gap_ms: float = 10.0,
    direction: str = "both",
    duration_s: float = DEFAULT_TTL_S,
    network: str = DEFAULT_NETWORK,
) -> dict[str, Any]:
    """Hold a share ``rate`` of the packets back by ``gap_ms``, so the packets after them overtake."""
    return _inject(network, direction, duration_s, "reordering", rate=rate, gap_ms=gap_ms)


@activity
def inject_packet_corruption(
    rate: float, direction: str = "both", duration_s: float = DEFAULT_TTL_S, network: str = DEFAULT_NETWORK
) -> dict[str, Any]:
    """Flip one random bit in a share ``rate`` of the packets; the receiver's checksums drop them."""
    return _inject(network, direction, duration_s, "corruption", rate=rate)


@activity
def inject_bandwidth_limit(
    rate_kbps: int, direction: str = "both", duration_s: float = DEFAULT_TTL_S, network: str = DEFAULT_NETWORK
) -> dict[str, Any]:
    """Limit the link to ``rate_kbps`` kilobits per second (tc tbf; a 500 ms queue, then drops)."""
    return _inject(network, direction, duration_s, "bandwidth", rate_kbps=rate_kbps)


@activity
def inject_blackhole(
    scope: str = "all",
    direction: str = "both",
    duration_s: float = DEFAULT_TTL_S,
    network: str = DEFAULT_NETWORK,
) -> dict[str, Any]:
    """Silently drop packets on the link: no RST, no ICMP, nothing arrives.

    ``scope`` "all": every packet (established connections go silent);
    "new": only SYNs that open a connection (a server that cannot be
    reached; connections already open go on).
    """
    require_choice(scope, "scope", BLACKHOLE_SCOPES)
    return _inject(network, direction, duration_s, "blackhole", scope=scope)


@activity
def clear_packet_faults(fault: str = "", network: str = DEFAULT_NETWORK) -> list[str]:
    """Remove packet fault ``fault`` (an id like "f1"), or every one; return the ids removed.

    Their counters stay readable (``packet_fault_stats``).
    """
    require_text(network, "network")
    return kernel_network.get_network(network).clear(fault or None)


def _inject(network: str, direction: str, duration_s: float, kind: str, **values: Any) -> dict[str, Any]:
    require_text(network, "network")
    require_choice(direction, "direction", DIRECTIONS)
    require_number(duration_s, "duration_s", minimum=0, exclusive_minimum=True, maximum=MAX_TTL_S)
    spec = parse_spec(kind, **values)
    return kernel_network.get_network(network).inject(spec, direction, float(duration_s))
