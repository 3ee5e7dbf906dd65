"""Deliberately broken targets for proving that experiments can deviate (test-only).

Served by a real ``chaosagenkit serve`` like any agent; they stand in for a
target that breaks during an experiment, which nothing else can provoke on
demand without changing the experiment itself.
"""

from __future__ import annotations

from agenkit.interfaces import Agent, Message

#: The steady-state hypothesis of every experiment sends 20 requests first.
HEALTHY_REQUESTS = 20


class EchoThenFail(Agent):
    """Echo the first HEALTHY_REQUESTS requests, then fail every request."""

    def __init__(self) -> None:
        self.seen = 0

    @property
    def name(self) -> str:
        return "echo"

    async def process(self, message: Message) -> Message:
        self.seen += 1
        if self.seen > HEALTHY_REQUESTS:
            raise RuntimeError("weak target: broken after the steady state")
        return Message(
            role="agent",
            content=message.content,
            metadata={"request_id": (message.metadata or {}).get("request_id")},
        )


def echo_then_fail() -> Agent:
    return EchoThenFail()
