"""Plans as data: the commands a run's network, its nft rules and its qdiscs become (no system calls)."""

from __future__ import annotations

import json
import random

import pytest

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.kernel import nft, tc
from chaosagenkit.kernel.faults import parse_spec
from chaosagenkit.kernel.topology import BASE_TABLE, Command, Topology, new_run_id, run_id_of

RUN = "0123abcd"


def argvs(commands: list[Command]) -> list[str]:
    return [" ".join(c.argv) for c in commands]


# -- topology ----------------------------------------------------------------------


def test_names_carry_the_run_id_and_are_recognised_as_ours():
    topology = Topology(RUN)
    assert topology.namespaces == ("chaosagenkit-0123abcd-callers", "chaosagenkit-0123abcd-target")
    assert [run_id_of(ns) for ns in topology.namespaces] == [RUN, RUN]


@pytest.mark.parametrize(
    "name",
    [
        "kt-a",
        "chaosagenkit-0123abcd",
        "chaosagenkit-0123abcd-other",
        "chaosagenkit-0123ABCD-target",
        "x-chaosagenkit-0123abcd-target",
    ],
)
def test_other_namespaces_are_never_ours(name):
    assert run_id_of(name) is None


def test_run_ids_are_fresh_and_well_formed():
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50 and all(run_id_of(f"chaosagenkit-{i}-target") == i for i in ids)


def test_veth_topology_creates_everything_inside_the_run_namespaces():
    commands = Topology(RUN, "veth").create_commands()
    lines = argvs(commands)
    callers, target = "chaosagenkit-0123abcd-callers", "chaosagenkit-0123abcd-target"
    assert lines[:2] == [f"ip netns add {callers}", f"ip netns add {target}"]
    assert f"ip link add cak0 netns {callers} type veth peer name cak0 netns {target}" in lines
    assert f"ip -n {callers} addr add 198.18.0.1/30 dev cak0" in lines
    assert f"ip -n {target} addr add 198.18.0.2/30 dev cak0" in lines
    # every command names one of the run's namespaces: nothing runs in the chaos process's own
    for command in commands:
        assert callers in command.argv or target in command.argv, command.argv
    tables = [c for c in commands if c.stdin]
    assert [c.stdin for c in tables] == [BASE_TABLE, BASE_TABLE]


def test_relay_topology_leaves_the_link_to_the_relay_then_addresses_its_devices():
    topology = Topology(RUN, "relay")
    assert not any("veth" in line for line in argvs(topology.create_commands()))
    assert "ip -n chaosagenkit-0123abcd-callers addr add 198.18.0.1 peer 198.18.0.2/32 dev cak0" in argvs(
        topology.relay_address_commands()
    )


def test_delete_commands_may_fail_and_name_only_the_run_namespaces():
    commands = Topology(RUN).delete_commands()
    assert argvs(commands) == [
        "ip netns delete chaosagenkit-0123abcd-callers",
        "ip netns delete chaosagenkit-0123abcd-target",
    ]
    assert all(c.may_fail for c in commands)


@pytest.mark.parametrize("run_id,link,field", [("xyz", "veth", "run_id"), (RUN, "wifi", "link")])
def test_bad_topologies_are_refused(run_id, link, field):
    with pytest.raises(ConfigurationError) as raised:
        Topology(run_id, link)
    assert raised.value.field == field


@pytest.mark.parametrize(
    "direction,receiving,sending",
    [("to_target", "target", "callers"), ("to_callers", "callers", "target")],
)
def test_directions_map_to_sides(direction, receiving, sending):
    assert Topology.receiving_side(direction) == receiving
    assert Topology.sending_side(direction) == sending


# -- nft ------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.1, 0.2, 0.3, 0.001, 1.0])
def test_uncorrelated_loss_pattern_drops_exactly_the_share(rate):
    pattern = nft.loss_pattern(rate, 0.0, random.Random(1))
    assert len(pattern) == max(1, round(rate * nft.PATTERN_PERIOD))
    assert len(set(pattern)) == len(pattern) and all(0 <= r < nft.PATTERN_PERIOD for r in pattern)


def test_loss_pattern_comes_from_the_seed():
    assert nft.loss_pattern(0.2, 0.0, random.Random(7)) == nft.loss_pattern(0.2, 0.0, random.Random(7))
    assert nft.loss_pattern(0.2, 0.0, random.Random(7)) != nft.loss_pattern(0.2, 0.0, random.Random(8))


def test_correlated_loss_pattern_is_bursty_with_about_the_same_mean():
    plain = nft.loss_pattern(0.2, 0.0, random.Random(3))
    bursty = nft.loss_pattern(0.2, 0.8, random.Random(3))

    def runs(pattern):  # number of separate bursts
        return sum(1 for r in pattern if r - 1 not in pattern)

    assert 0.1 <= len(bursty) / nft.PATTERN_PERIOD <= 0.3
    assert runs(bursty) < runs(plain) / 2


SCRIPTS = [
    # kind, values, the drop rule's match
    ("loss", {"loss_rate": 0.5}, "numgen inc mod 1000 { 1, 2 } counter drop"),
    ("blackhole", {"scope": "all"}, "f2 counter drop"),
    ("blackhole", {"scope": "new"}, "tcp flags & (syn | ack) == syn counter drop"),
]


