"""Chaos Toolkit probes: what the packet faults did, and what the kernels did about it.

``namespace`` is "callers" (where the run's clients call from) or "target"
(where the served agent runs); counters come from that namespace's own
/proc/net, so they count only the run's traffic. ``since`` is "fault"
(since the last packet fault was injected) or "start" (since the network
was built).
"""

from typing import Any

from chaosagenkit.activity import activity, require_choice, require_text
from chaosagenkit.kernel import network as kernel_network
from chaosagenkit.kernel.topology import SIDES

__all__ = [
    "packet_fault_stats",
    "packet_faults",
    "syn_retransmissions",
    "tcp_connections",
    "tcp_counters",
    "tcp_retransmissions",
]

DEFAULT_NETWORK = kernel_network.DEFAULT_NAME
SINCE = ("fault", "start")


@activity
def packet_faults(network: str = DEFAULT_NETWORK) -> list[dict[str, Any]]:
    """Every packet fault of the run, with ``seen``, ``acted`` and ``live``."""
    require_text(network, "network")
    return kernel_network.get_network(network).faults()


@activity
def packet_fault_stats(fault: str = "", network: str = DEFAULT_NETWORK) -> dict[str, Any]:
    """One packet fault (default: the last injected): ``seen`` packets, ``acted`` on, ``live``.

    ``acted`` counts what the fault did where it did it: packets nftables
    dropped, packets the relay delayed, duplicated, held back or corrupted,
    packets tbf held or dropped. It is the evidence that the fault reached
    the traffic; it stays readable after the fault is cleared.
    """
    require_text(network, "network")
    return kernel_network.get_network(network).fault_stats(fault or None)


@activity
def tcp_counters(
    namespace: str = "callers", since: str = "fault", network: str = DEFAULT_NETWORK
) -> dict[str, int]:
    """How the kernel's TCP counters of ``namespace`` changed: retransmissions, SYN retries, timeouts.

    Keys: Tcp.RetransSegs, TcpExt.TCPSynRetrans, TcpExt.TCPTimeouts,
    TcpExt.TCPLossProbes, TcpExt.TCPAbortOnTimeout, Tcp.InCsumErrors,
    Tcp.AttemptFails.
    """
    _check(network, namespace, since)
    return kernel_network.get_network(network).tcp_counters(namespace, since)


@activity
def tcp_retransmissions(
    namespace: str = "callers", since: str = "fault", network: str = DEFAULT_NETWORK
) -> int:
    """Segments the kernel of ``namespace`` retransmitted (Tcp.RetransSegs)."""
    _check(network, namespace, since)
    return kernel_network.get_network(network).tcp_counters(namespace, since)["Tcp.RetransSegs"]


@activity
def syn_retransmissions(
    namespace: str = "callers", since: str = "fault", network: str = DEFAULT_NETWORK
) -> int:
    """SYNs the kernel of ``namespace`` sent again because none was answered (TcpExt.TCPSynRetrans)."""
    _check(network, namespace, since)
    return kernel_network.get_network(network).tcp_counters(namespace, since)["TcpExt.TCPSynRetrans"]


@activity
def tcp_connections(namespace: str = "callers", network: str = DEFAULT_NETWORK) -> list[dict[str, Any]]:
    """The TCP connections of ``namespace``: state, unacked bytes, retransmits, timer, RTO (ms)."""
    _check(network, namespace, "fault")
    return kernel_network.get_network(network).tcp_connections(namespace)


def _check(network: str, namespace: str, since: str) -> None:
    require_text(network, "network")
    require_choice(namespace, "namespace", SIDES)
    require_choice(since, "since", SINCE)
