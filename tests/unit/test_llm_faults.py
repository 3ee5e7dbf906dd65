"""The LLM endpoint's pure fault logic: specs, selection, applicability, precedence, determinism. No sockets."""

from __future__ import annotations

import dataclasses

import pytest

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.limits import DEFAULT_TTL_S
from chaosagenkit.llm.faults import (
    LLM_FAULT_KINDS,
    ConnectionReset,
    LlmDecision,
    LlmFaultPolicy,
    MalformedToolCall,
    RateLimit,
    RequestInfo,
    ServerError,
    StreamCut,
    break_json_text,
    parse_llm_fault,
    parse_llm_faults,
)

pytestmark = [pytest.mark.chaos]

PLAIN = RequestInfo("openai", stream=False, tools=False)
STREAM = RequestInfo("openai", stream=True, tools=False)

VALID = [
    ({"kind": "rate_limit"}, RateLimit()),
    ({"kind": "rate_limit", "retry_after_s": 2, "first": 3}, RateLimit(retry_after_s=2, first=3)),
    ({"kind": "server_error", "status": 529, "every": 2}, ServerError(status=529, every=2)),
    ({"kind": "server_error", "rate": 0.5, "duration_s": 9}, ServerError(rate=0.5, duration_s=9)),
    ({"kind": "connection_reset", "after_events": 3}, ConnectionReset(after_events=3)),
    (
        {"kind": "stream_cut", "after_events": 0, "final_event": True},
        StreamCut(after_events=0, final_event=True),
    ),
    ({"kind": "malformed_tool_call"}, MalformedToolCall()),
]


@pytest.mark.parametrize("data,expected", VALID)
def test_valid_specs_parse(data, expected):
    if "duration_s" not in data:  # every fault expires: absent means the default TTL
        expected = dataclasses.replace(expected, duration_s=DEFAULT_TTL_S)
    assert parse_llm_fault(data) == expected


INVALID = [
    # (input, field named, words in the message)
    ({"kind": "nope"}, "kind", "one of rate_limit"),
    ({}, "kind", "is missing"),
    ({"kind": "server_error", "status": 404}, "status", "one of 500, 502, 503, 529"),
    ({"kind": "server_error", "status": True}, "status", "got True"),
    ({"kind": "rate_limit", "retry_after_s": -1}, "retry_after_s", "between 0 and 3600"),
    ({"kind": "rate_limit", "rate": 1.5}, "rate", "between 0 and 1"),
    ({"kind": "rate_limit", "first": 2, "every": 3}, "every", "cannot be combined with first"),
    ({"kind": "rate_limit", "first": 2, "rate": 0.5}, "rate", "must stay 1"),
    ({"kind": "rate_limit", "first": -1}, "first", ">= 1"),
    ({"kind": "rate_limit", "every": 1.5}, "every", "an integer"),
    ({"kind": "latency"}, "delay_ms", "is missing"),
    ({"kind": "latency", "delay_ms": -5}, "delay_ms", "between 0 and"),
    ({"kind": "stream_cut"}, "after_events", "is missing"),
    ({"kind": "stream_cut", "after_events": 2, "final_event": "yes"}, "final_event", "true or false"),
    ({"kind": "stream_cut", "after_events": -2}, "after_events", "between 0 and"),
    ({"kind": "refusal", "reason": "x"}, "reason", "is not a field"),
    ({"kind": "empty_content", "duration_s": 0}, "duration_s", "> 0"),
    ("rate_limit", "fault", "a JSON object"),
]


@pytest.mark.parametrize("data,field,words", INVALID)
def test_invalid_specs_name_the_field(data, field, words):
    with pytest.raises(ConfigurationError) as caught:
        parse_llm_fault(data)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_a_list_error_names_the_index():
    with pytest.raises(ConfigurationError) as caught:
        parse_llm_faults([{"kind": "refusal"}, {"kind": "latency", "delay_ms": "x"}])
    assert caught.value.field == "[1].delay_ms"


def test_every_kind_round_trips_through_json():
    for kind, spec_type in LLM_FAULT_KINDS.items():
        required = {"delay_ms": 5} if kind in ("latency", "slow_first_token", "slow_tokens") else {}
        if kind == "stream_cut":
            required = {"after_events": 1}
        spec = parse_llm_fault({"kind": kind, **required})
        assert isinstance(spec, spec_type)
        assert parse_llm_fault(spec.to_json()) == spec


def decisions(policy: LlmFaultPolicy, requests: list[RequestInfo]) -> list[LlmDecision]:
    return [policy.decide_request(0.0, request) for request in requests]


SELECTION = [
    # (selection, which of 6 requests are picked)
    ({"first": 2}, [True, True, False, False, False, False]),
    ({"every": 3}, [False, False, True, False, False, True]),
    ({"rate": 1.0}, [True] * 6),
    ({"rate": 0.0}, [False] * 6),
]


