"""Demo targets to serve with ``chaosagenkit serve --agent chaosagenkit.targets:echo``.

A target is a zero-argument factory returning an ``agenkit.interfaces.Agent``.
``echo`` answers with the request's content and its ``request_id``, so a
caller can tell whether each answer belongs to its request (a connection
that hands a late answer to the next request is caught this way).
"""

from __future__ import annotations

from agenkit.interfaces import Agent, Message

from chaosagenkit.exceptions import ConfigurationError

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


# --- relay: a served agent that calls a second agent through agenkit middleware ---
# (owner: client engineer; configured by environment so `chaosagenkit serve` can pass it)

#: Environment variables that configure ``relay()``.
RELAY_ENDPOINT_ENV = "CHAOSAGENKIT_RELAY_ENDPOINT"
RELAY_MIDDLEWARE_ENV = "CHAOSAGENKIT_RELAY_MIDDLEWARE"
RELAY_TIMEOUT_ENV = "CHAOSAGENKIT_RELAY_TIMEOUT_MS"
RELAY_CONNECTIONS_ENV = "CHAOSAGENKIT_RELAY_CONNECTIONS"

__all__ += ["RelayAgent", "relay"]


class RelayAgent(Agent):
    """Forward each request to a second agent via agenkit RemoteAgent + agenkit middleware.

    The answer keeps the BACKEND's content and request_id (a mix-up behind the
    relay stays visible to the caller's answer check). ``_agent`` is the
    middleware stack, so ``describe_chain`` on the served agent (the chaos
    host's ``GET /middleware``) reaches the relay's agenkit decorators.
    """

    def __init__(
        self, endpoint: str, middleware: list | None = None, timeout_ms: int = 5000, connections: int = 1
    ) -> None:
        # Imported on use: it loads chaoslib; other paths here never need it.
        from chaosagenkit.client.harness import Client

        self._client = Client("relay", endpoint, middleware, timeout_ms, connections, answer_check="any")
        self._agent = self._client.agent

    @property
    def name(self) -> str:
        return "relay"

    async def process(self, message: Message) -> Message:
        answer = await self._agent.process(message)
        metadata = answer.metadata or {}
        return Message(
            role="agent",
            content=answer.content,
            metadata={"request_id": metadata.get("request_id"), "relay": True},
        )


def relay() -> Agent:
    """The relay target, configured by CHAOSAGENKIT_RELAY_* environment variables.

    ``CHAOSAGENKIT_RELAY_ENDPOINT`` (required) is the backend's agenkit endpoint;
    ``CHAOSAGENKIT_RELAY_MIDDLEWARE`` a JSON list of middleware declarations
    (as for clients); ``CHAOSAGENKIT_RELAY_TIMEOUT_MS`` the RemoteAgent timeout
    (default 5000); ``CHAOSAGENKIT_RELAY_CONNECTIONS`` backend connections
    sharing the stack (default 1). Bad values raise ConfigurationError.
    """
    import json
    import os

    endpoint = os.environ.get(RELAY_ENDPOINT_ENV, "").strip()
    if not endpoint:
        raise ConfigurationError(RELAY_ENDPOINT_ENV, "must name the backend's agenkit endpoint")
    try:
        middleware = json.loads(os.environ.get(RELAY_MIDDLEWARE_ENV) or "[]")
    except ValueError as e:
        raise ConfigurationError(RELAY_MIDDLEWARE_ENV, f"must be a JSON list: {e}") from e
    numbers = {}
    for variable, default in ((RELAY_TIMEOUT_ENV, 5000), (RELAY_CONNECTIONS_ENV, 1)):
        raw = os.environ.get(variable, "").strip() or str(default)
        if not raw.isdigit() or int(raw) < 1:
            raise ConfigurationError(variable, f"must be a positive integer, got {raw!r}")
        numbers[variable] = int(raw)
    return RelayAgent(endpoint, middleware, numbers[RELAY_TIMEOUT_ENV], numbers[RELAY_CONNECTIONS_ENV])
