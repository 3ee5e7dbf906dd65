"""Topology declarations: parsing, start order, tiers and the errors a wrong one gets (no sockets)."""

from __future__ import annotations

import json

import pytest

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.topology.spec import (
    COMPOSITION_ENV,
    NODE_AGENT,
    composition_env,
    expand_edges,
    parse_topology,
)

FALLBACK = {
    "name": "shop",
    "hosts": [
        {"name": "front", "compose": {"kind": "fallback", "children": ["to_primary", "to_backup"]}},
        {"name": "primary"},
        {"name": "backup", "agent": "chaosagenkit.topology.node:worker"},
    ],
    "edges": [
        {"name": "to_primary", "from": "front", "to": "primary", "timeout_ms": 500,
         "middleware": [{"type": "circuit_breaker", "failure_threshold": 3}]},
        {"name": "to_backup", "from": "front", "to": "backup"},
        {"name": "entry", "from": "clients", "to": "front"},
    ],
}  # fmt: skip


def test_leaves_start_first_and_tiers_count_from_the_clients():
    topology = parse_topology(FALLBACK)
    assert topology.start_order == ["primary", "backup", "front"]
    assert topology.tiers == {"front": 1, "primary": 2, "backup": 2}
    assert topology.edge_tier(topology.edges["entry"]) == 0
    assert topology.edge_tier(topology.edges["to_backup"]) == 1
    assert topology.hosts["front"].server["agent"] == NODE_AGENT
    assert topology.hosts["primary"].server["agent"] == "chaosagenkit.targets:echo"


def test_a_shared_leaf_sits_below_its_deepest_caller():
    topology = parse_topology(
        {
            "hosts": [
                {"name": "top", "compose": {"kind": "sequential", "children": ["t_mid", "t_leaf"]}},
                {"name": "mid", "compose": {"kind": "sequential", "children": ["m_leaf"]}},
                {"name": "leaf"},
            ],
            "edges": [
                {"name": "t_mid", "from": "top", "to": "mid"},
                {"name": "t_leaf", "from": "top", "to": "leaf"},
                {"name": "m_leaf", "from": "mid", "to": "leaf"},
            ],
        }
    )
    assert topology.start_order == ["leaf", "mid", "top"]
    assert topology.tiers == {"top": 1, "mid": 2, "leaf": 3}


def test_the_composition_env_names_each_child_endpoint_and_middleware():
    topology = parse_topology(FALLBACK)
    endpoints = {"to_primary": "tcp://127.0.0.1:1001", "to_backup": "tcp://127.0.0.1:1002"}
    spec = json.loads(composition_env(topology.hosts["front"], topology, endpoints))
    assert spec["kind"] == "fallback" and spec["children"] == ["to_primary", "to_backup"]
    assert spec["edges"]["to_primary"] == {
        "endpoint": "tcp://127.0.0.1:1001",
        "to": "primary",
        "middleware": [{"type": "circuit_breaker", "failure_threshold": 3}],
        "timeout_ms": 500,
        "connections": 1,
    }
    assert COMPOSITION_ENV == "CHAOSAGENKIT_COMPOSITION"


def test_edge_placeholders_expand_to_endpoints():
    assert expand_edges("x={edge:a},y={edge:b}", {"a": "tcp://h:1", "b": "http://h:2"}, "env.X") == (
        "x=tcp://h:1,y=http://h:2"
    )
    with pytest.raises(ConfigurationError, match="not an edge of this host"):
        expand_edges("{edge:c}", {"a": "tcp://h:1"}, "env.X")
    with pytest.raises(ConfigurationError, match="unclosed"):
        expand_edges("{edge:a", {"a": "tcp://h:1"}, "env.X")


def test_an_agent_host_may_call_its_edges_through_env():
    topology = parse_topology(
        {
            "hosts": [
                {"name": "relay", "agent": "chaosagenkit.targets:relay",
                 "env": {"CHAOSAGENKIT_RELAY_ENDPOINT": "{edge:to_backend}"}},
                {"name": "backend"},
            ],
            "edges": [{"name": "to_backend", "from": "relay", "to": "backend"}],
        }
    )  # fmt: skip
    assert topology.start_order == ["backend", "relay"]