@pytest.mark.parametrize("selection,picked", SELECTION)
def test_selection(selection, picked):
    policy = LlmFaultPolicy(seed=1)
    policy.add(parse_llm_fault({"kind": "server_error", **selection}), now=0.0)
    assert [d.error_status == 500 for d in decisions(policy, [PLAIN] * 6)] == picked


def test_a_stream_fault_only_counts_the_requests_it_can_act_on():
    policy = LlmFaultPolicy(seed=1)
    policy.add(parse_llm_fault({"kind": "stream_cut", "after_events": 1, "first": 1}), now=0.0)
    made = decisions(policy, [PLAIN, PLAIN, STREAM, STREAM])
    assert [d.cut_after_events for d in made] == [None, None, 1, None]


APPLICABILITY = [
    # (fault, request, applies)
    ({"kind": "slow_tokens", "delay_ms": 1}, PLAIN, False),
    ({"kind": "slow_tokens", "delay_ms": 1}, STREAM, True),
    ({"kind": "connection_reset"}, PLAIN, True),
    ({"kind": "connection_reset", "after_events": 2}, PLAIN, False),
    ({"kind": "malformed_tool_call"}, PLAIN, False),
    ({"kind": "malformed_tool_call"}, RequestInfo("openai", False, True), True),
    ({"kind": "malformed_tool_call"}, RequestInfo("anthropic", False, True), False),
    ({"kind": "malformed_tool_call"}, RequestInfo("anthropic", True, True), True),
    ({"kind": "empty_content"}, PLAIN, True),
]


@pytest.mark.parametrize("fault,request_info,applies", APPLICABILITY)
def test_applicability(fault, request_info, applies):
    assert parse_llm_fault(fault).applies_to(request_info) is applies


def test_the_oldest_failure_wins_and_nothing_else_happens():
    policy = LlmFaultPolicy(seed=1)
    policy.add(parse_llm_fault({"kind": "rate_limit", "retry_after_s": 3}), now=0.0)
    policy.add(parse_llm_fault({"kind": "server_error", "status": 503}), now=0.0)
    policy.add(parse_llm_fault({"kind": "latency", "delay_ms": 50}), now=0.0)
    decision = policy.decide_request(0.0, PLAIN)
    assert (decision.error_status, decision.retry_after_s, decision.headers_delay_ms) == (429, 3, 0.0)
    assert decision.fault_ids == ("f1",)
    assert policy.injected == {"rate_limit": 1}


def test_shaping_faults_combine():
    policy = LlmFaultPolicy(seed=1)
    for fault in (
        {"kind": "latency", "delay_ms": 10},
        {"kind": "latency", "delay_ms": 5},
        {"kind": "slow_first_token", "delay_ms": 7},
        {"kind": "stream_cut", "after_events": 4, "final_event": True},
        {"kind": "stream_cut", "after_events": 2},
        {"kind": "connection_reset", "after_events": 3},
        {"kind": "refusal"},
        {"kind": "empty_content"},
    ):
        policy.add(parse_llm_fault(fault), now=0.0)
    d = policy.decide_request(0.0, STREAM)
    assert d.headers_delay_ms == 15 and d.first_token_delay_ms == 7
    assert (d.cut_after_events, d.cut_final_event, d.reset_after_events) == (2, False, 3)
    assert d.content == ("refusal", "empty_content")
    assert len(d.fault_ids) == 8


def test_the_same_seed_gives_the_same_decisions_and_another_seed_others():
    def run(seed: int) -> list[bool]:
        policy = LlmFaultPolicy(seed=seed)
        policy.add(parse_llm_fault({"kind": "server_error", "rate": 0.5}), now=0.0)
        policy.add(parse_llm_fault({"kind": "stream_cut", "after_events": 1, "rate": 0.5}), now=0.0)
        made = decisions(policy, [PLAIN, STREAM] * 50)
        return [not d.fault_ids for d in made]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_faults_expire_by_themselves():
    policy = LlmFaultPolicy(seed=1)
    policy.add(parse_llm_fault({"kind": "refusal", "duration_s": 5}), now=100.0)
    assert policy.decide_request(104.9, PLAIN).content == ("refusal",)
    assert not policy.decide_request(105.0, PLAIN).fault_ids
    assert policy.active(105.0) == []


def test_the_chaos_host_decide_is_refused():
    with pytest.raises(TypeError):
        LlmFaultPolicy(seed=1).decide(0.0)


BROKEN = [
    ('{"text": "req-1"}', '{"text": "req-1"'),
    ("{}", "{"),
    ("", "{"),
    ("[1, 2]", "[1, 2]{"),
]


@pytest.mark.parametrize("text,broken", BROKEN)
def test_broken_json_never_parses(text, broken):
    import json

    assert break_json_text(text) == broken
    with pytest.raises(ValueError):
        json.loads(broken)
