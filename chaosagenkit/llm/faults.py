"""LLM-provider faults: specs, and the policy that decides what each model request gets.

Pure logic (no sockets, no event loop, no chaoslib), like the chaos host's
``chaosagenkit.faults.service``, whose ``FaultSpec`` (validation from JSON,
``duration_s``) and ``FaultPolicy`` (ids, TTL expiry, counters) it reuses.
The endpoint (``chaosagenkit.llm.server``) does the waiting, writing and
resetting; this module only says what to do. Design rules, stated once:

- Every fault picks its requests the same way: a fraction ``rate`` (one
  draw per applicable request), the ``first`` N applicable requests, or
  ``every`` Nth one. Exactly one of the three is in force (``first`` and
  ``every`` need ``rate`` left at 1).
- A fault only sees the requests it can act on (``applies_to``): stream
  faults see streamed requests only, ``malformed_tool_call`` requests that
  offer tools (and not non-streamed Anthropic ones, whose tool input is a
  JSON object the API decoded: there is nothing to break). "first 2" means
  the first two requests it could act on.
- ONE seeded ``random.Random``: each applicable fault draws exactly one
  value per request, whatever it decides, so the same seed, faults and
  request sequence give the same decisions.
- Several faults on one request: the oldest failing fault (reset, 429,
  5xx, context length) wins and nothing else happens; delays add up; the
  earliest cut, reset or malformed event wins; content faults all apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self, cast

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.faults.service import ActiveFault, FaultPolicy, FaultSpec
from chaosagenkit.limits import DEFAULT_TTL_S, MAX_TIME_MS
from chaosagenkit.validation import invalid, require_number, require_probability

__all__ = [
    "APIS",
    "LLM_FAULT_KINDS",
    "SERVER_ERROR_STATUSES",
    "ConnectionReset",
    "ContextLength",
    "EmptyContent",
    "Latency",
    "LlmDecision",
    "LlmFault",
    "LlmFaultPolicy",
    "MalformedSse",
    "MalformedToolCall",
    "RateLimit",
    "Refusal",
    "RequestInfo",
    "ServerError",
    "SlowFirstToken",
    "SlowTokens",
    "StreamCut",
    "break_json_text",
    "parse_llm_fault",
    "parse_llm_faults",
]

#: The provider APIs the endpoint speaks.
APIS = ("openai", "anthropic")
#: 529 is Anthropic's "overloaded_error"; the others are what gateways and providers send.
SERVER_ERROR_STATUSES = (500, 502, 503, 529)
MAX_RETRY_AFTER_S = 3600.0
MAX_EVENTS = 1_000_000


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the policy needs to know about one model request."""

    api: str = "openai"  # one of APIS
    stream: bool = False
    tools: bool = False  # the request offers tools


