"""Configuration rules: --var parsing, kinds, credentials, clients whose traffic faults cannot reach."""

from __future__ import annotations

import pytest

from chaosagenkit.configuration import (
    check_clients,
    coerce_configuration,
    is_credential,
    overrides,
    parse_var,
    public,
)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("steady_requests=5", ("steady_requests", 5)),  # README's promise: JSON when it parses
        ("rate=0.5", ("rate", 0.5)),
        ("middleware=[]", ("middleware", [])),
        ('mw=[{"type": "retry"}]', ("mw", [{"type": "retry"}])),
        ("flag=true", ("flag", True)),
        ("target_agent=myteam.agents:order_status", ("target_agent", "myteam.agents:order_status")),
        ("target_control_url=", ("target_control_url", "")),
        ('quoted="5"', ("quoted", "5")),
        ("with=equals=sign", ("with", "equals=sign")),
        ("count:str=5", ("count", "5")),  # Chaos Toolkit's explicit types still work
        ("count:int=5", ("count", 5)),
    ],
)
def test_parse_var(text, parsed):
    assert parse_var(text) == parsed


@pytest.mark.parametrize("text", ["no-equals", "=5", "count:int=five"])
def test_parse_var_refuses_malformed_input_in_one_line(text):
    with pytest.raises(ValueError) as caught:
        parse_var(text)
    assert "--var" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "credential"),
    [
        ("api_key", True),
        ("API_KEY", True),
        ("apiKey", True),
        ("apikey", True),
        ("toxiproxy_token", True),
        ("chaosagenkit_server_token", True),
        ("accesstoken", True),
        ("client_secret", True),
        ("db_Password", True),
        ("passwd", True),
        ("credentials", True),
        ("key", True),
        ("keys", False),  # a list of cache keys is not a credential
        ("monkeys", False),
        ("tokens_per_request", False),  # the rate limiter's tokens
        ("max_cache_size", False),
        ("steady_p95_ms", False),
    ],
)
def test_credentials_by_name(name, credential):
    assert is_credential(name) is credential


def test_public_drops_credentials_at_any_depth_and_keeps_the_rest():
    configuration = {
        "keys": ["a", "b"],
        "monkeys": 3,
        "api_key": "k",
        "servers": [{"name": "t", "token": "t0k", "env": {"PASSWORD": "p", "MODE": "x"}}],
        "client_middleware": [{"type": "rate_limiter", "tokens_per_request": 1}],
    }
    assert public(configuration) == {
        "keys": ["a", "b"],
        "monkeys": 3,
        "servers": [{"name": "t", "env": {"MODE": "x"}}],
        "client_middleware": [{"type": "rate_limiter", "tokens_per_request": 1}],
    }


def test_strings_are_read_as_the_declared_kind_in_place():
    declared = {
        "count": 20,
        "bound": [0, 250],
        "on": False,
        "mw": [],
        "name": "x",
        "seed": 42,
        "env": {"type": "env", "key": "E"},
    }
    configuration = {
        "count": "5",
        "bound": "[0, 300]",
        "on": "true",
        "mw": "[]",
        "name": "5",
        "seed": "",
        "env": "7",
    }
    assert coerce_configuration(configuration, declared) == []
    assert configuration == {
        "count": 5,
        "bound": [0, 300],
        "on": True,
        "mw": [],
        "name": "5",
        "seed": "",
        "env": "7",
    }


def test_values_of_another_kind_are_one_line_each_naming_the_key():
    configuration = {"count": "five", "bound": "300"}
    assert coerce_configuration(configuration, {"count": 20, "bound": [0, 250]}) == [
        "configuration 'count': expected a number like the experiment's 20, got 'five'",
        "configuration 'bound': expected a list like the experiment's [0, 250], got '300'",
    ]


def test_overrides_are_what_differs_from_the_experiment():
    declared = {"transport": "tcp", "count": 20, "token": "x", "env": {"type": "env", "key": "E"}}
    assert overrides({"transport": "tcp", "count": 5, "token": "y", "env": "v", "extra": 1}, declared) == {
        "count": 5,
        "extra": 1,
    }


SERVERS = [{"name": "target", "control_url": "${target_control_url}"}]
CLIENTS = [
    {"name": "caller", "server": "target", "endpoint": "${target_endpoint}"},
    {"name": "proxied", "proxy": "target_proxy", "endpoint": "${target_endpoint}"},
]


def test_a_fixed_endpoint_needs_the_host_serving_it():
    servers = [{"name": "target", "control_url": ""}]
    clients = [dict(c, endpoint="tcp://10.0.0.5:9000") for c in CLIENTS]
    first, second = check_clients(servers, clients, SERVERS, CLIENTS)
    assert first.startswith(
        "configuration 'target_endpoint' (tcp://10.0.0.5:9000) is set but 'target_control_url' is not"
    )
    assert second.startswith(
        "configuration 'target_endpoint' (tcp://10.0.0.5:9000) bypasses proxy 'target_proxy'"
    )


def test_a_fixed_endpoint_with_its_host_or_no_endpoint_is_fine():
    external = [{"name": "target", "control_url": "http://10.0.0.5:7000"}]
    assert check_clients(external, [dict(CLIENTS[0], endpoint="tcp://10.0.0.5:9000")], SERVERS, CLIENTS) == []
    started = [{"name": "target", "control_url": ""}]
    assert check_clients(started, [dict(c, endpoint="") for c in CLIENTS], SERVERS, CLIENTS) == []
