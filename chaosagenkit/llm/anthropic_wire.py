"""The Anthropic messages wire format (``POST /v1/messages``), JSON and SSE.

Pure (see ``chaosagenkit.llm.wire`` for the contract). A streamed answer
is the documented event flow: ``message_start``, per content block
``content_block_start``, ``content_block_delta`` per token (``text_delta``
or ``input_json_delta``) and ``content_block_stop``, then
``message_delta`` (with the ``stop_reason``) and ``message_stop``; a
``ping`` follows the first block start. Errors are
``{"type": "error", "error": {"type", "message"}}``; 529 is
``overloaded_error``.
"""

from __future__ import annotations

import json
from typing import Any

from chaosagenkit.llm.responder import Answer, Conversation, tokenize
from chaosagenkit.llm.sse import SseEvent
from chaosagenkit.llm.wire import WireError, WireRequest, model_and_messages, text_of

NAME = "anthropic"
PATH = "/v1/messages"
#: The context window the context-length error claims.
CONTEXT_TOKENS = 200_000

_ERRORS = {
    # kind or status -> (error type, message)
    "rate_limit": ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    "context_length": ("invalid_request_error", ""),
    500: ("api_error", "Internal server error"),
    502: ("api_error", "Bad gateway"),
    503: ("api_error", "Service unavailable"),
    529: ("overloaded_error", "Overloaded"),
    400: ("invalid_request_error", "Invalid request"),
}
_STOP = {"stop": "end_turn", "tool_calls": "tool_use"}


def parse_request(body: Any) -> WireRequest:
    """The request's model, stream flag and conversation; ``WireError`` (400) for what the API refuses."""
    model, messages = model_and_messages(
        body, "model: Field required", "messages: must be a non-empty list of message objects"
    )
    if not isinstance(body.get("max_tokens"), int) or isinstance(body.get("max_tokens"), bool):
        raise WireError(400, "max_tokens: Field required")
    users = [m for m in messages if m.get("role") == "user"]
    last = messages[-1]
    last_content = last.get("content")
    tool_results = [
        part
        for part in (last_content if isinstance(last_content, list) else [])
        if isinstance(part, dict) and part.get("type") == "tool_result"
    ]
    tool_result = text_of(tool_results) if last.get("role") == "user" and tool_results else None
    last_user = next((text_of(m.get("content")) for m in reversed(users) if not _only_tool_results(m)), "")
    tools = tuple(str(tool.get("name") or "") for tool in body.get("tools") or [] if isinstance(tool, dict))
    prompt_tokens = sum(len(tokenize(text_of(m.get("content")))) for m in messages)
    prompt_tokens += len(tokenize(text_of(body.get("system"))))
    return WireRequest(
        model=model,
        stream=body.get("stream") is True,
        conversation=Conversation(last_user, tool_result, tuple(t for t in tools if t), prompt_tokens),
    )