# -- specs -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LlmFault(FaultSpec):
    """An LLM-provider fault: its own fields, plus which requests it picks.

    ``rate`` (0..1, default 1) is the fraction of applicable requests it acts
    on; ``first`` (N >= 1) acts on the first N applicable requests; ``every``
    (N >= 1) on every Nth (the Nth, 2Nth, ...). 0 = not used.
    """

    #: Only streamed answers carry the fault (slow tokens, cut streams, ...).
    stream_only: ClassVar[bool] = False
    rate: float = 1.0
    first: int = 0
    every: int = 0

    @classmethod
    def from_json(cls, data: Any, *, default_ttl_s: float = DEFAULT_TTL_S) -> Self:
        """Build the spec of ``data["kind"]`` from a JSON object; raise ConfigurationError."""
        if not isinstance(data, dict):
            raise invalid("fault", "a JSON object", data)
        if "kind" not in data:
            raise ConfigurationError("kind", f"is missing: one of {', '.join(LLM_FAULT_KINDS)}")
        kind = data["kind"]
        spec_type = LLM_FAULT_KINDS.get(kind) if isinstance(kind, str) else None
        if spec_type is None:
            raise invalid("kind", f"one of {', '.join(LLM_FAULT_KINDS)}", kind)
        if cls is not LlmFault and spec_type is not cls:
            raise invalid("kind", cls.kind, kind)
        # spec_type is cls, or cls is LlmFault: either way an instance of cls.
        fields_given = {k: v for k, v in data.items() if k != "kind"}
        return cast(Self, spec_type._from_fields(fields_given, default_ttl_s))

    @classmethod
    def _check(cls, values: dict[str, Any]) -> dict[str, Any]:
        values["rate"] = require_probability(values.get("rate", 1.0), "rate")
        for name in ("first", "every"):
            value = values.get(name, 0)
            values[name] = (
                0
                if value == 0 and not isinstance(value, bool)
                else require_number(value, name, minimum=1, integer=True)
            )
        if values["first"] and values["every"]:
            raise ConfigurationError("every", "cannot be combined with first: choose one selection")
        if (values["first"] or values["every"]) and values["rate"] != 1.0:
            raise ConfigurationError("rate", "must stay 1 when first or every picks the requests")
        return cls._check_own(values)

    @classmethod
    def _check_own(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Check and normalise the kind's own fields."""
        return values

    def applies_to(self, request: RequestInfo) -> bool:
        """Whether this fault can act on ``request`` (see the module rules)."""
        return request.stream or not self.stream_only

    def picks(self, seen: int, draw: float) -> bool:
        """Whether the ``seen``-th applicable request is picked (``draw`` in [0, 1))."""
        if self.first:
            return seen <= self.first
        if self.every:
            return seen % self.every == 0
        return draw < self.rate


def _delay_ms(values: dict[str, Any], name: str = "delay_ms") -> None:
    delay = require_number(values[name], name)
    if not 0 <= delay <= MAX_TIME_MS:
        raise invalid(name, f"between 0 and {int(MAX_TIME_MS)}", values[name])
    values[name] = delay


def _events(values: dict[str, Any], name: str, default: int) -> None:
    count = require_number(values.get(name, default), name, integer=True)
    if isinstance(values.get(name), bool) or not 0 <= count <= MAX_EVENTS:
        raise invalid(name, f"an integer between 0 and {MAX_EVENTS}", values.get(name))
    values[name] = int(count)


@dataclass(frozen=True, kw_only=True)
class RateLimit(LlmFault):
    """Answer 429 in the provider's error shape; ``retry_after_s`` (None = no header) sets Retry-After."""

    kind: ClassVar[str] = "rate_limit"
    retry_after_s: float | None = None

    @classmethod
    def _check_own(cls, values: dict[str, Any]) -> dict[str, Any]:
        if values.get("retry_after_s") is not None:
            after = require_number(values["retry_after_s"], "retry_after_s")
            if not 0 <= after <= MAX_RETRY_AFTER_S:
                raise invalid("retry_after_s", f"between 0 and {int(MAX_RETRY_AFTER_S)}", after)
            values["retry_after_s"] = after
        return values


@dataclass(frozen=True, kw_only=True)
class ServerError(LlmFault):
    """Answer ``status`` (500, 502, 503, or 529 = overloaded) in the provider's error shape."""

    kind: ClassVar[str] = "server_error"
    status: int = 500

    @classmethod
    def _check_own(cls, values: dict[str, Any]) -> dict[str, Any]:
        status = values.get("status", 500)
        if isinstance(status, bool) or status not in SERVER_ERROR_STATUSES:
            raise invalid("status", f"one of {', '.join(map(str, SERVER_ERROR_STATUSES))}", status)
        values["status"] = int(status)
        return values


@dataclass(frozen=True, kw_only=True)
class ContextLength(LlmFault):
    """Answer 400 "the prompt is longer than the model's context window", as the provider words it."""

    kind: ClassVar[str] = "context_length"


@dataclass(frozen=True, kw_only=True)
class ConnectionReset(LlmFault):
    """Reset the TCP connection (RST): before any answer, or after ``after_events`` stream events."""

    kind: ClassVar[str] = "connection_reset"
    after_events: int = 0

    @classmethod
    def _check_own(cls, values: dict[str, Any]) -> dict[str, Any]:
        _events(values, "after_events", 0)
        return values

    def applies_to(self, request: RequestInfo) -> bool:
        return request.stream or self.after_events == 0


@dataclass(frozen=True, kw_only=True)
class _Delay(LlmFault):
    """A fault whose own field is ``delay_ms`` (a kind of its own only through a subclass)."""

    delay_ms: float

    @classmethod
    def _check_own(cls, values: dict[str, Any]) -> dict[str, Any]:
        _delay_ms(values)
        return values


@dataclass(frozen=True, kw_only=True)
class Latency(_Delay):
    """Wait ``delay_ms`` before sending the response headers."""

    kind: ClassVar[str] = "latency"


@dataclass(frozen=True, kw_only=True)
class SlowFirstToken(_Delay):
    """Send the headers at once, then wait ``delay_ms`` before the first token of a stream."""

    kind: ClassVar[str] = "slow_first_token"
    stream_only: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class SlowTokens(_Delay):
    """Wait ``delay_ms`` before every token of a stream after the first."""

    kind: ClassVar[str] = "slow_tokens"
    stream_only: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class StreamCut(LlmFault):
    """End a stream after ``after_events`` events; with ``final_event`` the API's end marker follows.

    Without it the body just ends (cleanly, as HTTP goes); with it the client
    also gets ``data: [DONE]`` (OpenAI) or ``message_stop`` (Anthropic), so
    only the missing finish reason tells the answer is incomplete.
    """

    kind: ClassVar[str] = "stream_cut"
    stream_only: ClassVar[bool] = True
    after_events: int
    final_event: bool = False

    @classmethod
    def _check_own(cls, values: dict[str, Any]) -> dict[str, Any]:
        _events(values, "after_events", 0)
        if not isinstance(values.get("final_event", False), bool):
            raise invalid("final_event", "true or false", values["final_event"])
        return values


@dataclass(frozen=True, kw_only=True)
class MalformedSse(LlmFault):
    """After ``after_events`` good events, send one whose data is not JSON, then end the stream."""

    kind: ClassVar[str] = "malformed_sse"
    stream_only: ClassVar[bool] = True
    after_events: int = 0

    @classmethod
    def _check_own(cls, values: dict[str, Any]) -> dict[str, Any]:
        _events(values, "after_events", 0)
        return values


@dataclass(frozen=True, kw_only=True)
class MalformedToolCall(LlmFault):
    """Make the arguments of the answer's tool calls invalid JSON (the closing brace is dropped)."""

    kind: ClassVar[str] = "malformed_tool_call"

    def applies_to(self, request: RequestInfo) -> bool:
        return request.tools and (request.stream or request.api != "anthropic")


@dataclass(frozen=True, kw_only=True)
class EmptyContent(LlmFault):
    """Answer with empty content and a normal finish reason."""

    kind: ClassVar[str] = "empty_content"


@dataclass(frozen=True, kw_only=True)
class Refusal(LlmFault):
    """Answer with no content and a refusal stop reason (OpenAI ``content_filter``, Anthropic ``refusal``)."""

    kind: ClassVar[str] = "refusal"


#: kind -> spec class: the control API's ``kind`` values.
LLM_FAULT_KINDS: dict[str, type[LlmFault]] = {
    spec.kind: spec
    for spec in (
        RateLimit,
        ServerError,
        ContextLength,
        ConnectionReset,
        Latency,
        SlowFirstToken,
        SlowTokens,
        StreamCut,
        MalformedSse,
        MalformedToolCall,
        EmptyContent,
        Refusal,
    )
}
#: Faults that answer an error instead of the model (reset before any answer included).
FAILING = (RateLimit, ServerError, ContextLength)
CONTENT_KINDS = ("empty_content", "refusal", "malformed_tool_call")


def parse_llm_fault(data: Any) -> LlmFault:
    """One fault from JSON (``LlmFault.from_json``)."""
    return LlmFault.from_json(data)


def parse_llm_faults(data: Any) -> list[LlmFault]:
    """One fault object or a non-empty list; an error names the list index: ``[2].rate``."""
    if not isinstance(data, list):
        return [parse_llm_fault(data)]
    if not data:
        raise invalid("faults", "a fault object or a non-empty list of them", data)
    specs = []
    for index, item in enumerate(data):
        try:
            specs.append(parse_llm_fault(item))
        except ConfigurationError as e:
            raise ConfigurationError(f"[{index}].{e.field}", e.message) from None
    return specs


# -- decisions ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LlmDecision:
    """What the endpoint does with one model request. ``LlmDecision()`` = answer normally."""

    request: int = 0  # 1-based number of the request since the endpoint started
    reset: bool = False  # reset the connection before any answer
    error_status: int | None = None  # answer this error status instead of the model
    error_kind: str | None = None  # rate_limit | server_error | context_length
    retry_after_s: float | None = None
    headers_delay_ms: float = 0.0
    first_token_delay_ms: float = 0.0
    token_delay_ms: float = 0.0
    cut_after_events: int | None = None
    cut_final_event: bool = False
    reset_after_events: int | None = None
    malformed_after_events: int | None = None
    content: tuple[str, ...] = ()  # CONTENT_KINDS to apply, in order
    fault_ids: tuple[str, ...] = ()  # every fault that acted


class LlmFaultPolicy(FaultPolicy):
    """The active LLM faults of one endpoint and the per-request decisions they make."""

    def decide(self, now: float) -> Any:  # the chaos host's signature; an LLM request needs more
        raise TypeError("an LLM endpoint decides with decide_request(now, RequestInfo)")

    def decide_request(self, now: float, request: RequestInfo) -> LlmDecision:
        """Decide what happens to the next model request, arriving at ``now``."""
        self.requests += 1
        if not self._faults:
            return LlmDecision(self.requests)
        self.expire(now)
        failing: ActiveFault | None = None
        picked: list[ActiveFault] = []
        for fault in list(self._faults.values()):
            spec = fault.spec
            if not isinstance(spec, LlmFault) or not spec.applies_to(request):
                continue
            fault.seen += 1
            if not spec.picks(fault.seen, self._rng.random()):
                continue
            is_failing = isinstance(spec, FAILING) or (
                isinstance(spec, ConnectionReset) and spec.after_events == 0
            )
            if is_failing:
                failing = failing or fault
            else:
                picked.append(fault)
        if failing is not None:
            self._count(failing)
            return self._failure(failing)
        if not picked:
            return LlmDecision(self.requests)
        for fault in picked:
            self._count(fault)
        return self._shape(picked)

    def _failure(self, fault: ActiveFault) -> LlmDecision:
        spec = fault.spec
        ids = (fault.id,)
        if isinstance(spec, ConnectionReset):
            return LlmDecision(self.requests, reset=True, fault_ids=ids)
        if isinstance(spec, RateLimit):
            return LlmDecision(
                self.requests,
                error_status=429,
                error_kind=spec.kind,
                retry_after_s=spec.retry_after_s,
                fault_ids=ids,
            )
        status = spec.status if isinstance(spec, ServerError) else 400
        return LlmDecision(self.requests, error_status=status, error_kind=spec.kind, fault_ids=ids)

    def _shape(self, faults: list[ActiveFault]) -> LlmDecision:
        headers = first = tokens = 0.0
        cut: tuple[int, bool] | None = None
        reset: int | None = None
        malformed: int | None = None
        content: list[str] = []
        for fault in faults:
            match fault.spec:
                case Latency(delay_ms=delay):
                    headers += delay
                case SlowFirstToken(delay_ms=delay):
                    first += delay
                case SlowTokens(delay_ms=delay):
                    tokens += delay
                case StreamCut(after_events=after, final_event=final):
                    if cut is None or after < cut[0]:
                        cut = (after, final)
                case ConnectionReset(after_events=after):
                    reset = after if reset is None else min(reset, after)
                case MalformedSse(after_events=after):
                    malformed = after if malformed is None else min(malformed, after)
                case spec if spec.kind in CONTENT_KINDS and spec.kind not in content:
                    content.append(spec.kind)
        return LlmDecision(
            self.requests,
            headers_delay_ms=headers,
            first_token_delay_ms=first,
            token_delay_ms=tokens,
            cut_after_events=None if cut is None else cut[0],
            cut_final_event=False if cut is None else cut[1],
            reset_after_events=reset,
            malformed_after_events=malformed,
            content=tuple(content),
            fault_ids=tuple(f.id for f in faults),
        )


def break_json_text(text: str) -> str:
    """``text`` made invalid JSON the way a truncated model output is: its closing brace dropped.

    A JSON object missing its last ``}`` never parses; text that is not an
    object gets an unclosed one appended.
    """
    stripped = text.rstrip()
    return stripped[:-1] if stripped.endswith("}") else text + "{"
