"""Kernel faults on real packets between two namespaces of the test's own (root only)."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess

import pytest

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.kernel import guard, nft, system
from chaosagenkit.kernel.faults import parse_spec
from chaosagenkit.kernel.topology import TARGET_ADDRESS, new_run_id
from chaosagenkit.seeds import derive_seed
from tests.integration.kernel_support import (
    kernel_network,
    needs_kernel,
    needs_tun,
    root_namespace_view,
    send_datagrams,
    tcp_pair,
)
from tests.polling import wait_for

#: one at a time beside other kernel tests (make test: pytest -n 2 --dist loadgroup)
pytestmark = [needs_kernel, pytest.mark.xdist_group("kernel")]


def test_nothing_outside_the_run_namespaces_changes():
    before = root_namespace_view()
    with kernel_network() as network:
        network.inject(parse_spec("loss", loss_rate=0.5), "both", 60)
        network.inject(parse_spec("bandwidth", rate_kbps=1000), "both", 60)
        assert root_namespace_view() == before
        network.clear()
    assert root_namespace_view() == before


@pytest.mark.parametrize("rate", [0.1, 0.2, 0.3])
def test_loss_drops_exactly_the_configured_share_of_each_1000_packets(rate):
    with kernel_network() as network:
        fault = network.inject(parse_spec("loss", loss_rate=rate), "to_target", 60)
        assert (fault["mechanism"], fault["pattern_loss_rate_to_target"]) == ("nft", rate)
        send_datagrams(network, 2000)
        stats = network.fault_stats(fault["id"])
        assert (stats["seen"], stats["acted"]) == (2000, round(2 * 1000 * rate))


def test_the_kernel_drops_exactly_the_packets_the_seed_chose():
    def dropped(seed: int) -> list[int]:
        with kernel_network(seed=seed) as network:
            network.inject(parse_spec("loss", loss_rate=0.2), "to_target", 60)
            receiver = socket_in_target(network)
            send_datagrams(network, 200, port=receiver.getsockname()[1])
            got = set()
            receiver.settimeout(0.5)
            try:
                while len(got) < 200:
                    got.add(int.from_bytes(receiver.recv(16), "big"))
            except TimeoutError:
                pass
            receiver.close()
            return sorted(set(range(200)) - got)

    def chosen(seed: int) -> list[int]:  # datagram n meets numgen counter n (nothing else crosses)
        pattern = nft.loss_pattern(0.2, 0.0, random.Random(derive_seed(seed, "test:f1:to_target")))
        return [r for r in pattern if r < 200]

    assert dropped(7) == chosen(7)
    assert dropped(8) == chosen(8) != chosen(7)


def socket_in_target(network):
    receiver = system.in_namespace(
        network.topology.namespace("target"), lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    )
    receiver.bind((TARGET_ADDRESS, 0))
    return receiver


def test_loss_makes_the_kernel_retransmit_and_tcp_still_delivers_everything():
    with kernel_network() as network, tcp_pair(network) as (_, client, server):
        network.inject(parse_spec("loss", loss_rate=0.3), "both", 60)
        # A hang guard, not a bound: at 30 % loss both ways TCP's retransmission timeout doubles
        # after each loss in a row (1, 2, 4, 8 s ...), well past tcp_pair's 10 s.
        server.settimeout(120.0)
        client.settimeout(120.0)
        payload = os.urandom(200_000)
        client.sendall(payload)
        received = b""
        while len(received) < len(payload):
            received += server.recv(65536)
        assert received == payload
        assert network.tcp_counters("callers")["Tcp.RetransSegs"] >= 1
        assert network.fault_stats()["acted"] >= 1


def test_blackhole_of_new_connections_leaves_established_ones_alone():
    with kernel_network() as network, tcp_pair(network) as (listener, client, server):
        fault = network.inject(parse_spec("blackhole", scope="new"), "to_target", 60)
        late = socket_in(network)
        late.settimeout(1.5)  # long enough for the kernel's first SYN retry (1 s)
        with late, pytest.raises(TimeoutError):
            late.connect((TARGET_ADDRESS, listener.getsockname()[1]))
        client.sendall(b"still here")
        assert server.recv(100) == b"still here"
        assert network.fault_stats(fault["id"])["acted"] >= 2
        assert network.tcp_counters("callers")["TcpExt.TCPSynRetrans"] >= 1


def socket_in(network):
    return system.in_namespace(network.topology.namespace("callers"), lambda: socket.socket())


def test_blackhole_silences_an_established_connection_without_reset():
    with kernel_network() as network, tcp_pair(network) as (_, client, server):
        network.inject(parse_spec("blackhole"), "both", 60)
        client.sendall(b"into the void")
        wait_for(lambda: network.tcp_counters("callers")["Tcp.RetransSegs"] >= 2, what="retransmissions")
        connections = network.tcp_connections("callers")
        assert [(c["state"], c["unacked_bytes"], c["timer"]) for c in connections] == [
            ("ESTABLISHED", len(b"into the void"), "retransmit")
        ]
        network.clear()
        server.settimeout(30.0)
        assert server.recv(100) == b"into the void"  # delivered by the next retransmission


def test_nft_faults_expire_in_the_kernel():
    with kernel_network() as network:
        fault = network.inject(parse_spec("loss", loss_rate=1.0), "to_target", 0.3)
        wait_for(lambda: not network.fault_stats(fault["id"])["live"], what="the nft set element to expire")
        before = network.fault_stats(fault["id"])["acted"]
        send_datagrams(network, 100)
        assert network.fault_stats(fault["id"])["acted"] == before
        # an expired fault no longer blocks a new one of its kind
        network.inject(parse_spec("loss", loss_rate=0.5), "to_target", 60)


def test_a_second_live_fault_of_a_kind_is_refused():
    with kernel_network() as network:
        network.inject(parse_spec("loss", loss_rate=0.1), "to_callers", 60)
        with pytest.raises(ConfigurationError, match="already live on to_callers"):
            network.inject(parse_spec("loss", loss_rate=0.2), "both", 60)
        network.inject(parse_spec("loss", loss_rate=0.2), "to_target", 60)


def qdiscs(network, side):
    return subprocess.run(
        ["tc", "-n", network.topology.namespace(side), "qdisc", "show", "dev", "cak0"],
        capture_output=True,
        text=True,
    ).stdout


def test_bandwidth_limit_is_tbf_and_the_guard_expires_it():
    with kernel_network() as network:
        fault = network.inject(parse_spec("bandwidth", rate_kbps=800), "to_target", 0.5)
        assert fault["mechanism"] == "tbf"
        assert "tbf" in qdiscs(network, "callers") and "tbf" not in qdiscs(network, "target")
        wait_for(lambda: "tbf" not in qdiscs(network, "callers"), what="the guard to remove the qdisc")


def test_delay_without_netem_on_a_veth_link_is_refused_with_the_reason():
    with kernel_network() as network:
        if network.netem:
            pytest.skip("this kernel has netem: delay is applied by it")
        with pytest.raises(ConfigurationError, match="netem qdisc, which this kernel does not have"):
            network.inject(parse_spec("delay", delay_ms=10), "both", 60)
        assert network.faults() == []


@needs_tun
def test_relay_delays_duplicates_and_corrupts_real_packets():
    with kernel_network(link="relay") as network, tcp_pair(network) as (_, client, server):
        delay = network.inject(parse_spec("delay", delay_ms=5, jitter_ms=2), "to_target", 60)
        duplication = network.inject(parse_spec("duplication", rate=0.5), "to_target", 60)
        corruption = network.inject(parse_spec("corruption", rate=0.3), "to_callers", 60)
        assert {delay["mechanism"], duplication["mechanism"], corruption["mechanism"]} == {"relay"}
        for i in range(30):
            message = f"ping {i}".encode()
            client.sendall(message)
            assert server.recv(100) == message
            server.sendall(message.upper())
            assert client.recv(100) == message.upper()
        assert network.fault_stats(delay["id"])["acted"] == network.fault_stats(delay["id"])["seen"] > 0
        assert network.fault_stats(duplication["id"])["acted"] > 0
        assert network.fault_stats(corruption["id"])["acted"] > 0
        assert network.tcp_counters("callers")["Tcp.InCsumErrors"] > 0  # the kernel caught the flipped bits


@needs_tun
def test_relay_faults_expire_on_the_relays_clock():
    with kernel_network(link="relay") as network:
        fault = network.inject(parse_spec("reordering", rate=0.5, gap_ms=5), "both", 0.3)
        wait_for(lambda: not network.fault_stats(fault["id"])["live"], what="the relay fault to expire")


def test_sweep_removes_namespaces_of_dead_runs_only():
    dead = subprocess.run(["true"], check=True)  # noqa: F841 -- a pid that no longer runs
    run_id = new_run_id()
    stale = [f"chaosagenkit-{run_id}-callers", f"chaosagenkit-{run_id}-target"]
    orphan = f"chaosagenkit-{new_run_id()}-target"  # no state file at all
    with kernel_network() as live:
        for ns in [*stale, orphan]:
            subprocess.run(["ip", "netns", "add", ns], check=True)
        state = guard.state_path(run_id)
        with open(state, "w") as f:
            json.dump({"run_id": run_id, "owner_pid": 2**22 + 1, "owner_start": 1, "namespaces": stale}, f)
        deleted = guard.sweep_stale()
        assert sorted(deleted) == sorted([*stale, orphan])
        assert set(live.topology.namespaces) <= set(system.list_namespaces())
        assert not os.path.exists(state)
