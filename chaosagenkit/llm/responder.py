"""The built-in model: a small deterministic responder for CI and for machines with no provider.

Pure: a conversation in, an ``Answer`` out, the same answer for the same
conversation every time. What it answers, first rule that applies:

1. The conversation ends with a tool result: the tool result's text (so a
   tool-using agent's second turn gets its tool's output back).
2. A script rule matches the last user text (``re.search``): its ``reply``
   text, or a call of its ``tool`` with its ``arguments``.
3. The request offers tools: a call of the first tool with
   ``{"text": <last user text>}``.
4. Otherwise: the last user text itself (an echo, so a caller can check
   that an answer is its own, and complete).

Tokens are chunks of at most ``TOKEN_CHARS`` non-space characters with the
whitespace before them (``tokenize``): ``"req-12"`` is ``["req-", "12"]``.
A stream sends one token per event, and usage counts these tokens.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from chaosagenkit.exceptions import ConfigurationError

__all__ = ["TOKEN_CHARS", "Answer", "Conversation", "Responder", "ToolCall", "tokenize"]

TOKEN_CHARS = 4
_TOKEN = re.compile(rf"\s*\S{{1,{TOKEN_CHARS}}}|\s+")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into the built-in model's tokens; joining them gives ``text`` back."""
    return _TOKEN.findall(text)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call: the tool's name and its arguments as the JSON text a provider sends."""

    name: str
    arguments: str
    id: str = "call_0"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the model says: text, or tool calls (then ``finish`` is "tool_calls")."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def finish(self) -> str:
        return "tool_calls" if self.tool_calls else "stop"


@dataclass(frozen=True, slots=True)
class Conversation:
    """A request as the responder sees it, whatever the API: provider-neutral."""

    last_user_text: str = ""
    tool_result: str | None = None  # the text of a trailing tool result
    tools: tuple[str, ...] = ()  # names of the tools offered
    prompt_tokens: int = 0


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    reply: str | None = None
    tool: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)


class Responder:
    """Answer conversations deterministically, from an optional script of rules.

    ``script`` is a list of ``{"match": REGEX, "reply": TEXT}`` or
    ``{"match": REGEX, "tool": NAME, "arguments": {...}}`` objects, tried in
    order against the last user text.
    """

    def __init__(self, script: list[dict[str, Any]] | None = None) -> None:
        self.rules = [_rule(i, item) for i, item in enumerate(script or [])]

    def answer(self, conversation: Conversation) -> Answer:
        if conversation.tool_result is not None:
            return Answer(text=conversation.tool_result)
        for rule in self.rules:
            if rule.pattern.search(conversation.last_user_text):
                if rule.tool is not None:
                    return Answer(tool_calls=(ToolCall(rule.tool, json.dumps(rule.arguments)),))
                return Answer(text=rule.reply or "")
        if conversation.tools:
            arguments = json.dumps({"text": conversation.last_user_text})
            return Answer(tool_calls=(ToolCall(conversation.tools[0], arguments),))
        return Answer(text=conversation.last_user_text)


def _rule(index: int, item: Any) -> _Rule:
    where = f"script[{index}]"
    if not isinstance(item, dict) or not isinstance(item.get("match"), str):
        raise ConfigurationError(where, f'must be an object with a "match" regex, got {item!r}')
    unknown = sorted(set(item) - {"match", "reply", "tool", "arguments"})
    if unknown:
        raise ConfigurationError(
            f"{where}.{unknown[0]}", "is not a script field (match, reply, tool, arguments)"
        )
    if ("reply" in item) == ("tool" in item):
        raise ConfigurationError(where, 'needs exactly one of "reply" and "tool"')
    try:
        pattern = re.compile(item["match"])
    except re.error as e:
        raise ConfigurationError(f"{where}.match", f"is not a regular expression: {e}") from e
    if "reply" in item and not isinstance(item["reply"], str):
        raise ConfigurationError(f"{where}.reply", f"must be a string, got {item['reply']!r}")
    if "tool" in item and not (isinstance(item["tool"], str) and item["tool"]):
        raise ConfigurationError(f"{where}.tool", f"must be a tool name, got {item['tool']!r}")
    arguments = item.get("arguments", {})
    if not isinstance(arguments, dict):
        raise ConfigurationError(f"{where}.arguments", f"must be a JSON object, got {arguments!r}")
    return _Rule(pattern, item.get("reply"), item.get("tool"), arguments)
