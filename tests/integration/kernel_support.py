"""What the kernel-fault integration tests share: the root skip, polling, sockets in a namespace.

Every test here runs only inside namespaces the test's own network created
(198.18.0.1 <-> 198.18.0.2); without root or a tool it is skipped with the
one-line reason the product itself gives.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from chaosagenkit.kernel import system
from chaosagenkit.kernel.network import KernelNetwork
from chaosagenkit.kernel.topology import CALLERS_ADDRESS, TARGET_ADDRESS
from tests.polling import wait_for

REASON = system.unavailable_reason()
needs_kernel = pytest.mark.skipif(REASON is not None, reason=REASON or "")
needs_tun = pytest.mark.skipif(
    REASON is not None or system.tun_unavailable_reason() is not None,
    reason=REASON or system.tun_unavailable_reason() or "",
)


@contextmanager
def kernel_network(link: str = "veth", seed: int = 42) -> Iterator[KernelNetwork]:
    """A built network of the test's own, always torn down, checked gone afterwards."""
    network = KernelNetwork("test", link=link, seed=seed)
    network.build()
    try:
        yield network
    finally:
        assert network.teardown() == []
        assert not set(network.topology.namespaces) & set(system.list_namespaces())


def socket_in(network: KernelNetwork, side: str, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A socket born in ``side``'s namespace (it stays there whatever thread uses it)."""
    return system.in_namespace(network.topology.namespace(side), lambda: socket.socket(socket.AF_INET, kind))


@contextmanager
def tcp_pair(network: KernelNetwork) -> Iterator[tuple[socket.socket, socket.socket, socket.socket]]:
    """(listener in target, connected client in callers, accepted server side)."""
    listener = socket_in(network, "target")
    listener.bind((TARGET_ADDRESS, 0))
    listener.listen()
    client = socket_in(network, "callers")
    client.settimeout(10.0)
    client.connect((TARGET_ADDRESS, listener.getsockname()[1]))
    server, _ = listener.accept()
    server.settimeout(10.0)
    try:
        yield listener, client, server
    finally:
        for s in (client, server, listener):
            s.close()


def send_datagrams(network: KernelNetwork, count: int, port: int = 9) -> None:
    """``count`` UDP datagrams from the callers to the target (to_target direction)."""
    sender = socket_in(network, "callers", socket.SOCK_DGRAM)
    with sender:
        sender.bind((CALLERS_ADDRESS, 0))
        for i in range(count):
            sender.sendto(i.to_bytes(4, "big"), (TARGET_ADDRESS, port))


def root_namespace_view() -> tuple[str, str]:
    """The chaos process's own links and nft ruleset: what no test may change."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = "\n".join(sorted(line.split(":")[1].strip() for line in links.splitlines() if ":" in line))
    ruleset = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    return names, ruleset
