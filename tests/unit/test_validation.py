"""One validator, one set of limits: a value means the same and is refused the same way at every entry.

Before, the longest fault TTL was a week for service faults and a day for
toxics, seeds had four ranges and the messages four styles. Each table
below puts the same value through every entry point that takes it.
"""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner

from chaosagenkit import validation
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.explore.cli import explore as explore_command
from chaosagenkit.faults.service import parse_fault
from chaosagenkit.faults.toxics import build_toxic
from chaosagenkit.limits import DEFAULT_TTL_S, MAX_SEED, MAX_TIME_MS, MAX_TTL_S
from chaosagenkit.llm.cli import llm_proxy as llm_proxy_command
from chaosagenkit.network.cli import proxy as proxy_command
from chaosagenkit.network.operations import check_common
from chaosagenkit.network.server import ProxyServer
from chaosagenkit.service.cli import serve as serve_command


def message(call) -> str:
    with pytest.raises(ConfigurationError) as caught:
        call()
    return str(caught.value)


def proxy_toxic(ttl):
    server = ProxyServer(seed=1)

    async def scenario():
        await server.create_proxy({"name": "p", "upstream": "127.0.0.1:9", "enabled": False})  # no socket
        try:
            return await server.create_toxic("p", {"type": "latency", "duration_s": ttl})
        finally:
            await server.close()

    return asyncio.run(scenario())


def proxy_disable(ttl):
    server = ProxyServer(seed=1)

    async def scenario():
        await server.create_proxy({"name": "p", "upstream": "127.0.0.1:9", "enabled": False})
        try:
            return await server.update_proxy("p", {"enabled": False, "duration_s": ttl})
        finally:
            await server.close()

    return asyncio.run(scenario())


TTL_ENTRIES = {
    "host fault (POST /faults)": lambda ttl: parse_fault({"kind": "fail_every", "nth": 2, "duration_s": ttl}),
    "proxy toxic (POST toxics)": proxy_toxic,
    "proxy disable (POST proxy)": proxy_disable,
    "network activity": lambda ttl: check_common("p", "downstream", 1.0, ttl, ""),
    "service activity": lambda ttl: validation.require_ttl(ttl),
    "daemon --default-ttl": lambda ttl: ProxyServer(default_ttl_s=ttl),
}


@pytest.mark.parametrize("entry", TTL_ENTRIES)
def test_every_ttl_has_the_same_maximum_and_the_same_words(entry):
    call = TTL_ENTRIES[entry]
    call(MAX_TTL_S)  # a day is accepted everywhere
    expected = "'duration_s' must be > 0 and <= 86400, got 86401"
    got = message(lambda: call(MAX_TTL_S + 1))
    assert got.replace("'default_ttl_s'", "'duration_s'").replace("86401.0", "86401") == expected
    assert "must be > 0" in message(lambda: call(0))


def test_the_limits_are_the_ones_documented():
    assert (DEFAULT_TTL_S, MAX_TTL_S, MAX_TIME_MS, MAX_SEED) == (300.0, 86_400.0, 86_400_000, 2**64 - 1)


def test_the_longest_time_attribute_is_the_same_for_a_service_delay_and_a_toxic():
    parse_fault({"kind": "delay", "delay_ms": MAX_TIME_MS})
    build_toxic("latency", {"latency": MAX_TIME_MS})
    assert message(lambda: parse_fault({"kind": "delay", "delay_ms": MAX_TIME_MS + 1})) == (
        "'delay_ms' must be between 0 and 86400000, got 86400001"
    )
    assert message(lambda: build_toxic("latency", {"latency": MAX_TIME_MS + 1})) == (
        "'latency' must be between 0 and 86400000, got 86400001"
    )


SEED_ENTRIES = {
    "experiment key": validation.seed_or_none,
    "POST /seed (both APIs)": validation.require_seed,
    "proxy server": lambda seed: ProxyServer(seed=1).set_seed({"seed": seed}),
}


@pytest.mark.parametrize("entry", SEED_ENTRIES)
def test_a_seed_has_one_range_everywhere(entry):
    call = SEED_ENTRIES[entry]
    call(0)
    call(2**64 - 1)
    assert message(lambda: call(2**64)) == (
        "'seed' must be an integer between 0 and 2**64 - 1, got an integer of 20 digits"
    )
    assert message(lambda: call(-1)) == "'seed' must be >= 0, got -1"


@pytest.mark.parametrize(
    "command",
    [serve_command, proxy_command, llm_proxy_command, explore_command],
    ids=["serve", "proxy", "llm-proxy", "explore"],
)
def test_every_command_takes_the_same_seed_range(command):
    runner = CliRunner()
    refused = runner.invoke(command, ["--seed", str(2**64)])
    assert refused.exit_code == 2 and "--seed" in refused.output
    assert "18446744073709551615" in refused.output


@pytest.mark.parametrize(
    "call,expected",
    [
        (lambda: validation.require_number(-5, "delay_ms", minimum=0), "'delay_ms' must be >= 0, got -5"),
        (
            lambda: validation.require_number(300, "n", minimum=1, maximum=256),
            "'n' must be between 1 and 256, got 300",
        ),
        (lambda: validation.require_number(2.5, "n", integer=True), "'n' must be an integer, got 2.5"),
        (lambda: validation.require_number(float("inf"), "n"), "'n' must be a number, got inf"),
        (lambda: validation.require_number(True, "n"), "'n' must be a number, got True"),
        (
            lambda: validation.require_number(10**400, "n"),
            "'n' must be a number below 1e308, got an integer of 401 digits",
        ),
        (lambda: validation.require_probability(1.5, "rate"), "'rate' must be between 0 and 1, got 1.5"),
        (lambda: validation.require_probability("x", "rate"), "'rate' must be a number, got 'x'"),
        (
            lambda: validation.require_choice("up", "stream", ("upstream", "downstream")),
            "'stream' must be one of upstream, downstream, got 'up'",
        ),
        (lambda: validation.require_text(" ", "name"), "'name' must be a non-empty string, got ' '"),
        (
            lambda: validation.require_known_keys({"b": 1, "z": 2, "a": 3}, ("a", "b"), "a server field"),
            "'z' is not a server field (known: a, b)",
        ),
        (
            lambda: validation.require_known_keys({"x": 1}, ("a",), "a field here", prefix="hosts.h."),
            "'hosts.h.x' is not a field here (known: a)",
        ),
        (lambda: validation.require_ttl(None), "'duration_s' must be a number, got None"),
    ],
)
def test_one_message_style(call, expected):
    assert message(call) == expected


def test_a_json_file_that_cannot_be_read_or_parsed_is_refused_as_its_field(tmp_path):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text('[{"name": "p"}]')
    bad.write_text("[{")
    assert validation.read_json_file(good, "--config") == [{"name": "p"}]
    assert message(lambda: validation.read_json_file(bad, "--config")).startswith(
        "'--config' is not valid JSON: "
    )
    assert message(lambda: validation.read_json_file(tmp_path / "gone.json", "script")) == (
        "'script' cannot be read: No such file or directory"
    )


def test_checks_return_what_they_accepted():
    assert validation.require_number(100.0, "n", integer=True) == 100
    assert isinstance(validation.require_number(100.0, "n", integer=True), int)
    assert validation.require_probability(1, "rate") == 1.0
    assert validation.require_known_keys({"a": 1}, ("a", "b"), "a field") is None
    assert validation.require_ttl(None, default=7) == 7
    assert validation.seed_or_none("12") == 12 and validation.seed_or_none("") is None
    assert 0 <= validation.random_seed() < 2**31
