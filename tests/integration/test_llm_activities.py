"""The LLM activities and probes through their Chaos Toolkit face, against a real endpoint child."""

from __future__ import annotations

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.llm import actions, probes, process
from chaosagenkit.llm.process import LlmEndpointRef
from chaosagenkit.sandbox import SANDBOX
from chaosagenkit.service.hosts import _expand_env

openai = pytest.importorskip("openai", reason="the openai SDK comes with the extra chaosagenkit[llm]")

pytestmark = [pytest.mark.chaos]


@pytest.fixture
def model():
    SANDBOX.reset()
    SANDBOX.seed = 42
    ref = process.start_or_register({"name": "model"})
    yield ref
    process.teardown()
    SANDBOX.reset()


def ask(ref, stream: bool = False) -> str:
    client = openai.OpenAI(base_url=f"{ref.base_url}/v1", api_key="x", max_retries=0)
    answer = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "req-1"}], stream=stream
    )
    if stream:
        return "".join(c.choices[0].delta.content or "" for c in answer)
    return answer.choices[0].message.content


BAD = [
    (
        actions.inject_rate_limit,
        {"retry_after_s": -3},
        "inject_rate_limit: 'retry_after_s' must be >= 0, got -3",
    ),
    (
        actions.inject_server_error,
        {"status": 404},
        "inject_server_error: 'status' must be one of 500, 502, 503, 529, got 404",
    ),
    (
        actions.inject_empty_content,
        {"rate": 2},
        "inject_empty_content: 'rate' must be between 0 and 1, got 2",
    ),
    (
        actions.inject_refusal,
        {"first": 2, "every": 2},
        "inject_refusal: 'every' cannot be combined with first",
    ),
    (
        actions.inject_llm_latency,
        {"delay_ms": 5, "duration_s": 0},
        "inject_llm_latency: 'duration_s' must be > 0, got 0",
    ),
]


@pytest.mark.parametrize("action,arguments,line", BAD)
def test_bad_arguments_fail_in_one_line_and_change_nothing(model, action, arguments, line):
    with pytest.raises(ActivityFailed) as caught:
        action("model", **arguments)
    assert str(caught.value).startswith(line)
    assert probes.active_llm_faults("model") == []


def test_an_unknown_endpoint_is_named():
    SANDBOX.reset()
    with pytest.raises(ActivityFailed, match="'endpoint' must be an LLM endpoint of this run"):
        actions.inject_refusal("nope")


def test_inject_probe_and_clear_through_the_timeline(model):
    fault = actions.inject_stream_cut("model", after_events=2, first=1, duration_s=30)
    assert fault["kind"] == "stream_cut" and fault["params"]["after_events"] == 2
    assert ask(model, stream=True) == "req-"
    assert ask(model, stream=True) == "req-1"
    assert probes.requests_seen("model", since_last_inject=True) == 2
    assert probes.llm_faults_injected("model", kind="stream_cut") == 1
    assert probes.tokens_streamed("model") == 1 + 2
    assert probes.time_to_first_token("model") >= 0
    assert probes.attempt_gaps_ms("model")["attempts"] == 2
    assert [r["outcome"] for r in probes.llm_requests("model", last=2)] == ["cut", "answered"]
    assert actions.clear_llm_faults("model")["removed"] == [fault["id"]]
    events = [(e["event"], e.get("kind")) for e in SANDBOX.timeline() if e["target"] == "model"]
    assert events == [("start", None), ("inject", "stream_cut"), ("clear", None)]


def test_teardown_clears_and_stops(model):
    actions.inject_refusal("model")
    pid = model.process.pid
    process.teardown()
    assert model.process.poll() is not None and not SANDBOX.llm_endpoints
    assert ("clear", "model") in [(e["event"], e["target"]) for e in SANDBOX.timeline()]
    assert ("stop", "model") in [(e["event"], e["target"]) for e in SANDBOX.timeline()]
    assert pid == model.process.pid


def test_a_servers_env_names_an_endpoint_by_its_base_url():
    SANDBOX.reset()
    SANDBOX.llm_endpoints["model"] = LlmEndpointRef("model", "http://127.0.0.1:4000", "http://127.0.0.1:4001")
    try:
        assert _expand_env({"URL": "{llm:model}/v1"}) == {"URL": "http://127.0.0.1:4000/v1"}
        with pytest.raises(ConfigurationError, match="LLM endpoint 'other', which is not started"):
            _expand_env({"URL": "{llm:other}"})
    finally:
        SANDBOX.reset()
