"""Agents that answer through a REAL agenkit LLM adapter: serve them with ``chaosagenkit serve``.

``chaosagenkit serve --agent chaosagenkit.llm.targets:llm_agent`` serves an
agenkit ``Agent`` whose every answer comes from a model behind agenkit's
own adapter (``OpenAICompatibleLLM`` or ``AnthropicLLM``, over the official
``openai`` / ``anthropic`` SDK, extra ``chaosagenkit[llm]``), pointed at an
LLM fault endpoint by configuration only. The answer keeps the request's
``request_id``; with the built-in model (an echo) its content is the
request's content, so the caller's usual answer check catches a truncated,
empty or foreign answer.

Configured by environment (a server's ``env`` in an experiment):

| variable | meaning |
|---|---|
| ``CHAOSAGENKIT_LLM_BASE_URL`` | the endpoint's base URL, e.g. ``{llm:model}`` (required) |
| ``CHAOSAGENKIT_LLM_API`` | ``openai`` (default) or ``anthropic`` |
| ``CHAOSAGENKIT_LLM_MODE`` | ``complete`` (default), ``stream`` (``llm.stream()`` joined) or ``tool`` |
| ``CHAOSAGENKIT_LLM_MODEL`` | the model name sent (default ``chaosagenkit-builtin``) |
| ``CHAOSAGENKIT_LLM_TIMEOUT_MS`` | the SDK's timeout (default: agenkit's / the SDK's) |
| ``CHAOSAGENKIT_LLM_MAX_RETRIES`` | the SDK's own retries (default: the SDK's, 2) |

``tool`` mode (OpenAI only) offers one tool, ``echo(text)``, runs the call
the model makes (its arguments parsed with ``json.loads``) and sends the
result back for the final answer: two model requests per agent request.
agenkit's ``complete()`` drops tool calls from its answer (see
docs/FINDINGS-llm.md), so this mode makes its calls through the adapter's
own escape hatch, ``llm.unwrap()``: the same SDK client the adapter built.
"""

from __future__ import annotations

import json
import os
from typing import Any

from agenkit.interfaces import Agent, Message

from chaosagenkit.exceptions import ConfigurationError

__all__ = ["ECHO_TOOL", "ENV", "LlmAgent", "llm_agent"]

ENV = {
    "base_url": "CHAOSAGENKIT_LLM_BASE_URL",
    "api": "CHAOSAGENKIT_LLM_API",
    "mode": "CHAOSAGENKIT_LLM_MODE",
    "model": "CHAOSAGENKIT_LLM_MODEL",
    "timeout_ms": "CHAOSAGENKIT_LLM_TIMEOUT_MS",
    "max_retries": "CHAOSAGENKIT_LLM_MAX_RETRIES",
}
MODES = ("complete", "stream", "tool")
APIS = ("openai", "anthropic")
DEFAULT_MODEL = "chaosagenkit-builtin"
ECHO_TOOL = {
    "type": "function",
    "function": {
        "name": "echo",
        "description": "Return the text it is given.",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    },
}


class LlmAgent(Agent):
    """Answer each request with what the model behind an agenkit LLM adapter says."""

    def __init__(self, llm: Any, mode: str = "complete", api: str = "openai") -> None:
        self.llm = llm
        self.mode = mode
        self.api = api

    @property
    def name(self) -> str:
        return "llm"

    async def process(self, message: Message) -> Message:
        prompt = [Message(role="user", content=str(message.content))]
        if self.mode == "stream":
            text = "".join([str(chunk.content) async for chunk in self.llm.stream(prompt)])
        elif self.mode == "tool":
            text = await self._with_tool(str(message.content))
        else:
            text = str((await self.llm.complete(prompt)).content)
        metadata = message.metadata or {}
        return Message(
            role="agent", content=text, metadata={"request_id": metadata.get("request_id"), "llm": True}
        )

    async def _with_tool(self, text: str) -> str:
        client = self.llm.unwrap()
        messages: list[dict[str, Any]] = [{"role": "user", "content": text}]
        first = await client.chat.completions.create(
            model=self.llm.model, messages=messages, tools=[ECHO_TOOL]
        )
        reply = first.choices[0].message
        if not reply.tool_calls:
            return reply.content or ""
        call = reply.tool_calls[0]
        arguments = json.loads(call.function.arguments)  # a malformed call raises here, as in any agent
        result = str(arguments.get("text", ""))
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.function.name, "arguments": call.function.arguments},
                    }
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        final = await client.chat.completions.create(
            model=self.llm.model, messages=messages, tools=[ECHO_TOOL]
        )
        return final.choices[0].message.content or ""


def llm_agent() -> Agent:
    """The LLM-backed target, configured by the CHAOSAGENKIT_LLM_* environment variables (module docs)."""
    base_url = os.environ.get(ENV["base_url"], "").strip().rstrip("/")
    if not base_url:
        raise ConfigurationError(ENV["base_url"], "must be the LLM endpoint's base URL (http://HOST:PORT)")
    api = _choice("api", "openai", APIS)
    mode = _choice("mode", "complete", MODES)
    if mode == "tool" and api != "openai":
        raise ConfigurationError(ENV["mode"], "tool is implemented for the openai API only")
    model = os.environ.get(ENV["model"], "").strip() or DEFAULT_MODEL
    options: dict[str, Any] = {}
    timeout_ms = _integer("timeout_ms")
    max_retries = _integer("max_retries", minimum=0)
    if max_retries is not None:
        options["max_retries"] = max_retries
    if api == "anthropic":
        from agenkit.adapters.llm.anthropic import AnthropicLLM

        if timeout_ms is not None:
            options["timeout"] = timeout_ms / 1000.0
        llm: Any = AnthropicLLM(api_key="chaosagenkit", model=model, base_url=base_url, **options)
    else:
        from agenkit.adapters.llm.openai_compatible import OpenAICompatibleLLM

        if timeout_ms is not None:
            options["timeout_ms"] = timeout_ms
        llm = OpenAICompatibleLLM(base_url=f"{base_url}/v1", model=model, api_key="chaosagenkit", **options)
    return LlmAgent(llm, mode, api)


def _choice(key: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(ENV[key], "").strip() or default
    if value not in choices:
        raise ConfigurationError(ENV[key], f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def _integer(key: str, minimum: int = 1) -> int | None:
    raw = os.environ.get(ENV[key], "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < minimum:
        raise ConfigurationError(ENV[key], f"must be an integer >= {minimum}, got {raw!r}")
    return int(raw)
