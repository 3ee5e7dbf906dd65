"""Demo targets to serve with ``chaosagenkit serve --agent chaosagenkit.targets:echo``.

A target is a zero-argument factory returning an ``agenkit.interfaces.Agent``.
``echo`` answers with the request's content and its ``request_id``, so a
caller can tell whether each answer belongs to its request (a connection
that hands a late answer to the next request is caught this way).
"""

from __future__ import annotations

from agenkit.interfaces import Agent, Message

__all__ = ["EchoAgent", "echo"]


class EchoAgent(Agent):
    """Answer every request with its own content and ``request_id``."""

    @property
    def name(self) -> str:
        return "echo"

    async def process(self, message: Message) -> Message:
        metadata = message.metadata or {}
        return Message(
            role="agent",
            content=message.content,
            metadata={"request_id": metadata.get("request_id"), "echo": True},
        )


def echo() -> Agent:
    """The echo target: content and request_id in, the same content and request_id out."""
    return EchoAgent()
