"""The LLM fault endpoint: an HTTP server speaking the OpenAI and Anthropic APIs, with faults.

``chaosagenkit llm-proxy`` runs an ``LlmEndpoint``: two aiohttp servers,

- the model API (``POST /v1/chat/completions``, ``POST /v1/messages``,
  ``GET /v1/models``), answered by the built-in deterministic model
  (``chaosagenkit.llm.responder``) or forwarded to an ``upstream`` base URL
  (pass-through: a team's provider or its own vLLM / llama.cpp / Ollama);
- the control API (``chaosagenkit.llm.control_api``), loopback by default
  and behind a bearer token otherwise, that sets and clears faults.

This module is the I/O only: what happens to each request is decided by
``LlmFaultPolicy`` (pure) and, for streams, ``StreamShaper`` (pure); the
payloads come from the wire modules. Here we wait, write and reset.

A reset is a real TCP RST (``SO_LINGER`` 0, then abort), so the client
sees "connection reset by peer", not a clean close. Every model request is
counted and kept in a bounded log (``requests``): its number, time, API,
stream flag, the faults that acted, status, tokens written and time to
first token; the log is how an experiment counts the attempts one agent
request cost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import struct
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from chaosagenkit import __version__
from chaosagenkit.client.recorder import latency_summary
from chaosagenkit.llm import anthropic_wire, openai_wire
from chaosagenkit.llm.faults import LlmDecision, LlmFaultPolicy, RequestInfo, parse_llm_faults
from chaosagenkit.llm.responder import Responder
from chaosagenkit.llm.sse import SseParser
from chaosagenkit.llm.stream import End, Reset, Send, StreamShaper
from chaosagenkit.llm.wire import WireError, WireRequest

__all__ = ["EndpointConfig", "LlmEndpoint"]

logger = logging.getLogger(__name__)

WIRES: dict[str, ModuleType] = {openai_wire.NAME: openai_wire, anthropic_wire.NAME: anthropic_wire}
#: Requests kept in the log (``GET /requests``); counters cover all of them.
LOG_SIZE = 10_000
MAX_BODY_BYTES = 32 * 1024 * 1024
_HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "content-length", "accept-encoding", "content-encoding",
    }
)  # fmt: skip


@dataclass(frozen=True)
class EndpointConfig:
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    control_host: str = "127.0.0.1"
    control_port: int = 0
    token: str | None = None
    seed: int = 0
    upstream: str | None = None  # base URL requests are forwarded to; None = the built-in model
    script: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RequestRecord:
    """One model request as the endpoint saw it."""

    n: int
    t: float
    api: str
    stream: bool
    faults: list[str]
    status: int | None = None
    outcome: str = (
        "pending"  # answered | error | reset | cut | malformed | invalid | upstream_error | aborted
    )
    tokens: int = 0
    ttft_ms: float | None = None
    duration_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "t": self.t,
            "api": self.api,
            "stream": self.stream,
            "faults": self.faults,
            "status": self.status,
            "outcome": self.outcome,
            "tokens": self.tokens,
            "ttft_ms": self.ttft_ms,
            "duration_ms": self.duration_ms,
        }


class LlmEndpoint:
    """The model API with faults, and the state its control API shows and changes."""

    def __init__(self, config: EndpointConfig) -> None:
        self.config = config
        self.policy = LlmFaultPolicy(config.seed)
        self.responder = Responder(config.script)
        self.started_at = time.time()
        self.log: deque[RequestRecord] = deque(maxlen=LOG_SIZE)
        self.requests = 0
        self.by_api: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.tokens_streamed = 0
        self.ttft_ms: deque[float] = deque(maxlen=LOG_SIZE)
        self.last_inject_request = 0  # requests seen when the last fault was added
        self.listen_port = 0
        self.control_port = 0
        self._runners: list[web.AppRunner] = []
        self._session: ClientSession | None = None

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> dict[str, Any]:
        """Bind the model API and the control API; return the ready line's content."""
        # Imported on use: ~50 ms of imports only this path needs.
        from chaosagenkit.api import build_app, start_app
        from chaosagenkit.control_options import ControlOptions
        from chaosagenkit.llm.control_api import routes

        model_app = web.Application(client_max_size=MAX_BODY_BYTES)
        for wire in WIRES.values():
            model_app.router.add_post(wire.PATH, self._handler(wire))
        model_app.router.add_get("/v1/models", self._models)
        runner, self.listen_port = await start_app(
            model_app, self.config.listen_host, self.config.listen_port
        )
        self._runners.append(runner)
        try:
            control = build_app(routes(self), options=ControlOptions(token=self.config.token))
            runner, self.control_port = await start_app(
                control, self.config.control_host, self.config.control_port
            )
            self._runners.append(runner)
        except BaseException:
            await self.stop()
            raise
        return {"event": "ready", **self.describe()}

    async def stop(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        if self._session is not None:
            await self._session.close()

    # -- what the control API shows and changes -------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{_url_host(self.config.listen_host)}:{self.listen_port}"

    @property
    def control_url(self) -> str:
        return f"http://{_url_host(self.config.control_host)}:{self.control_port}"

    def describe(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "openai_base_url": f"{self.base_url}/v1",
            "anthropic_base_url": self.base_url,
            "control": self.control_url,
            "upstream": self.config.upstream,
            "mode": "pass-through" if self.config.upstream else "built-in",
            "pid": os.getpid(),
            "seed": self.policy.seed,
            "ports": {"api": self.listen_port, "control": self.control_port},
        }

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            **self.describe(),
            "version": __version__,
            "uptime_s": round(time.time() - self.started_at, 3),
        }

    def faults(self) -> list[dict[str, Any]]:
        return [fault.to_json() for fault in self.policy.active(time.time())]

    async def add_faults(self, data: Any) -> list[dict[str, Any]]:
        """Add one fault or a list (all or nothing: every spec is checked first)."""
        specs = parse_llm_faults(data)
        now = time.time()
        added = [self.policy.add(spec, now) for spec in specs]
        self.last_inject_request = self.requests
        return [fault.to_json() for fault in added]

    def remove_fault(self, fault_id: str) -> dict[str, Any] | None:
        fault = self.policy.remove(fault_id)
        return None if fault is None else fault.to_json()

    def clear_faults(self) -> list[dict[str, Any]]:
        return [fault.to_json() for fault in self.policy.clear()]

    def reseed(self, seed: int) -> None:
        self.policy.reseed(seed)

    def stats(self) -> dict[str, Any]:

        self.policy.expire(time.time())
        return {
            "requests": self.requests,
            "requests_since_inject": self.requests - self.last_inject_request,
            "by_api": dict(sorted(self.by_api.items())),
            "outcomes": dict(sorted(self.outcomes.items())),
            "injected": dict(sorted(self.policy.injected.items())),
            "active_faults": len(self.policy.active(time.time())),
            "tokens_streamed": self.tokens_streamed,
            "ttft_ms": {"count": len(self.ttft_ms), **latency_summary(list(self.ttft_ms))},
            "seed": self.policy.seed,
            "mode": "pass-through" if self.config.upstream else "built-in",
        }

    def recent_requests(self, last: int = 0, since_inject: bool = False) -> list[dict[str, Any]]:
        records = list(self.log)
        if since_inject:
            records = [r for r in records if r.n > self.last_inject_request]
        if last:
            records = records[-last:]
        return [r.to_json() for r in records]

    # -- the model API --------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": "chaosagenkit-builtin", "object": "model"}]}
        )

    def _handler(self, wire: ModuleType) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._handle(request, wire)

        return handle

    async def _handle(self, request: web.Request, wire: ModuleType) -> web.StreamResponse:
        started = time.monotonic()
        self.requests += 1
        self.by_api[wire.NAME] += 1
        record = RequestRecord(self.requests, time.time(), wire.NAME, False, [])
        self.log.append(record)
        raw = await request.read()
        try:
            try:
                body = json.loads(raw)
            except ValueError as e:
                raise WireError(400, f"the request body is not valid JSON: {e}") from e
            parsed = wire.parse_request(body)
        except WireError as e:
            self._finish(record, started, 400, "invalid")
            return _json(e.status, wire.error_body(e.status, "invalid", e.message))
        record.stream = parsed.stream
        info = RequestInfo(wire.NAME, parsed.stream, bool(parsed.conversation.tools))
        decision = self.policy.decide_request(time.time(), info)
        record.faults = [fault.kind for i in decision.fault_ids if (fault := self.policy.get(i)) is not None]
        try:
            return await self._answer(request, wire, parsed, body, raw, decision, record, started)
        except (ConnectionResetError, asyncio.CancelledError):
            self._finish(record, started, record.status, "aborted")
            raise

    async def _answer(
        self,
        request: web.Request,
        wire: ModuleType,
        parsed: WireRequest,
        body: Any,
        raw: bytes,
        decision: LlmDecision,
        record: RequestRecord,
        started: float,
    ) -> web.StreamResponse:
        if decision.reset:
            self._finish(record, started, None, "reset")
            return _reset(request)
        if decision.headers_delay_ms:
            await asyncio.sleep(decision.headers_delay_ms / 1000.0)
        if decision.error_status is not None:
            kind = decision.error_kind or "server_error"
            message = wire.fault_message(kind, decision.error_status, parsed)
            headers = {}
            if decision.retry_after_s is not None:
                headers["Retry-After"] = _retry_after(decision.retry_after_s)
            self._finish(record, started, decision.error_status, "error")
            return _json(
                decision.error_status, wire.error_body(decision.error_status, kind, message), headers
            )
        if self.config.upstream:
            return await self._forward(request, wire, raw, decision, record, started)
        answer = self.responder.answer(parsed.conversation)
        response_id = f"chatcmpl-{record.n}" if wire is openai_wire else f"msg_{record.n:024d}"
        if not parsed.stream:
            payload = wire.apply_content_faults(
                wire.answer_body(answer, parsed, response_id), decision.content
            )
            self._finish(record, started, 200, "answered")
            return _json(200, payload)
        events = wire.answer_events(answer, parsed, response_id)
        return await self._stream(request, wire, _aiter(events), decision, record, started, 200, {})

    async def _stream(
        self,
        request: web.Request,
        wire: ModuleType,
        events: Any,
        decision: LlmDecision,
        record: RequestRecord,
        started: float,
        status: int,
        headers: dict[str, str],
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers=headers)
        response.content_type = "text/event-stream"
        response.headers["Cache-Control"] = "no-cache"
        await response.prepare(request)
        record.status = status
        shaper = StreamShaper(decision, wire)
        outcome = "answered"
        async for event in events:
            actions = shaper.on_event(event)
            if await self._act(request, response, actions, record, started):
                break
        else:
            await self._act(request, response, shaper.on_end(), record, started)
        if shaper.done and shaper._limit is not None and shaper.sent == shaper._limit[0]:
            outcome = {"cut": "cut", "reset": "reset", "malformed": "malformed"}[shaper._limit[1]]
        self._finish(record, started, status, outcome)
        return response

    async def _act(
        self,
        request: web.Request,
        response: web.StreamResponse,
        actions: list[Any],
        record: RequestRecord,
        started: float,
    ) -> bool:
        """Carry out ``actions``; True once the stream is over."""
        for action in actions:
            if isinstance(action, Send):
                if action.delay_ms:
                    await asyncio.sleep(action.delay_ms / 1000.0)
                await response.write(action.data)
                if action.token:
                    if record.tokens == 0:
                        record.ttft_ms = round((time.monotonic() - started) * 1000.0, 3)
                        self.ttft_ms.append(record.ttft_ms)
                    record.tokens += 1
                    self.tokens_streamed += 1
            elif isinstance(action, Reset):
                _reset(request)
                return True
            elif isinstance(action, End):
                await response.write_eof()
                return True
        return False

    async def _forward(
        self,
        request: web.Request,
        wire: ModuleType,
        raw: bytes,
        decision: LlmDecision,
        record: RequestRecord,
        started: float,
    ) -> web.StreamResponse:
        """Pass-through: send the request upstream, shape what comes back."""
        assert self.config.upstream is not None
        if self._session is None:
            self._session = ClientSession(
                timeout=ClientTimeout(total=None, sock_connect=10), trust_env=False, auto_decompress=True
            )
        url = self.config.upstream.rstrip("/") + request.path_qs
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            upstream = await self._session.post(url, data=raw, headers=headers)
        except (ClientError, OSError, TimeoutError) as e:
            message = f"chaosagenkit llm-proxy: upstream {self.config.upstream} unreachable: {e}"
            self._finish(record, started, 502, "upstream_error")
            return _json(502, wire.error_body(502, "server_error", message))
        async with upstream:
            back = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            back.pop("Content-Type", None)
            if upstream.status == 200 and upstream.content_type == "text/event-stream":
                return await self._stream(
                    request, wire, _upstream_events(upstream), decision, record, started, 200, back
                )
            data = await upstream.read()
            if upstream.status == 200 and upstream.content_type == "application/json":
                try:
                    payload = json.loads(data)
                except ValueError:
                    payload = None
                if isinstance(payload, dict):
                    data = json.dumps(wire.apply_content_faults(payload, decision.content)).encode()
            self._finish(record, started, upstream.status, "answered" if upstream.status == 200 else "error")
            return web.Response(
                status=upstream.status, body=data, headers=back, content_type=upstream.content_type
            )

    def _finish(self, record: RequestRecord, started: float, status: int | None, outcome: str) -> None:
        record.status = status
        record.outcome = outcome
        record.duration_ms = round((time.monotonic() - started) * 1000.0, 3)
        self.outcomes[outcome] += 1


async def _aiter(items: list[Any]) -> Any:
    for item in items:
        yield item


async def _upstream_events(upstream: Any) -> Any:
    parser = SseParser()
    async for chunk in upstream.content.iter_any():
        for event in parser.feed(chunk):
            yield event
    for event in parser.close():
        yield event


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(payload, status=status, headers=headers)


def _retry_after(seconds: float) -> str:
    """Whole seconds as RFC 9110 says; a fraction as a decimal (the openai and anthropic SDKs read it)."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def _reset(request: web.Request) -> web.Response:
    """Reset the client's connection (RST, not FIN) and drop the response."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        transport.abort()
    # aiohttp's write of this response then meets the closed transport, which it treats as a
    # client that went away: nothing is written and nothing is logged.
    return web.Response()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
