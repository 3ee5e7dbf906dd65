"""The LLM fault endpoint against the REAL openai and anthropic SDKs, over HTTP on 127.0.0.1.

Each test sets its faults through the control API and reads what the
endpoint saw from its request log; nothing here contacts a provider: the
pass-through tests forward to a second endpoint in built-in mode.
"""

from __future__ import annotations

import itertools
import json
import time

import pytest

from chaosagenkit import supervisor
from chaosagenkit.control_client import ControlClient
from chaosagenkit.exceptions import ControlAPIError
from chaosagenkit.limits import MAX_SEED
from chaosagenkit.llm import process
from chaosagenkit.sandbox import SANDBOX
from tests.polling import wait_for

openai = pytest.importorskip("openai", reason="the openai SDK comes with the extra chaosagenkit[llm]")
anthropic = pytest.importorskip(
    "anthropic", reason="the anthropic SDK comes with the extra chaosagenkit[llm]"
)

pytestmark = [pytest.mark.chaos]

USER = [{"role": "user", "content": "req-12"}]
TOOLS = [{"type": "function", "function": {"name": "echo", "parameters": {"type": "object"}}}]
ANTHROPIC_TOOLS = [{"name": "echo", "input_schema": {"type": "object"}}]


@pytest.fixture(scope="module")
def endpoints():
    SANDBOX.reset()
    front = process.start_endpoint("front", seed=3)
    upstream = process.start_endpoint("upstream", seed=4)
    relay = process.start_endpoint("relay", seed=5, upstream=upstream.base_url)
    yield {"front": front, "upstream": upstream, "relay": relay}
    process.teardown()
    SANDBOX.reset()


@pytest.fixture
def llm(endpoints):
    for ref in endpoints.values():
        process.client_for(ref).delete("/faults")
    return endpoints["front"]


def inject(ref, **fault):
    return process.client_for(ref).post("/faults", fault)


def attempts(ref) -> list[dict]:
    return process.client_for(ref).get("/requests?since_inject=true")["requests"]


def oai(ref, retries: int = 0, timeout: float = 10.0):
    return openai.OpenAI(base_url=f"{ref.base_url}/v1", api_key="test", max_retries=retries, timeout=timeout)


def ant(ref, retries: int = 0, timeout: float = 10.0):
    return anthropic.Anthropic(base_url=ref.base_url, api_key="test", max_retries=retries, timeout=timeout)


def chat(client, stream: bool = False, **kwargs):
    return client.chat.completions.create(model="m", messages=USER, stream=stream, **kwargs)


def message(client, **kwargs):
    return client.messages.create(model="c", max_tokens=64, messages=USER, **kwargs)


# -- no fault ------------------------------------------------------------------


