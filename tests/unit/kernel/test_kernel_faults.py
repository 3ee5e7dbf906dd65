"""Kernel fault specs: validation, and which mechanism applies each kind (table-driven)."""

from __future__ import annotations

import pytest

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.kernel.faults import Fault, check_fault, loss_probability, mechanism_for, parse_spec

VALID = [
    ("loss", {"loss_rate": 0.2}, {"kind": "loss", "loss_rate": 0.2, "correlation": 0.0}),
    ("loss", {"loss_rate": 1.0, "correlation": 0.5}, {"kind": "loss", "loss_rate": 1.0, "correlation": 0.5}),
    ("delay", {"delay_ms": 50, "jitter_ms": 10}, {"kind": "delay", "delay_ms": 50, "jitter_ms": 10}),
    ("duplication", {"rate": 0.1}, {"kind": "duplication", "rate": 0.1}),
    ("reordering", {"rate": 0.3, "gap_ms": 20}, {"kind": "reordering", "rate": 0.3, "gap_ms": 20}),
    ("corruption", {"rate": 0.05}, {"kind": "corruption", "rate": 0.05}),
    ("bandwidth", {"rate_kbps": 64}, {"kind": "bandwidth", "rate_kbps": 64}),
    ("blackhole", {"scope": "new"}, {"kind": "blackhole", "scope": "new"}),
    ("blackhole", {}, {"kind": "blackhole", "scope": "all"}),
]


@pytest.mark.parametrize("kind,values,expected", VALID)
def test_valid_specs_keep_only_their_own_fields(kind, values, expected):
    assert parse_spec(kind, **values).to_dict() == expected


INVALID = [
    # kind, values, the field the one-line error names
    ("jitter", {}, "kind"),
    ("loss", {"loss_rate": 0.0}, "loss_rate"),
    ("loss", {"loss_rate": 1.5}, "loss_rate"),
    ("loss", {"loss_rate": 0.2, "correlation": 1.0}, "correlation"),
    ("loss", {"loss_rate": True}, "loss_rate"),
    ("loss", {"loss_rate": float("nan")}, "loss_rate"),
    ("loss", {"loss_rate": 0.2, "delay_ms": 5}, "delay_ms"),
    ("delay", {"delay_ms": 0}, "delay_ms"),
    ("delay", {"delay_ms": 10, "jitter_ms": 11}, "jitter_ms"),
    ("delay", {"delay_ms": 60_001}, "delay_ms"),
    ("duplication", {"rate": 0}, "rate"),
    ("reordering", {"rate": 0.5, "gap_ms": 0}, "gap_ms"),
    ("bandwidth", {"rate_kbps": 7}, "rate_kbps"),
    ("bandwidth", {"rate_kbps": 64.5}, "rate_kbps"),
    ("blackhole", {"scope": "some"}, "scope"),
    ("loss", {"loss_rate": 0.2, "speed": 1}, "speed"),
]


@pytest.mark.parametrize("kind,values,field", INVALID)
def test_invalid_specs_name_the_field(kind, values, field):
    with pytest.raises(ConfigurationError) as raised:
        parse_spec(kind, **values)
    assert raised.value.field == field
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "direction,ttl_s,field",
    [
        ("sideways", 10, "direction"),
        ("both", 0, "duration_s"),
        ("both", 86_401, "duration_s"),
        ("both", None, "duration_s"),
    ],
)
def test_fault_direction_and_ttl_are_checked(direction, ttl_s, field):
    with pytest.raises(ConfigurationError) as raised:
        check_fault(direction, ttl_s)
    assert raised.value.field == field


def test_both_directions_split_into_the_two_one_way_directions():
    spec = parse_spec("loss", loss_rate=0.1)
    assert Fault("f1", spec, "both", 1.0).directions() == ("to_target", "to_callers")
    assert Fault("f1", spec, "to_callers", 1.0).directions() == ("to_callers",)


MECHANISMS = [
    # kind, link, netem available, mechanism (None: refused)
    ("loss", "veth", False, "nft"),
    ("loss", "relay", True, "nft"),
    ("blackhole", "veth", False, "nft"),
    ("bandwidth", "veth", False, "tbf"),
    ("bandwidth", "relay", False, "tbf"),
    ("delay", "veth", True, "netem"),
    ("delay", "relay", True, "netem"),
    ("delay", "relay", False, "relay"),
    ("delay", "veth", False, None),
    ("duplication", "veth", False, None),
    ("reordering", "relay", False, "relay"),
    ("corruption", "veth", True, "netem"),
    ("corruption", "relay", False, "relay"),
]


@pytest.mark.parametrize("kind,link,netem,mechanism", MECHANISMS)
def test_mechanism_for_each_kind(kind, link, netem, mechanism):
    if mechanism is None:
        with pytest.raises(ConfigurationError, match="netem qdisc, which this kernel does not have"):
            mechanism_for(kind, link=link, netem=netem)
    else:
        assert mechanism_for(kind, link=link, netem=netem) == mechanism


@pytest.mark.parametrize(
    "rate,correlation,lost_last,expected",
    [(0.2, 0.0, False, 0.2), (0.2, 0.0, True, 0.2), (0.2, 0.5, False, 0.1), (0.2, 0.5, True, 0.6)],
)
def test_loss_chain_probabilities(rate, correlation, lost_last, expected):
    assert loss_probability(rate, correlation, lost_last) == pytest.approx(expected)


def test_loss_chain_keeps_its_mean():
    rate, correlation = 0.2, 0.5
    # stationary share of the two-state chain: p / (1 - q + p)
    p, q = loss_probability(rate, correlation, False), loss_probability(rate, correlation, True)
    assert p / (1 - q + p) == pytest.approx(rate)
