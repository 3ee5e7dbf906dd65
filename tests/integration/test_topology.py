"""Every kind of topology host, as real processes: agenkit's compositions over per-edge proxies.

One system holds a composition host of each kind (SequentialAgent,
ParallelAgent, FallbackAgent, ConditionalAgent of agenkit.composition;
patterns' ParallelAgent, SequentialAgent and FallbackAgent) over two worker
leaves, every edge through its own fault proxy; clients call each
composition through its own entry edge. Built once by the control (hosts
leaves first), checked kind by kind, faulted on a host and on an edge,
recorded for the journal, and torn down with nothing left running.
"""

from __future__ import annotations

import json
import socket

import pytest

from chaosagenkit import control
from chaosagenkit.client import probes as client_probes
from chaosagenkit.network import actions as network_actions
from chaosagenkit.sandbox import SANDBOX
from chaosagenkit.service import actions as service_actions
from chaosagenkit.topology import probes, system
from tests.ports import assert_released

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

KINDS = {
    "seq": {"kind": "sequential"},
    "par": {"kind": "parallel"},
    "fb": {"kind": "fallback"},
    "pseq": {"kind": "patterns.sequential"},
    "ppar": {"kind": "patterns.parallel", "aggregator": "majority_vote"},
    "pfb": {"kind": "patterns.fallback"},
}


def _worker(name: str) -> dict:
    return {
        "name": name,
        "agent": "chaosagenkit.topology.node:worker",
        "env": {"CHAOSAGENKIT_WORKER": json.dumps({"tag": name})},
    }


def _topology(kinds: dict) -> dict:
    hosts = [_worker("w1"), _worker("w2")]
    edges = []
    for name, compose in kinds.items():
        children = [f"{name}_w1", f"{name}_w2"]
        hosts.append({"name": name, "compose": {**compose, "children": children}})
        edges += [{"name": f"{name}_w{i}", "from": name, "to": f"w{i}", "timeout_ms": 2000} for i in (1, 2)]
        edges.append({"name": f"entry_{name}", "from": "clients", "to": name})
    hosts.append(
        {"name": "cond", "compose": {"kind": "conditional", "default": "cond_w2",
         "routes": [{"when": {"request_id_prefix": "c_cond_a:"}, "edge": "cond_w1"}]}}
    )  # fmt: skip
    edges += [
        {"name": "cond_w1", "from": "cond", "to": "w1"},
        {"name": "cond_w2", "from": "cond", "to": "w2"},
        {"name": "entry_cond", "from": "clients", "to": "cond"},
    ]
    return {"name": "kinds", "hosts": hosts, "edges": edges}


def _clients(kinds: dict) -> list[dict]:
    clients = [{"name": f"c_{name}", "proxy": f"entry_{name}", "timeout_ms": 3000} for name in kinds]
    for client in clients:
        if client["name"] == "c_par":  # agenkit.composition.ParallelAgent combines its parts
            client["answer_check"] = "chaosagenkit.topology.answers:every_part_answers"
    clients += [{"name": f"c_cond_{x}", "proxy": "entry_cond", "timeout_ms": 3000} for x in "ab"]
    return clients


@pytest.fixture
def built(request):
    kinds = getattr(request, "param", KINDS)
    control.configure_control()
    try:
        control.build_sandbox(
            seed=42,
            servers=[],
            proxy=None,
            proxies=[],
            clients=_clients(kinds),
            configuration={"transport": "tcp"},
            topology=_topology(kinds),
        )
        yield
    finally:
        problems = control.teardown_sandbox()
        assert problems == []


FEW = {name: KINDS[name] for name in ("seq", "fb", "ppar")}


def test_every_kind_serves_agenkits_composition_over_its_edges(built):
    leaves_first = system.topology_named().start_order
    assert leaves_first[:2] == ["w1", "w2"] and set(leaves_first[2:]) == {*KINDS, "cond"}
    for name in [*KINDS, "cond_a", "cond_b"]:
        batch = client_probes.send_requests(f"c_{name}", count=3)
        if name == "pseq":  # agenkit defect (docs/FINDINGS-topologies.md S5): its answer cannot be encoded
            assert batch["errors"] == {"RemoteExecutionError": 3}, batch
            continue
        assert batch["success_ratio"] == 1.0, (name, batch)

    calls = probes.requests_per_edge()
    for name in ("seq", "par", "pseq", "ppar"):  # every child is called for every request
        assert calls[f"{name}_w1"] == calls[f"{name}_w2"] == 3, calls
    for name in ("fb", "pfb"):  # the first child answers: the second is never called
        assert (calls[f"{name}_w1"], calls[f"{name}_w2"]) == (3, 0), calls
    assert (calls["cond_w1"], calls["cond_w2"]) == (3, 3)  # routed by the caller's request_id
    assert calls["entry_cond"] == 6

    metrics = probes.composition_metrics("par")
    assert metrics["composition"] == "agenkit.composition.parallel.ParallelAgent"
    assert metrics["answers_with_2_parts"] == 3
    assert probes.composition_metrics("ppar")["answers_with_2_parts"] == 3
    assert probes.composition_metrics("pfb")["composition"] == "agenkit.patterns.fallback.FallbackAgent"
    # tier 0: 3 of the 24 calls into the system (pseq's) failed; tier 1: every call of the hosts succeeded
    assert probes.tier_success() == {"tier_0": round(21 / 24, 4), "tier_1": 1.0}