def test_openai_answers_json_streams_and_tool_calls(llm):
    answer = chat(oai(llm))
    assert (answer.choices[0].message.content, answer.choices[0].finish_reason) == ("req-12", "stop")
    chunks = list(chat(oai(llm), stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "req-12"
    assert chunks[-1].usage.completion_tokens == 2
    call = chat(oai(llm), tools=TOOLS).choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("echo", {"text": "req-12"})


def test_anthropic_answers_json_streams_and_tool_calls(llm):
    answer = message(ant(llm))
    assert (answer.content[0].text, answer.stop_reason) == ("req-12", "end_turn")
    with ant(llm).messages.stream(model="c", max_tokens=64, messages=USER) as stream:
        assert "".join(stream.text_stream) == "req-12"
        assert stream.get_final_message().stop_reason == "end_turn"
    with ant(llm).messages.stream(model="c", max_tokens=64, messages=USER, tools=ANTHROPIC_TOOLS) as stream:
        block = stream.get_final_message().content[0]
    assert (block.type, block.input) == ("tool_use", {"text": "req-12"})


# -- errors --------------------------------------------------------------------


def test_a_short_rate_limit_is_retried_after_retry_after(llm):
    inject(llm, kind="rate_limit", retry_after_s=0.3, first=2)
    assert chat(oai(llm, retries=2)).choices[0].message.content == "req-12"
    seen = attempts(llm)
    assert [r["status"] for r in seen] == [429, 429, 200]
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(seen)]
    assert min(gaps) >= 0.3, f"the SDK retried before Retry-After: {gaps}"


def test_a_rate_limit_without_retry_after_exhausts_the_sdk_retries(llm):
    inject(llm, kind="rate_limit")
    with pytest.raises(openai.RateLimitError) as caught:
        chat(oai(llm, retries=1))
    assert "retry-after" not in caught.value.response.headers
    assert caught.value.body["code"] == "rate_limit_exceeded"
    assert len(attempts(llm)) == 2


@pytest.mark.parametrize("status", [500, 502, 503, 529])
def test_server_errors_reach_both_sdks_with_their_status(llm, status):
    inject(llm, kind="server_error", status=status)
    with pytest.raises(openai.APIStatusError) as caught:
        chat(oai(llm))
    assert caught.value.status_code == status
    with pytest.raises(anthropic.APIStatusError) as caught_a:
        message(ant(llm))
    assert caught_a.value.status_code == status
    expected = "overloaded_error" if status == 529 else "api_error"
    assert caught_a.value.body["error"]["type"] == expected


def test_a_context_length_error_is_a_bad_request(llm):
    inject(llm, kind="context_length")
    with pytest.raises(openai.BadRequestError) as caught:
        chat(oai(llm, retries=2))
    assert caught.value.code == "context_length_exceeded"
    with pytest.raises(anthropic.BadRequestError, match="prompt is too long"):
        message(ant(llm, retries=2))
    assert len(attempts(llm)) == 2, "a 400 is not retried"


def test_a_connection_reset_is_a_connection_error(llm):
    inject(llm, kind="connection_reset")
    with pytest.raises(openai.APIConnectionError):
        chat(oai(llm))
    with pytest.raises(anthropic.APIConnectionError):
        message(ant(llm))
    assert [r["outcome"] for r in attempts(llm)] == ["reset", "reset"]


# -- streams -------------------------------------------------------------------


@pytest.mark.parametrize("final_event", [False, True])
def test_a_cut_stream_ends_without_error_and_without_finish_reason(llm, final_event):
    inject(llm, kind="stream_cut", after_events=2, final_event=final_event)
    chunks = list(chat(oai(llm), stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "req-"
    assert all(c.choices[0].finish_reason is None for c in chunks), "a cut stream has no finish reason"
    with ant(llm).messages.stream(model="c", max_tokens=64, messages=USER) as stream:
        assert "".join(stream.text_stream) == ""  # the cut came before the first text delta
    assert [r["outcome"] for r in attempts(llm)] == ["cut", "cut"]


def test_a_reset_mid_stream_breaks_the_iteration(llm):
    inject(llm, kind="connection_reset", after_events=2)
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in chat(oai(llm), stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "req-"]


def test_a_malformed_event_raises_in_both_sdks(llm):
    inject(llm, kind="malformed_sse", after_events=1)
    with pytest.raises(json.JSONDecodeError):
        list(chat(oai(llm), stream=True))
    with (
        pytest.raises(json.JSONDecodeError),
        ant(llm).messages.stream(model="c", max_tokens=64, messages=USER) as s,
    ):
        list(s.text_stream)


def test_a_slow_first_token_trips_the_sdk_read_timeout(llm):
    inject(llm, kind="slow_first_token", delay_ms=3000)
    stream = chat(oai(llm, timeout=0.3), stream=True)  # the headers come at once
    with pytest.raises(openai.APITimeoutError):
        list(stream)
    assert len(attempts(llm)) == 1, "the SDK does not retry a stream that has started"


def test_slow_headers_trip_the_timeout_of_every_attempt(llm):
    inject(llm, kind="latency", delay_ms=3000)
    with pytest.raises(openai.APITimeoutError):
        chat(oai(llm, retries=1, timeout=0.3))
    assert len(attempts(llm)) == 2, "the SDK retries a request that timed out before its headers"


def test_slow_tokens_arrive_all(llm):
    inject(llm, kind="slow_tokens", delay_ms=30)
    assert "".join(c.choices[0].delta.content or "" for c in chat(oai(llm), stream=True)) == "req-12"
    assert process.client_for(llm).get("/stats")["tokens_streamed"] >= 2


# -- content -------------------------------------------------------------------


def test_a_malformed_tool_call_has_arguments_that_do_not_parse(llm):
    inject(llm, kind="malformed_tool_call")
    call = chat(oai(llm), tools=TOOLS).choices[0].message.tool_calls[0]
    with pytest.raises(json.JSONDecodeError):
        json.loads(call.function.arguments)
    streamed = "".join(
        tc.function.arguments or ""
        for c in chat(oai(llm), stream=True, tools=TOOLS)
        for tc in c.choices[0].delta.tool_calls or ()
    )
    with pytest.raises(json.JSONDecodeError):
        json.loads(streamed)


def test_the_anthropic_sdk_repairs_a_streamed_tool_input_missing_its_closing_brace(llm):
    # The SDK parses input_json_delta fragments as partial JSON, so a truncated input comes back
    # as a complete-looking object: the agent cannot tell it was cut (docs/llm.md).
    inject(llm, kind="malformed_tool_call")
    with ant(llm).messages.stream(model="c", max_tokens=64, messages=USER, tools=ANTHROPIC_TOOLS) as stream:
        block = stream.get_final_message().content[0]
    assert block.input == {"text": "req-12"}
    assert [r["faults"] for r in attempts(llm)] == [["malformed_tool_call"]]


@pytest.mark.parametrize(
    "kind,openai_finish,anthropic_stop",
    [("empty_content", "stop", "end_turn"), ("refusal", "content_filter", "refusal")],
)
def test_empty_and_refused_answers(llm, kind, openai_finish, anthropic_stop):
    inject(llm, kind=kind)
    choice = chat(oai(llm)).choices[0]
    assert (choice.message.content or "", choice.finish_reason) == ("", openai_finish)
    answer = message(ant(llm))
    assert (answer.content, answer.stop_reason) == ([], anthropic_stop)


# -- pass-through ----------------------------------------------------------------


def test_pass_through_forwards_both_apis(endpoints, llm):
    relay = endpoints["relay"]
    assert chat(oai(relay)).choices[0].message.content == "req-12"
    assert "".join(c.choices[0].delta.content or "" for c in chat(oai(relay), stream=True)) == "req-12"
    assert message(ant(relay)).content[0].text == "req-12"
    assert process.client_for(endpoints["upstream"]).get("/stats")["requests"] >= 3


def test_pass_through_applies_its_faults_to_the_upstreams_answers(endpoints, llm):
    relay = endpoints["relay"]
    inject(relay, kind="stream_cut", after_events=2, first=1)
    inject(relay, kind="empty_content", first=1)
    assert "".join(c.choices[0].delta.content or "" for c in chat(oai(relay), stream=True)) == ""
    assert chat(oai(relay)).choices[0].message.content == "req-12"
    kinds = [r["faults"] for r in attempts(relay)]
    assert kinds == [["stream_cut", "empty_content"], []]


def test_pass_through_keeps_the_upstreams_errors_and_retry_after(endpoints, llm):
    relay, upstream = endpoints["relay"], endpoints["upstream"]
    inject(upstream, kind="rate_limit", retry_after_s=0.2, first=1)
    inject(relay, kind="latency", delay_ms=0)
    assert chat(oai(relay, retries=1)).choices[0].message.content == "req-12"
    assert [r["status"] for r in attempts(relay)] == [429, 200]


# -- the control API ---------------------------------------------------------------


def test_bad_faults_are_refused_and_change_nothing(llm):
    control = process.client_for(llm)
    with pytest.raises(ControlAPIError) as caught:
        control.post("/faults", [{"kind": "refusal"}, {"kind": "server_error", "status": 404}])
    assert caught.value.status == 400 and "[1].status" in caught.value.error
    assert control.get("/faults") == []
    with pytest.raises(ControlAPIError) as missing:
        control.delete("/faults/f999")
    assert missing.value.status == 404
    with pytest.raises(ControlAPIError):
        control.get("/requests?last=x")


def test_faults_expire_by_themselves(llm):
    control = process.client_for(llm)
    control.post("/faults", {"kind": "refusal", "duration_s": 0.2})
    wait_for(lambda: not control.get("/faults"), timeout_s=10, what="the fault to expire")
    assert chat(oai(llm)).choices[0].message.content == "req-12"


def test_a_token_protects_the_control_api(endpoints):
    ref = process.start_endpoint("guarded", token="s3cret")
    try:
        with pytest.raises(ControlAPIError) as caught:
            ControlClient(ref.control_url).get("/faults")
        assert caught.value.status == 401
        assert process.client_for(ref).get("/faults") == []
        assert chat(oai(ref)).choices[0].message.content == "req-12", "the model API takes any key"
    finally:  # only this one: the module's endpoints serve the tests after it
        supervisor.stop(SANDBOX.llm_endpoints.pop("guarded").process)


def test_reseed_takes_the_seed_range_every_control_plane_takes(llm):
    """POST /seed is checked by the one validator: 0 .. limits.MAX_SEED, as on the chaos host."""
    control = process.client_for(llm)
    before = control.get("/health")["seed"]
    try:
        assert control.post("/seed", {"seed": MAX_SEED}) == {"seed": MAX_SEED}
        for body, words in (
            ({"seed": MAX_SEED + 1}, "'seed' must be"),
            ({"seed": True}, "'seed' must be"),
            ({}, "'seed' is missing"),
        ):
            with pytest.raises(ControlAPIError) as refused:
                control.post("/seed", body)
            assert refused.value.status == 400 and words in str(refused.value), body
    finally:
        control.post("/seed", {"seed": before})
