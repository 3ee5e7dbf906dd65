"""The OpenAI chat-completions wire format (``POST /v1/chat/completions``), JSON and SSE.

Pure (see ``chaosagenkit.llm.wire`` for the contract). A streamed answer
is: a chunk with the role, one chunk per token (text, or tool-call name
then argument fragments), a chunk with the ``finish_reason``, a usage
chunk when ``stream_options.include_usage`` asks for it, then
``data: [DONE]``. Errors are ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from chaosagenkit.llm.faults import break_json_text
from chaosagenkit.llm.responder import Answer, Conversation, tokenize
from chaosagenkit.llm.sse import SseEvent
from chaosagenkit.llm.wire import WireRequest, model_and_messages, text_of

NAME = "openai"
PATH = "/v1/chat/completions"
#: The context window the context-length error claims.
CONTEXT_TOKENS = 8192
DONE = "[DONE]"

_ERRORS = {
    # kind or status -> (type, code, message)
    "rate_limit": (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again later.",
    ),
    "context_length": ("invalid_request_error", "context_length_exceeded", ""),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    529: ("server_error", None, "The server is overloaded."),
    400: ("invalid_request_error", None, "Invalid request."),
}


def parse_request(body: Any) -> WireRequest:
    """The request's model, stream flag and conversation; ``WireError`` (400) for what the API refuses."""
    model, messages = model_and_messages(
        body, "you must provide a model parameter", "'messages' must be a non-empty array of message objects"
    )
    last_user = next((text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    tool_result = text_of(messages[-1].get("content")) if messages[-1].get("role") == "tool" else None
    tools = tuple(
        str((tool.get("function") or {}).get("name") or "")
        for tool in body.get("tools") or []
        if isinstance(tool, dict)
    )
    prompt_tokens = sum(len(tokenize(text_of(m.get("content")))) for m in messages)
    options = body.get("stream_options")
    return WireRequest(
        model=model,
        stream=body.get("stream") is True,
        conversation=Conversation(last_user, tool_result, tuple(t for t in tools if t), prompt_tokens),
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
    )


def answer_body(answer: Answer, request: WireRequest, response_id: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None}
    if answer.tool_calls:
        message["content"] = None
        message["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in answer.tool_calls
        ]
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": answer.finish}],
        "usage": _usage(answer, request.conversation),
    }


def answer_events(answer: Answer, request: WireRequest, response_id: str) -> list[SseEvent]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> SseEvent:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _event(_chunk(response_id, created, request.model, [choice]))

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": token}) for token in tokenize(answer.text)]
    for index, call in enumerate(answer.tool_calls):
        function = {"name": call.name, "arguments": ""}
        events.append(
            chunk({"tool_calls": [{"index": index, "id": call.id, "type": "function", "function": function}]})
        )
        events += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
            for fragment in tokenize(call.arguments)
        ]
    events.append(chunk({}, answer.finish))
    if request.include_usage:
        usage = _chunk(response_id, created, request.model, [])
        usage["usage"] = _usage(answer, request.conversation)
        events.append(_event(usage))
    events.append(end_event())
    return events


def error_body(status: int, kind: str, message: str) -> dict[str, Any]:
    error_type, code, _ = _ERRORS.get(kind) or _ERRORS.get(status) or _ERRORS[500]
    param = "messages" if kind == "context_length" else None
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def fault_message(kind: str, status: int, request: WireRequest | None) -> str:
    if kind == "context_length":
        tokens = CONTEXT_TOKENS + 1 + (request.conversation.prompt_tokens if request else 0)
        return (
            f"This model's maximum context length is {CONTEXT_TOKENS} tokens. However, your messages "
            f"resulted in {tokens} tokens. Please reduce the length of the messages."
        )
    return (_ERRORS.get(kind) or _ERRORS.get(status) or _ERRORS[500])[2]


def end_event() -> SseEvent:
    return SseEvent(DONE)


def malformed_event() -> SseEvent:
    return SseEvent('{"id": "chatcmpl-cut", "choices": [{"index": 0, "delta": {"content": "')


def carries_token(event: SseEvent) -> bool:
    delta = _delta(event)
    if delta is None:
        return False
    if delta.get("content"):
        return True
    return any((call.get("function") or {}).get("arguments") for call in delta.get("tool_calls") or ())


def apply_content_faults(body: dict[str, Any], kinds: tuple[str, ...]) -> dict[str, Any]:
    """A copy of a chat.completion body with the content faults applied (other bodies unchanged)."""
    choices = body.get("choices")
    if not kinds or not isinstance(choices, list):
        return body
    body = json.loads(json.dumps(body))
    for choice in body["choices"]:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        if "malformed_tool_call" in kinds:
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                function["arguments"] = break_json_text(str(function.get("arguments") or ""))
        if "empty_content" in kinds or "refusal" in kinds:
            message.pop("tool_calls", None)
            message["content"] = None if "refusal" in kinds else ""
            choice["finish_reason"] = "content_filter" if "refusal" in kinds else "stop"
    return body


def apply_content_faults_to_event(event: SseEvent, kinds: tuple[str, ...]) -> SseEvent:
    """The event with the content faults applied (a [DONE] or non-JSON event unchanged)."""
    if not kinds or event.data == DONE:
        return event
    try:
        chunk = json.loads(event.data)
    except ValueError:
        return event
    changed = False
    for choice in chunk.get("choices") or () if isinstance(chunk, dict) else ():
        delta = choice.get("delta") or {}
        if "malformed_tool_call" in kinds:
            for call in delta.get("tool_calls") or ():
                function = call.get("function") or {}
                if function.get("arguments"):
                    function["arguments"] = function["arguments"].rstrip().rstrip("}")
                    changed = True
        if "empty_content" in kinds or "refusal" in kinds:
            if delta.get("content") or delta.get("tool_calls"):
                delta.pop("tool_calls", None)
                delta["content"] = ""
                changed = True
            if choice.get("finish_reason"):
                choice["finish_reason"] = "content_filter" if "refusal" in kinds else "stop"
                changed = True
    return SseEvent(json.dumps(chunk), event.event, event.id, event.retry) if changed else event


def _delta(event: SseEvent) -> dict[str, Any] | None:
    if event.data == DONE:
        return None
    try:
        chunk = json.loads(event.data)
        return chunk["choices"][0]["delta"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def _chunk(response_id: str, created: int, model: str, choices: list[Any]) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
    }


def _event(payload: dict[str, Any]) -> SseEvent:
    return SseEvent(json.dumps(payload, separators=(",", ":")))


def _usage(answer: Answer, conversation: Conversation) -> dict[str, int]:
    completion = len(tokenize(answer.text)) + sum(len(tokenize(c.arguments)) for c in answer.tool_calls)
    return {
        "prompt_tokens": conversation.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": conversation.prompt_tokens + completion,
    }
