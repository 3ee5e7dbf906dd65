"""The two wire formats, the built-in model and the stream shaper, table-driven. No sockets."""

from __future__ import annotations

import json

import pytest

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.llm import anthropic_wire, openai_wire
from chaosagenkit.llm.faults import LlmDecision
from chaosagenkit.llm.responder import Answer, Conversation, Responder, ToolCall, tokenize
from chaosagenkit.llm.sse import SseParser
from chaosagenkit.llm.stream import End, Reset, Send, StreamShaper
from chaosagenkit.llm.wire import WireError, WireRequest

pytestmark = [pytest.mark.chaos]

WIRES = [openai_wire, anthropic_wire]
TEXT = Answer("req-12")  # tokens: "req-", "12"
TOOL = Answer(tool_calls=(ToolCall("echo", '{"text": "req-1"}'),))


def request(stream: bool = True) -> WireRequest:
    return WireRequest("m", stream, Conversation("req-12", None, (), 2))


def text_of_stream(wire, events) -> str:
    """What an SDK would assemble from the token events (text and tool arguments)."""
    parts = []
    for event in events:
        if event.data == "[DONE]":
            continue
        payload = json.loads(event.data)
        if wire is openai_wire:
            for choice in payload.get("choices") or ():
                delta = choice["delta"]
                parts.append(delta.get("content") or "")
                for call in delta.get("tool_calls") or ():
                    parts.append(call["function"].get("arguments") or "")
        elif payload["type"] == "content_block_delta":
            parts.append(payload["delta"].get("text") or payload["delta"].get("partial_json") or "")
    return "".join(parts)


def finish_of(wire, events) -> str | None:
    for event in reversed(events):
        if event.data == "[DONE]":
            continue
        payload = json.loads(event.data)
        if wire is openai_wire and payload.get("choices") and payload["choices"][0]["finish_reason"]:
            return payload["choices"][0]["finish_reason"]
        if wire is anthropic_wire and payload["type"] == "message_delta":
            return payload["delta"]["stop_reason"]
    return None


@pytest.mark.parametrize("wire", WIRES)
def test_a_streamed_answer_carries_every_token_and_its_finish(wire):
    events = wire.answer_events(TEXT, request(), "id-1")
    assert text_of_stream(wire, events) == "req-12"
    assert [wire.carries_token(e) for e in events].count(True) == len(tokenize("req-12"))
    assert finish_of(wire, events) in ("stop", "end_turn")
    assert events[-1] == wire.end_event()


@pytest.mark.parametrize("wire", WIRES)
def test_a_streamed_tool_call_carries_its_arguments(wire):
    events = wire.answer_events(TOOL, request(), "id-1")
    assert json.loads(text_of_stream(wire, events)) == {"text": "req-1"}
    assert finish_of(wire, events) in ("tool_calls", "tool_use")


def shaped(wire, decision: LlmDecision, answer: Answer = TEXT):
    shaper = StreamShaper(decision, wire)
    actions = []
    for event in wire.answer_events(answer, request(), "id-1"):
        actions += shaper.on_event(event)
    return actions + shaper.on_end()


def events_sent(actions) -> list:
    parser = SseParser()
    return [e for a in actions if isinstance(a, Send) for e in parser.feed(a.data)]


SHAPES = [
    # (decision, events sent before the last action, last action)
    (LlmDecision(), None, End),
    (LlmDecision(cut_after_events=0), 0, End),
    (LlmDecision(cut_after_events=2), 2, End),
    (LlmDecision(reset_after_events=2), 2, Reset),
    (LlmDecision(cut_after_events=9, reset_after_events=3), 3, Reset),
    (LlmDecision(cut_after_events=1000), None, End),
]


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("decision,sent,last", SHAPES)
def test_stream_shapes(wire, decision, sent, last):
    actions = shaped(wire, decision)
    expected = len(wire.answer_events(TEXT, request(), "id-1")) if sent is None else sent
    assert len(events_sent(actions)) == expected
    assert isinstance(actions[-1], last)
    assert sum(isinstance(a, (End, Reset)) for a in actions) == 1


@pytest.mark.parametrize("wire", WIRES)
def test_a_cut_with_final_event_ends_with_the_end_marker_but_no_finish_reason(wire):
    events = events_sent(shaped(wire, LlmDecision(cut_after_events=2, cut_final_event=True)))
    assert events[-1] == wire.end_event()
    assert finish_of(wire, events) is None
    assert len(events) == 3


@pytest.mark.parametrize("wire", WIRES)
def test_a_malformed_event_is_not_json_and_ends_the_stream(wire):
    actions = shaped(wire, LlmDecision(malformed_after_events=1))
    events = events_sent(actions)
    assert len(events) == 2 and isinstance(actions[-1], End)
    with pytest.raises(ValueError):
        json.loads(events[-1].data)


@pytest.mark.parametrize("wire", WIRES)
def test_delays_go_before_tokens_only(wire):
    actions = shaped(wire, LlmDecision(first_token_delay_ms=500, token_delay_ms=20))
    delays = [(a.delay_ms, a.token) for a in actions if isinstance(a, Send)]
    assert [d for d, token in delays if token] == [500, 20]
    assert all(d == 0 for d, token in delays if not token)


CONTENT = [
    # (kinds, answer, expected text, expected finish: openai, anthropic)
    (("empty_content",), TEXT, "", ("stop", "end_turn")),
    (("refusal",), TEXT, "", ("content_filter", "refusal")),
    (("empty_content",), TOOL, "", ("stop", "end_turn")),
]


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("kinds,answer,text,finishes", CONTENT)
def test_content_faults_on_streams(wire, kinds, answer, text, finishes):
    events = events_sent(shaped(wire, LlmDecision(content=kinds), answer))
    assert text_of_stream(wire, events) == text
    assert finish_of(wire, events) == finishes[WIRES.index(wire)]


