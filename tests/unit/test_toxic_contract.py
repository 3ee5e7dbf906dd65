"""The toxic contract: registry, Toxiproxy attribute names, validation naming the attribute."""

from __future__ import annotations

import dataclasses

import pytest

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.faults.toxics import EXTENSION_TYPES, TOXICS, TOXIPROXY_TYPES, build_toxic

pytestmark = [pytest.mark.chaos_network]


def test_the_registry_holds_toxiproxys_toxics_and_ours():
    assert set(TOXICS) == set(TOXIPROXY_TYPES) | set(EXTENSION_TYPES)
    for name, cls in TOXICS.items():
        assert cls.type_name == name


@pytest.mark.parametrize("type_name", sorted(TOXICS))
def test_every_config_round_trips_through_toxiproxy_attributes(type_name):
    toxic = build_toxic(type_name, None)  # "attributes": null is accepted, as by Toxiproxy
    attributes = toxic.config.to_attributes()
    assert build_toxic(type_name, attributes).config == toxic.config
    fields = {f.name for f in dataclasses.fields(toxic.config)}
    assert set(toxic.Config.ATTRIBUTES.values()) == fields, "every field is reachable from JSON"


def test_field_names_carry_units_and_map_to_toxiproxy_names():
    config = build_toxic("latency", {"latency": 250, "jitter": 10}).config
    assert (config.latency_ms, config.jitter_ms) == (250, 10)
    assert build_toxic("bandwidth", {"rate": 64}).config.rate_kbps == 64
    assert build_toxic("slicer", {"average_size": 8, "delay": 5}).config.delay_us == 5
    assert build_toxic("limit_data", {"bytes": 9}).config.limit_bytes == 9


def test_an_update_merges_onto_the_current_attributes():
    current = build_toxic("latency", {"latency": 100, "jitter": 20})
    updated = build_toxic("latency", {"jitter": 5}, base=current)
    assert updated.config.to_attributes() == {"latency": 100, "jitter": 5}


BAD_ATTRIBUTES = [
    ("latency", {"latency": -5}, "'latency' must be >= 0, got -5"),
    ("latency", {"latency": 1.5}, "'latency' must be an integer, got 1.5"),
    ("latency", {"latency": "100"}, "'latency' must be an integer, got '100'"),
    ("latency", {"latency": True}, "'latency' must be an integer, got True"),
    (
        "latency",
        {"latancy": 100},
        "'latancy' is not an attribute of this toxic (attributes: jitter, latency)",
    ),
    ("latency", [100], "'attributes' must be a JSON object, got list"),
    ("bandwidth", {"rate": -1}, "'rate' must be >= 0, got -1"),
    ("timeout", {"timeout": 10**12}, "'timeout' must be between 0 and 86400000"),
    ("slicer", {"average_size": 0}, "'average_size' must be >= 1, got 0"),
    (
        "slicer",
        {"average_size": 4, "size_variation": 4},
        "'size_variation' must be less than average_size (4), got 4",
    ),
    ("packet_loss", {"loss_rate": 1.5}, "'loss_rate' must be between 0 and 1, got 1.5"),
    ("packet_loss", {"loss_rate": float("nan")}, "'loss_rate' must be a number, got nan"),
    # JSON allows integers of any length: refused with a 4xx, never an OverflowError
    (
        "latency",
        {"latency": 10**400},
        "'latency' must be between 0 and 86400000, got an integer of 401 digits",
    ),
    ("latency", {"latency": -(10**400)}, "'latency' must be >= 0, got an integer of 401 digits"),
    ("latency", {"latency": float("inf")}, "'latency' must be an integer, got inf"),
    (
        "packet_loss",
        {"loss_rate": 10**400},
        "'loss_rate' must be a number below 1e308, got an integer of 401 digits",
    ),
    ("packet_loss", {"rto": 500, "max_rto": 100}, "'max_rto' must be >= rto (500), got 100"),
    ("malformed_frame", {"kind": "garbled"}, "'kind' must be one of invalid_json, invalid_utf8, truncated"),
    ("drop_frame", {"protocol": "grpc"}, "'protocol' must be one of auto, agenkit, http, got 'grpc'"),
    ("duplicate_frame", {"copies": 0}, "'copies' must be >= 1, got 0"),
]


@pytest.mark.parametrize("type_name,attributes,message", BAD_ATTRIBUTES)
def test_bad_attributes_are_refused_naming_the_attribute(type_name, attributes, message):
    with pytest.raises(ConfigurationError) as info:
        build_toxic(type_name, attributes)
    assert str(info.value).startswith(message)


def test_an_unknown_type_names_the_known_ones():
    with pytest.raises(ConfigurationError, match=r"'type' must be one of latency, .* got 'latncy'"):
        build_toxic("latncy", {})


def test_integral_floats_are_integers():
    assert build_toxic("latency", {"latency": 100.0}).config.latency_ms == 100