@pytest.mark.parametrize("built", [FEW], indirect=True)
def test_faults_reach_a_host_and_an_edge_then_teardown_leaves_nothing(built):
    service_actions.inject_failure_rate("w1", rate=1.0, duration_s=30)
    assert client_probes.send_requests("c_seq", count=2)["success_ratio"] == 0.0  # stops at w1
    assert client_probes.send_requests("c_fb", count=2)["success_ratio"] == 1.0  # w2 answers
    assert probes.edge_requests("seq_w2", since_event="inject", target="w1") == 0
    assert probes.edge_requests("fb_w2", since_event="inject", target="w1") == 2
    first = probes.first_failed_tier(since_event="inject", target="w1")
    assert (first["tier"], first["edge"]) in ((1, "seq_w1"), (1, "fb_w1"))
    blast = probes.blast_radius(["c_seq", "c_fb"], since_event="inject", target="w1")
    assert blast["by_client"] == {"c_seq": 1.0, "c_fb": 0.0} and blast["suffered"] == ["c_seq"]
    service_actions.clear_faults("w1")

    network_actions.inject_malformed_payload("ppar_w2", kind="truncated", duration_s=30)
    partial = client_probes.send_requests("c_ppar", count=1)
    assert partial["success_ratio"] == 1.0  # patterns' ParallelAgent answers with w1's part alone
    assert probes.edge_outcomes("ppar_w2", since_event="inject", target="ppar_w2")["ok"] == 0
    assert probes.composition_metrics("ppar")["answers_with_1_parts"] == 1

    journal = {"status": "completed"}
    control._record_in_journal(journal, {})
    section = journal["extensions"][0]["topology"]["systems"][0]
    hosts = {h["name"]: h for h in section["hosts"]}
    assert hosts["w1"]["injected"] == {"failure_rate": 4} and hosts["seq"]["kind"] == "sequential"
    edges = {e["name"]: e for e in section["edges"]}
    assert edges["seq_w1"]["errors"] == {"RemoteExecutionError": 2}
    assert edges["entry_seq"]["clients"] == ["c_seq"]
    assert [t["tier"] for t in section["tiers"]] == [0, 1]

    addresses = [ref.endpoint for ref in SANDBOX.servers.values()] + [
        p.listen for p in SANDBOX.proxies.values()
    ]
    pids = [ref.process.pid for ref in SANDBOX.servers.values()]
    assert len(pids) == 6
    assert control.teardown_sandbox() == []
    assert not SANDBOX.servers and not SANDBOX.proxies and not system.active()
    assert_released(
        (host, int(port)) for host, _, port in (a.split("://")[-1].rpartition(":") for a in addresses)
    )


def test_a_unix_topology_goes_through_unix_socket_proxies_that_faults_reach():
    control.configure_control()
    try:
        control.build_sandbox(
            seed=42,
            servers=[],
            proxy=None,
            proxies=[],
            clients=[{"name": "c", "proxy": "entry", "timeout_ms": 3000}],
            configuration={"transport": "unix"},
            topology={
                "name": "u",
                "hosts": [
                    _worker("w1"),
                    {"name": "seq", "compose": {"kind": "sequential", "children": ["seq_w1"]}},
                ],
                "edges": [
                    {"name": "seq_w1", "from": "seq", "to": "w1", "timeout_ms": 2000},
                    {"name": "entry", "from": "clients", "to": "seq"},
                ],
            },
        )
        assert {name: p.listen.startswith("unix:") for name, p in SANDBOX.proxies.items()} == {
            "seq_w1": True,
            "entry": True,
        }
        assert system.edge_endpoint("seq_w1").startswith("unix://")
        assert client_probes.send_requests("c", count=2)["success_ratio"] == 1.0
        assert probes.requests_per_edge()["seq_w1"] == 2, "the composition called w1 over its edge"
        network_actions.disable_proxy("seq_w1", duration_s=30)  # the inner edge only: its unix-socket proxy
        assert client_probes.send_requests("c", count=2)["success_ratio"] == 0.0
    finally:
        assert control.teardown_sandbox() == []