@pytest.mark.parametrize("wire", WIRES)
def test_a_malformed_tool_call_stream_does_not_parse(wire):
    events = events_sent(shaped(wire, LlmDecision(content=("malformed_tool_call",)), TOOL))
    with pytest.raises(ValueError):
        json.loads(text_of_stream(wire, events))


BODIES = [
    # (kinds, answer, check on the openai body)
    (("empty_content",), TEXT, lambda m, f: m["content"] == "" and f == "stop"),
    (("refusal",), TEXT, lambda m, f: m["content"] is None and f == "content_filter"),
    (
        ("malformed_tool_call",),
        TOOL,
        lambda m, f: m["tool_calls"][0]["function"]["arguments"] == '{"text": "req-1"',
    ),
    ((), TEXT, lambda m, f: m["content"] == "req-12" and f == "stop"),
]


@pytest.mark.parametrize("kinds,answer,check", BODIES)
def test_content_faults_on_openai_bodies(kinds, answer, check):
    body = openai_wire.apply_content_faults(openai_wire.answer_body(answer, request(False), "x"), kinds)
    choice = body["choices"][0]
    assert check(choice["message"], choice["finish_reason"])


@pytest.mark.parametrize("kinds,stop", [(("empty_content",), "end_turn"), (("refusal",), "refusal")])
def test_content_faults_on_anthropic_bodies(kinds, stop):
    body = anthropic_wire.apply_content_faults(anthropic_wire.answer_body(TEXT, request(False), "x"), kinds)
    assert body["content"] == [] and body["stop_reason"] == stop


def test_error_bodies_have_each_providers_shape():
    assert openai_wire.error_body(429, "rate_limit", "m")["error"]["code"] == "rate_limit_exceeded"
    assert openai_wire.error_body(400, "context_length", "m")["error"]["code"] == "context_length_exceeded"
    assert anthropic_wire.error_body(529, "server_error", "m") == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "m"},
    }
    assert "prompt is too long" in anthropic_wire.fault_message("context_length", 400, request())


BAD_REQUESTS = [
    (openai_wire, []),
    (openai_wire, {"messages": [{"role": "user", "content": "x"}]}),
    (openai_wire, {"model": "m", "messages": []}),
    (anthropic_wire, {"model": "m", "messages": [{"role": "user", "content": "x"}]}),  # no max_tokens
    (anthropic_wire, {"model": "m", "max_tokens": 5, "messages": "x"}),
]


@pytest.mark.parametrize("wire,body", BAD_REQUESTS)
def test_bad_requests_are_refused_as_the_api_would(wire, body):
    with pytest.raises(WireError) as caught:
        wire.parse_request(body)
    assert caught.value.status == 400


def test_requests_become_conversations():
    openai = openai_wire.parse_request(
        {
            "model": "m",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                {"role": "tool", "content": "out"},
            ],
            "tools": [{"type": "function", "function": {"name": "echo"}}],
        }
    )
    assert openai.stream and openai.include_usage
    assert openai.conversation == Conversation("hi", "out", ("echo",), 2)
    anthropic = anthropic_wire.parse_request(
        {
            "model": "m",
            "max_tokens": 9,
            "messages": [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "echo", "input": {}}],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "out"}]},
            ],
            "tools": [{"name": "echo", "input_schema": {}}],
        }
    )
    assert anthropic.conversation.last_user_text == "hi"
    assert anthropic.conversation.tool_result == "out" and anthropic.conversation.tools == ("echo",)


ANSWERS = [
    # (script, conversation, answer)
    ([], Conversation("req-1"), Answer("req-1")),
    ([], Conversation("req-1", tools=("echo",)), Answer(tool_calls=(ToolCall("echo", '{"text": "req-1"}'),))),
    ([], Conversation("req-1", tool_result="out", tools=("echo",)), Answer("out")),
    ([{"match": "^req", "reply": "scripted"}], Conversation("req-1"), Answer("scripted")),
    (
        [{"match": "weather", "tool": "forecast", "arguments": {"city": "Paris"}}],
        Conversation("weather?"),
        Answer(tool_calls=(ToolCall("forecast", '{"city": "Paris"}'),)),
    ),
    ([{"match": "nomatch", "reply": "x"}], Conversation("req-1"), Answer("req-1")),
]


@pytest.mark.parametrize("script,conversation,answer", ANSWERS)
def test_the_built_in_model(script, conversation, answer):
    assert Responder(script).answer(conversation) == answer


@pytest.mark.parametrize(
    "rule,field",
    [
        ({"reply": "x"}, "script[0]"),
        ({"match": "(", "reply": "x"}, "script[0].match"),
        ({"match": "x"}, "script[0]"),
        ({"match": "x", "reply": "a", "tool": "b"}, "script[0]"),
        ({"match": "x", "tool": "t", "arguments": []}, "script[0].arguments"),
        ({"match": "x", "reply": "a", "extra": 1}, "script[0].extra"),
    ],
)
def test_bad_script_rules_are_named(rule, field):
    with pytest.raises(ConfigurationError) as caught:
        Responder([rule])
    assert caught.value.field == field


@pytest.mark.parametrize("text", ["", "req-12", "hello  world ", "a\nb", "x" * 9])
def test_tokens_join_back_to_the_text(text):
    assert "".join(tokenize(text)) == text
    assert all(len(t.strip()) <= 4 for t in tokenize(text))
