"""How a streamed answer is shaped by the faults decided for it: events in, actions out.

Pure, like a network toxic: ``StreamShaper`` takes the answer's SSE
events one by one (from the built-in model, or parsed from the upstream's
stream) and returns what the endpoint must do: ``Send`` bytes after a
delay, ``Reset`` the connection, or ``End`` the body. The endpoint only
sleeps, writes and closes.

Rules (one per fault, in the order they are checked before each event):

- a cut, a reset or a malformed event fires BEFORE the event numbered
  ``after_events`` + 1 (``after_events`` = 0: before the first); the
  earliest of them wins. A cut with ``final_event`` sends the API's end
  marker and ends; without it just ends. A malformed event is sent, then
  the stream ends. A stream shorter than ``after_events`` is not touched.
- content faults rewrite each event (``Wire.apply_content_faults_to_event``);
- ``first_token_delay_ms`` is waited before the first event that carries a
  token, ``token_delay_ms`` before every later one; events without a token
  (role, block start, finish) go at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosagenkit.llm.faults import LlmDecision
from chaosagenkit.llm.sse import SseEvent
from chaosagenkit.llm.wire import Wire

__all__ = ["Action", "End", "Reset", "Send", "StreamShaper"]


@dataclass(frozen=True, slots=True)
class Send:
    """Write ``data`` after waiting ``delay_ms``; ``token`` when it carries a token."""

    data: bytes
    delay_ms: float = 0.0
    token: bool = False


@dataclass(frozen=True, slots=True)
class Reset:
    """Reset the connection (RST): the client sees the stream break."""


@dataclass(frozen=True, slots=True)
class End:
    """End the response body cleanly; nothing more is written."""


Action = Send | Reset | End


class StreamShaper:
    """Turn a stream's events into actions under one request's decision."""

    def __init__(self, decision: LlmDecision, wire: Wire) -> None:
        self.decision = decision
        self.wire = wire
        self.sent = 0  # events written
        self.tokens = 0  # events written that carry a token
        self.done = False
        limits = [
            (decision.cut_after_events, "cut"),
            (decision.reset_after_events, "reset"),
            (decision.malformed_after_events, "malformed"),
        ]
        active = [(after, what) for after, what in limits if after is not None]
        self._limit = min(active, key=lambda item: item[0]) if active else None

    def on_event(self, event: SseEvent) -> list[Action]:
        """The actions for the next event of the answer."""
        if self.done:
            return []
        if self._limit is not None and self.sent == self._limit[0]:
            self.done = True
            return self._stop(self._limit[1])
        event = self.wire.apply_content_faults_to_event(event, self.decision.content)
        token = self.wire.carries_token(event)
        delay = 0.0
        if token:
            delay = self.decision.first_token_delay_ms if self.tokens == 0 else self.decision.token_delay_ms
            self.tokens += 1
        self.sent += 1
        return [Send(event.encode(), delay, token)]

    def on_end(self) -> list[Action]:
        """The answer has no more events."""
        if self.done:
            return []
        self.done = True
        return [End()]

    def _stop(self, what: str) -> list[Action]:
        if what == "reset":
            return [Reset()]
        if what == "malformed":
            return [Send(self.wire.malformed_event().encode()), End()]
        if self.decision.cut_final_event:
            return [Send(self.wire.end_event().encode()), End()]
        return [End()]
