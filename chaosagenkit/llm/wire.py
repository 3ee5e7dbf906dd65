"""What the two wire formats (OpenAI chat completions, Anthropic messages) have in common.

Each format is a pure module (``openai_wire``, ``anthropic_wire``) with the
same functions, listed in ``Wire``: parse a request body, render the
built-in model's answer as a JSON body or as SSE events, render an error
as the provider words it, apply the content faults (empty content,
refusal, malformed tool call) to a body or an event, and tell the endpoint
which events carry tokens and which one ends the stream. The endpoint
picks the module by the request's path and never looks inside a payload
itself, so pass-through (upstream payloads) and built-in answers go
through the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from chaosagenkit.llm.responder import Answer, Conversation
from chaosagenkit.llm.sse import SseEvent

__all__ = ["Wire", "WireError", "WireRequest", "model_and_messages", "text_of"]


class WireError(Exception):
    """A request the API itself would refuse: answered with ``status`` in the provider's error shape."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class WireRequest:
    """A parsed model request."""

    model: str
    stream: bool
    conversation: Conversation
    include_usage: bool = False  # OpenAI's stream_options.include_usage


class Wire(Protocol):
    """The functions each wire-format module provides."""

    NAME: str
    PATH: str

    def parse_request(self, body: Any) -> WireRequest: ...

    def answer_body(self, answer: Answer, request: WireRequest, response_id: str) -> dict[str, Any]: ...

    def answer_events(self, answer: Answer, request: WireRequest, response_id: str) -> list[SseEvent]: ...

    def error_body(self, status: int, kind: str, message: str) -> dict[str, Any]: ...

    def fault_message(self, kind: str, status: int, request: WireRequest | None) -> str: ...

    def end_event(self) -> SseEvent: ...

    def malformed_event(self) -> SseEvent: ...

    def carries_token(self, event: SseEvent) -> bool: ...

    def apply_content_faults(self, body: dict[str, Any], kinds: tuple[str, ...]) -> dict[str, Any]: ...

    def apply_content_faults_to_event(self, event: SseEvent, kinds: tuple[str, ...]) -> SseEvent: ...


def model_and_messages(body: Any, no_model: str, bad_messages: str) -> tuple[str, list[dict[str, Any]]]:
    """A request body's model and messages; ``WireError`` (400) in the API's own words otherwise."""
    if not isinstance(body, dict):
        raise WireError(400, "the request body must be a JSON object")
    model = body.get("model")
    messages = body.get("messages")
    if not isinstance(model, str) or not model:
        raise WireError(400, no_model)
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise WireError(400, bad_messages)
    return model, messages


def text_of(content: Any) -> str:
    """The text of a message content: a string, or the ``text`` of a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, dict) and part.get("type") == "tool_result":
                parts.append(text_of(part.get("content")))
        return "".join(parts)
    return ""
