"""Kernel activities and declarations: bad input gets one line and changes nothing (no root needed)."""

from __future__ import annotations

import json
import os

import pytest
from chaoslib.exceptions import ActivityFailed, InterruptExecution

from chaosagenkit import control
from chaosagenkit.kernel import actions, guard, probes, system
from chaosagenkit.kernel import network as kernel_network
from chaosagenkit.kernel.topology import Command
from chaosagenkit.sandbox import SANDBOX
from chaosagenkit.service import hosts as process
from chaosagenkit.suite import _unmet_requirement

#: builds real namespaces as root: one at a time beside the other kernel tests (pytest -n --dist loadgroup)
pytestmark = pytest.mark.xdist_group("kernel")


@pytest.fixture(autouse=True)
def empty_registry():
    assert not kernel_network.NETWORKS
    yield
    assert not kernel_network.NETWORKS
    assert not process.PLACEMENTS


BAD_CALLS = [
    (
        actions.inject_packet_loss,
        {"loss_rate": 1.5},
        "inject_packet_loss: 'loss_rate' must be a number in (0, 1], got 1.5",
    ),
    (
        actions.inject_packet_loss,
        {"loss_rate": 0.1, "direction": "up"},
        "inject_packet_loss: 'direction' must be one of both, to_target, to_callers, got 'up'",
    ),
    (
        actions.inject_packet_delay,
        {"delay_ms": 10, "duration_s": 0},
        "inject_packet_delay: 'duration_s' must be > 0, got 0",
    ),
    (
        actions.inject_packet_delay,
        {"delay_ms": 10, "jitter_ms": 20},
        "inject_packet_delay: 'jitter_ms' must be a number in [0, 10], got 20",
    ),
    (
        actions.inject_blackhole,
        {"scope": "half"},
        "inject_blackhole: 'scope' must be one of all, new, got 'half'",
    ),
    (
        actions.inject_bandwidth_limit,
        {"rate_kbps": 1},
        "inject_bandwidth_limit: 'rate_kbps' must be an integer in [8, 1e+07], got 1",
    ),
    (
        actions.inject_packet_loss,
        {"loss_rate": 0.1, "network": ""},
        "inject_packet_loss: 'network' must be a non-empty string, got ''",
    ),
    (
        actions.inject_packet_loss,
        {"loss_rate": 0.1},
        "inject_packet_loss: 'network' must be a kernel network of this run (none: declare a `network` in the chaosagenkit control), got 'network'",
    ),
    (
        probes.tcp_counters,
        {"namespace": "middle"},
        "tcp_counters: 'namespace' must be one of callers, target, got 'middle'",
    ),
    (
        probes.tcp_retransmissions,
        {"since": "yesterday"},
        "tcp_retransmissions: 'since' must be one of fault, start, got 'yesterday'",
    ),
    (
        probes.packet_fault_stats,
        {},
        "packet_fault_stats: 'network' must be a kernel network of this run (none: declare a `network` in the chaosagenkit control), got 'network'",
    ),
]


@pytest.mark.parametrize(
    "func,arguments,message", BAD_CALLS, ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(BAD_CALLS)]
)
def test_bad_arguments_fail_with_one_line(func, arguments, message):
    with pytest.raises(ActivityFailed) as raised:
        func(**arguments)
    assert str(raised.value) == message


BAD_DECLARATIONS = [
    ({"name": "net", "speed": 1}, "'speed' is not a network field (known: name, link, sysctls, seed)"),
    ({"link": "wifi"}, "'link' must be one of veth, relay, got 'wifi'"),
    (
        {"sysctls": {"kernel.panic": 1}},
        "'sysctls' names only net.* sysctls of the run's namespaces, got 'kernel.panic'",
    ),
    (
        {"sysctls": {"net.ipv4/../../x": 1}},
        "'sysctls' names only net.* sysctls of the run's namespaces, got 'net.ipv4/../../x'",
    ),
    (
        {"sysctls": {"net.ipv4.tcp_syn_retries": "2"}},
        "'sysctls.net.ipv4.tcp_syn_retries' must be an integer, got '2'",
    ),
    ([], "'network' must be an object, got []"),
]


@pytest.mark.parametrize("declaration,message", BAD_DECLARATIONS)
def test_bad_network_declarations_are_refused_before_anything_exists(declaration, message, monkeypatch):
    before = system.list_namespaces()
    monkeypatch.setattr(kernel_network.KernelNetwork, "build", lambda self: pytest.fail("built"))
    with pytest.raises(Exception) as raised:
        kernel_network.build_from_spec(declaration)
    assert str(raised.value) == message
    assert system.list_namespaces() == before


def test_without_root_the_control_stops_the_run_with_the_reason(monkeypatch):
    # A test fake for what cannot be provoked as root: the effective uid seen by the check.
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    control.configure_control()
    with pytest.raises(InterruptExecution) as raised:
        control.before_experiment_control(context={}, seed=1, network={"name": "net"})
    assert str(raised.value) == (
        "chaosagenkit.control: could not build the sandbox: "
        "kernel faults need root for network namespaces (running as uid 1000)"
    )
    assert (
        _unmet_requirement(["kernel"])
        == "kernel faults need root for network namespaces (running as uid 1000)"
    )
    SANDBOX.reset()


def test_experiments_without_requirements_always_run():
    assert _unmet_requirement([]) is None


def test_a_server_in_an_unknown_namespace_is_refused():
    with pytest.raises(Exception, match="'namespace' must be a namespace of the run's network"):
        process.start_or_register({"name": "t", "namespace": "target"})


def test_a_unix_server_cannot_be_placed_in_a_namespace(monkeypatch):
    placement = process.Placement(("ip", "netns", "exec", "x"), "198.18.0.2", lambda url: url)
    monkeypatch.setitem(process.PLACEMENTS, "target", placement)
    with pytest.raises(Exception, match="unix sockets do not cross a network namespace's link"):
        process.start_or_register({"name": "t", "namespace": "target", "transport": "unix"})
    monkeypatch.delitem(process.PLACEMENTS, "target")


def test_remove_namespaces_refuses_names_that_are_not_ours():
    with pytest.raises(ValueError, match="not a chaosagenkit namespace: 'kt-a'"):
        system.remove_namespaces(["chaosagenkit-0123abcd-target", "kt-a"])


def test_guard_reads_schedules_and_release():
    schedules: dict = {}
    line = json.dumps(
        {
            "op": "schedule",
            "key": "tc:ns",
            "entries": [
                {"after_s": 2.0, "commands": [{"argv": ["tc", "b"], "stdin": None, "may_fail": True}]},
                {"after_s": 1.0, "commands": [{"argv": ["tc", "a"]}]},
            ],
        }
    ).encode()
    assert guard._command(line, schedules, now=100.0) is False
    assert schedules == {
        "tc:ns": [(101.0, [Command(("tc", "a"))]), (102.0, [Command(("tc", "b"), None, True)])]
    }
    assert guard._command(b"not json", schedules, now=100.0) is False
    assert guard._command(b'{"op": "release"}', schedules, now=100.0) is True


def test_state_of_a_dead_owner_is_stale(tmp_path):
    alive = {"owner_pid": os.getpid(), "owner_start": system.process_start_time(os.getpid())}
    assert guard.owner_alive(alive)
    assert not guard.owner_alive({**alive, "owner_start": -1})  # the pid was reused by another process
    assert not guard.owner_alive({"owner_pid": "x"})