@pytest.mark.parametrize("kind,values,rule", SCRIPTS)
def test_add_script_sets_ttl_counts_and_keeps_other_faults(kind, values, rule):
    script = nft.add_fault_script("f2", parse_spec(kind, **values), 1.5, (1, 2), ["f1"])
    lines = script.splitlines()
    assert "add set inet chaosagenkit live_f2 { type ifname; flags timeout; }" in lines
    assert 'add element inet chaosagenkit live_f2 { "cak0" timeout 1500ms }' in lines
    assert 'add rule inet chaosagenkit f2 counter comment "seen"' in lines
    assert any(rule in line and line.endswith('comment "acted"') for line in lines)
    assert lines[-3:] == [
        "flush chain inet chaosagenkit faults",
        "add rule inet chaosagenkit faults iifname @live_f1 jump f1",
        "add rule inet chaosagenkit faults iifname @live_f2 jump f2",
    ]


def test_remove_script_rebuilds_jumps_before_deleting_the_chain():
    lines = nft.remove_fault_script("f2", ["f1", "f3"]).splitlines()
    assert lines == [
        "flush chain inet chaosagenkit faults",
        "add rule inet chaosagenkit faults iifname @live_f1 jump f1",
        "add rule inet chaosagenkit faults iifname @live_f3 jump f3",
        "flush chain inet chaosagenkit f2",
        "delete chain inet chaosagenkit f2",
        "delete set inet chaosagenkit live_f2",
    ]


def test_nft_refuses_kinds_it_does_not_apply():
    with pytest.raises(ValueError):
        nft.add_fault_script("f1", parse_spec("delay", delay_ms=5), 1.0, (), [])


def _rule(comment, packets):
    return {
        "rule": {"chain": "f1", "comment": comment, "expr": [{"counter": {"packets": packets, "bytes": 1}}]}
    }


@pytest.mark.parametrize(
    "listing,expected",
    [
        (
            json.dumps({"nftables": [{"metainfo": {}}, _rule("seen", 163), _rule("acted", 35)]}),
            {"seen": 163, "acted": 35},
        ),
        (json.dumps({"nftables": [{"chain": {"name": "f1"}}]}), {"seen": 0, "acted": 0}),
        ("not json", {"seen": 0, "acted": 0}),
    ],
)
def test_chain_counters(listing, expected):
    assert nft.chain_counters(listing) == expected


@pytest.mark.parametrize(
    "elements,live",
    [([{"elem": {"val": "cak0", "timeout": 1, "expires": 1}}], True), (None, False)],
)
def test_live_while_the_set_holds_the_device(elements, live):
    entry = {"name": "live_f1", "type": "ifname", "flags": ["timeout"]}
    if elements is not None:
        entry["elem"] = elements
    assert nft.live(json.dumps({"nftables": [{"set": entry}]})) is live


# -- tc --------------------------------------------------------------------------------

NS = "chaosagenkit-0123abcd-target"


@pytest.mark.parametrize(
    "specs,expected",
    [
        ([], [f"tc -n {NS} qdisc del dev cak0 root"]),
        (
            [parse_spec("bandwidth", rate_kbps=800)],
            [
                f"tc -n {NS} qdisc del dev cak0 root",
                f"tc -n {NS} qdisc add dev cak0 root handle 1: tbf rate 800kbit burst 3028 latency 500ms",
            ],
        ),
        (
            [parse_spec("delay", delay_ms=50, jitter_ms=5), parse_spec("duplication", rate=0.1)],
            [
                f"tc -n {NS} qdisc del dev cak0 root",
                f"tc -n {NS} qdisc add dev cak0 root handle 1: netem delay 50ms 5ms duplicate 10%",
            ],
        ),
        (
            [parse_spec("corruption", rate=0.01), parse_spec("bandwidth", rate_kbps=100_000)],
            [
                f"tc -n {NS} qdisc del dev cak0 root",
                f"tc -n {NS} qdisc add dev cak0 root handle 1: netem corrupt 1%",
                f"tc -n {NS} qdisc add dev cak0 parent 1:1 handle 10: tbf rate 100000kbit burst 125000 latency 500ms",
            ],
        ),
        (
            [parse_spec("reordering", rate=0.25, gap_ms=10)],
            [
                f"tc -n {NS} qdisc del dev cak0 root",
                f"tc -n {NS} qdisc add dev cak0 root handle 1: netem delay 10ms reorder 75%",
            ],
        ),
    ],
)
def test_qdisc_tree_for_the_faults_of_one_device(specs, expected):
    commands = tc.qdisc_commands(NS, specs)
    assert argvs(commands) == expected
    assert commands[0].may_fail and not any(c.may_fail for c in commands[1:])


def test_netem_refuses_delay_with_reordering():
    with pytest.raises(ConfigurationError, match="link 'relay'"):
        tc.netem_arguments([parse_spec("delay", delay_ms=5), parse_spec("reordering", rate=0.1, gap_ms=5)])


def test_expiry_schedule_installs_what_is_left_at_each_deadline():
    bandwidth, delay = parse_spec("bandwidth", rate_kbps=64), parse_spec("delay", delay_ms=5)
    schedule = tc.expiry_schedule(NS, [(bandwidth, 110.0), (delay, 130.0), (delay, 90.0)], now_s=100.0)
    assert [after for after, _ in schedule] == [10.0, 30.0]
    assert argvs(schedule[0][1])[-1] == f"tc -n {NS} qdisc add dev cak0 root handle 1: netem delay 5ms 0ms"
    assert argvs(schedule[1][1]) == [f"tc -n {NS} qdisc del dev cak0 root"]
