"""wrong_answers counts answers that do not belong to their request, end to end over agenkit."""

from __future__ import annotations

import pytest
from agenkit.interfaces import Agent, Message
from chaoslib.exceptions import ActivityFailed

from chaosagenkit.client import actions, probes, registry
from tests.integration.test_client_support import clean_clients, local_server, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_middleware]


class MismatchAgent(Agent):
    """A DELIBERATE FAKE: the chaos host cannot make an answer belong to another request,
    so this agent does it on purpose. For "req-<n>": n % 4 == 0 -> another request_id,
    n % 4 == 1 -> another content, otherwise a correct echo.
    """

    @property
    def name(self) -> str:
        return "mismatch"

    async def process(self, message: Message) -> Message:
        n = int(str(message.content).removeprefix("req-"))
        request_id = message.metadata["request_id"]
        content = message.content
        if n % 4 == 0:
            request_id = f"{request_id}-not-mine"
        elif n % 4 == 1:
            content = f"req-{n + 1000}"
        return Message(role="agent", content=content, metadata={"request_id": request_id})


def mismatch() -> Agent:
    return MismatchAgent()


def broken_check(request: Message, answer: Message) -> bool:
    """An answer check with a bug: it reads a metadata key no answer has."""
    return answer.metadata["order_number"] == request.content


def client_only_id(request: Message, answer: Message) -> bool:
    """A custom answer check (module:function) that looks at the request_id only."""
    return answer.metadata.get("request_id") == request.metadata["request_id"]


@pytest.fixture
def mismatch_endpoint():
    with local_server("tests.integration.test_client_answers:mismatch") as endpoint:
        yield endpoint


def test_mismatched_answers_are_counted_as_wrong_not_ok(clean_clients, mismatch_endpoint):
    actions.create_client("caller", endpoint=mismatch_endpoint)
    summary = probes.send_requests("caller", count=40, concurrency=1)
    assert summary["sent"] == 40
    assert summary["ok"] == 40  # every request was answered...
    assert summary["wrong_answers"] == 20  # ...but 10 with another id and 10 with another content
    assert summary["success_ratio"] == 0.5
    assert probes.wrong_answers("caller") == 20
    assert probes.success_rate("caller") == 0.5


def test_answer_check_any_and_custom(clean_clients, mismatch_endpoint):
    actions.create_client("blind", endpoint=mismatch_endpoint, answer_check="any")
    actions.create_client(
        "ids", endpoint=mismatch_endpoint, answer_check="tests.integration.test_client_answers:client_only_id"
    )
    assert probes.send_requests("blind", count=8)["wrong_answers"] == 0
    assert probes.send_requests("ids", count=8)["wrong_answers"] == 2  # n = 0, 4: ids differ


def test_echo_target_answers_are_all_right_with_pooled_connections(clean_clients):
    with local_server("chaosagenkit.targets:echo") as endpoint:
        actions.create_client("pool", endpoint=endpoint, connections=8)
        summary = probes.send_requests("pool", count=400, concurrency=16)
    assert summary["sent"] == 400 and summary["ok"] == 400 and summary["wrong_answers"] == 0
    assert summary["errors"] == {}
    latency = summary["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]


def test_an_answer_check_that_raises_is_one_configuration_error_not_wrong_answers(clean_clients):
    check = "tests.integration.test_client_answers:broken_check"
    with local_server("chaosagenkit.targets:echo") as endpoint:
        actions.create_client("caller", endpoint=endpoint, answer_check=check, connections=2)
        with pytest.raises(ActivityFailed) as raised:
            probes.send_requests("caller", count=20, concurrency=4)
        message = str(raised.value)
        assert message.startswith(f"send_requests: 'answer_check' {check} raised KeyError: 'order_number'")
        assert "\n" not in message
        client = registry.get_client("caller")
        assert len(client.recorder) == 0  # no request was judged, so none is counted wrong (or right)
        assert client.recorder.select().summary()["wrong_answers"] == 0
        with pytest.raises(ActivityFailed) as again:  # the same error, and nothing is sent
            probes.send_requests("caller", count=5)
        assert str(again.value) == message
        assert len(client.recorder) == 0


def test_an_answer_check_that_raises_stops_background_traffic_with_the_same_error(clean_clients):
    check = "tests.integration.test_client_answers:broken_check"
    with local_server("chaosagenkit.targets:echo") as endpoint:
        actions.create_client("caller", endpoint=endpoint, answer_check=check)
        actions.start_traffic("caller", rate_per_s=200, duration_s=30, concurrency=4)
        client = registry.get_client("caller")
        wait_for(lambda: client.check_error is not None, what="the answer check to raise")
        wait_for(lambda: not client.traffic.running, what="the traffic to stop by itself")
        with pytest.raises(ActivityFailed, match=r"^stop_traffic: 'answer_check' .* raised KeyError"):
            actions.stop_traffic("caller")