def answer_body(answer: Answer, request: WireRequest, response_id: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if answer.text or not answer.tool_calls:
        content.append({"type": "text", "text": answer.text})
    for call in answer.tool_calls:
        content.append(
            {
                "type": "tool_use",
                "id": _tool_id(call.id),
                "name": call.name,
                "input": json.loads(call.arguments),
            }
        )
    return {
        **_message(response_id, request.model, content, request.conversation.prompt_tokens, _output(answer)),
        "stop_reason": _STOP[answer.finish],
    }


def answer_events(answer: Answer, request: WireRequest, response_id: str) -> list[SseEvent]:
    start = _message(response_id, request.model, [], request.conversation.prompt_tokens, 1)
    events = [_event({"type": "message_start", "message": {**start, "stop_reason": None}})]
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    if answer.text or not answer.tool_calls:
        blocks.append(
            ({"type": "text", "text": ""}, [{"type": "text_delta", "text": t} for t in tokenize(answer.text)])
        )
    for call in answer.tool_calls:
        block = {"type": "tool_use", "id": _tool_id(call.id), "name": call.name, "input": {}}
        blocks.append(
            (block, [{"type": "input_json_delta", "partial_json": f} for f in tokenize(call.arguments)])
        )
    for index, (block, deltas) in enumerate(blocks):
        events.append(_event({"type": "content_block_start", "index": index, "content_block": block}))
        if index == 0:
            events.append(_event({"type": "ping"}))
        events += [_event({"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]
        events.append(_event({"type": "content_block_stop", "index": index}))
    delta = {"stop_reason": _STOP[answer.finish], "stop_sequence": None}
    events.append(
        _event({"type": "message_delta", "delta": delta, "usage": {"output_tokens": _output(answer)}})
    )
    events.append(end_event())
    return events


def error_body(status: int, kind: str, message: str) -> dict[str, Any]:
    error_type = (_ERRORS.get(kind) or _ERRORS.get(status) or _ERRORS[500])[0]
    return {"type": "error", "error": {"type": error_type, "message": message}}


def fault_message(kind: str, status: int, request: WireRequest | None) -> str:
    if kind == "context_length":
        tokens = CONTEXT_TOKENS + 1 + (request.conversation.prompt_tokens if request else 0)
        return f"prompt is too long: {tokens} tokens > {CONTEXT_TOKENS} maximum"
    return (_ERRORS.get(kind) or _ERRORS.get(status) or _ERRORS[500])[1]


def end_event() -> SseEvent:
    return _event({"type": "message_stop"})


def malformed_event() -> SseEvent:
    return SseEvent(
        '{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "',
        "content_block_delta",
    )


def carries_token(event: SseEvent) -> bool:
    if event.event != "content_block_delta":
        return False
    try:
        delta = json.loads(event.data)["delta"]
    except (ValueError, KeyError, TypeError):
        return False
    return bool(isinstance(delta, dict) and (delta.get("text") or delta.get("partial_json")))


def apply_content_faults(body: dict[str, Any], kinds: tuple[str, ...]) -> dict[str, Any]:
    """A copy of a message body with the content faults applied (other bodies unchanged).

    A non-streamed tool_use ``input`` is a JSON object, so malformed_tool_call
    has nothing to break here (the policy never picks such a request).
    """
    if not kinds or body.get("type") != "message":
        return body
    body = json.loads(json.dumps(body))
    if "empty_content" in kinds or "refusal" in kinds:
        body["content"] = []
        body["stop_reason"] = "refusal" if "refusal" in kinds else "end_turn"
    return body


def apply_content_faults_to_event(event: SseEvent, kinds: tuple[str, ...]) -> SseEvent:
    """The event with the content faults applied (events without content unchanged)."""
    if not kinds:
        return event
    try:
        payload = json.loads(event.data)
    except ValueError:
        return event
    if not isinstance(payload, dict):
        return event
    blank = "empty_content" in kinds or "refusal" in kinds
    kind = payload.get("type")
    changed = False
    if kind == "content_block_start" and blank:
        payload["content_block"] = {"type": "text", "text": ""}
        changed = True
    elif kind == "content_block_delta" and isinstance(payload.get("delta"), dict):
        delta = payload["delta"]
        if blank:
            payload["delta"] = {"type": "text_delta", "text": ""}
            changed = True
        elif "malformed_tool_call" in kinds and delta.get("partial_json"):
            delta["partial_json"] = delta["partial_json"].rstrip().rstrip("}")
            changed = True
    elif kind == "message_delta" and blank and isinstance(payload.get("delta"), dict):
        payload["delta"]["stop_reason"] = "refusal" if "refusal" in kinds else "end_turn"
        changed = True
    return SseEvent(json.dumps(payload), event.event, event.id, event.retry) if changed else event


def _only_tool_results(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return (
        isinstance(content, list)
        and bool(content)
        and all(isinstance(p, dict) and p.get("type") == "tool_result" for p in content)
    )


def _message(
    response_id: str, model: str, content: list[Any], input_tokens: int, output_tokens: int
) -> dict[str, Any]:
    return {
        "id": response_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def _output(answer: Answer) -> int:
    return len(tokenize(answer.text)) + sum(len(tokenize(c.arguments)) for c in answer.tool_calls)


def _tool_id(call_id: str) -> str:
    return call_id.replace("call_", "toolu_", 1)


def _event(payload: dict[str, Any]) -> SseEvent:
    return SseEvent(json.dumps(payload, separators=(",", ":")), payload["type"])