def _with(**changes):
    spec = json.loads(json.dumps(FALLBACK))
    for path, value in changes.items():
        kind, index, key = path.split("__")
        spec[kind][int(index)][key] = value
    return spec


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ([], "topology", "must be an object"),
        ({"hosts": []}, "topology.hosts", "non-empty list"),
        ({"hosts": [{"name": "a"}], "nodes": []}, "topology.nodes", "not a field"),
        (_with(edges__0__to="nowhere"), "topology.edges.to_primary.to", "must be a host"),
        (_with(edges__0__from="ghost"), "topology.edges.to_primary.from", "must be a host or 'clients'"),
        (_with(edges__1__to="front"), "topology.edges.to_backup.to", "its own host"),
        (
            {"hosts": [{"name": "a", "compose": {"kind": "sequential", "children": ["ab"]}},
                       {"name": "b", "compose": {"kind": "sequential", "children": ["ba"]}}],
             "edges": [{"name": "ab", "from": "a", "to": "b"}, {"name": "ba", "from": "b", "to": "a"}]},
            "topology.edges",
            "form a cycle: a -> b -> a",
        ),
        (_with(hosts__0__compose={"kind": "mesh", "children": ["to_primary"]}), "topology.hosts[0].compose.kind", "must be one of"),
        (_with(hosts__0__compose={"kind": "fallback", "children": ["to_primary"]}), "topology.edges.to_backup", "never calls it"),
        (_with(hosts__0__compose={"kind": "fallback", "children": ["to_primary", "entry"]}), "topology.hosts.front.compose", "not an edge from 'front'"),
        (_with(hosts__1__name="to_backup"), "topology.hosts[1].name", "already the name"),
        (_with(edges__0__timeout_ms=0), "topology.edges[0].timeout_ms", "integer from 1"),
        (_with(edges__0__middleware=[{"type": "retry", "tries": 3}]), "topology.edges[0].middleware[0].tries", "not a parameter"),
        (_with(edges__2__middleware=[{"type": "retry"}]), "topology.edges[2]", "declare it on the clients"),
        (_with(hosts__0__agent="x:y"), "topology.hosts[0].agent", "serves its composition"),
        (_with(edges__0__proxy="no"), "topology.edges[0].proxy", "true or false"),
    ],
)  # fmt: skip
def test_a_wrong_declaration_is_refused_with_the_field_named(spec, field, words):
    with pytest.raises(ConfigurationError) as raised:
        parse_topology(spec)
    assert raised.value.field == field
    assert words in raised.value.message


def test_conditional_routes_are_checked():
    spec = {
        "hosts": [
            {"name": "router", "compose": {"kind": "conditional", "default": "to_b",
             "routes": [{"when": {"request_id_prefix": "caller_a:"}, "edge": "to_a"}]}},
            {"name": "a"}, {"name": "b"},
        ],
        "edges": [{"name": "to_a", "from": "router", "to": "a"}, {"name": "to_b", "from": "router", "to": "b"}],
    }  # fmt: skip
    assert parse_topology(spec).hosts["router"].compose["default"] == "to_b"
    spec["hosts"][0]["compose"]["routes"][0]["when"] = {"content_matches": "x"}
    with pytest.raises(ConfigurationError, match="must be one of"):
        parse_topology(spec)


def test_describe_is_what_the_journal_keeps():
    described = parse_topology(FALLBACK).describe()
    assert [h["name"] for h in described["hosts"]] == ["front", "primary", "backup"]
    assert described["hosts"][0]["children"] == ["to_primary", "to_backup"]
    assert {e["name"]: e["tier"] for e in described["edges"]} == {"to_primary": 1, "to_backup": 1, "entry": 0}
    assert described["start_order"] == ["primary", "backup", "front"]
