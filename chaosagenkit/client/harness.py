"""A declared client: agenkit RemoteAgent(s) under agenkit middleware, and its outcomes.

Design rule: the client never hides agenkit's behaviour. Requests go through
``build_stack(...)`` over agenkit's ``RemoteAgent``; we time each call,
check that the answer belongs to its request and record the outcome, and
nothing else: no retry, reconnect or correction of our own.

Concurrency: one ``RemoteAgent`` serialises its requests on its one
connection (agenkit's lock), so concurrent requests on the default
``connections=1`` queue behind each other; that IS agenkit's behaviour.
With ``connections=N`` the client holds N RemoteAgents behind a
``ConnectionPool`` that hands each request to a free one, and ONE
middleware stack sits above the pool, so a client has one circuit breaker,
one retry budget and one cache whatever its concurrency (middleware per
connection would split the breaker's failure count N ways). The pool adds
no behaviour: a broken connection stays broken, as it does in agenkit.

Requests: content ``req-<n>`` and metadata ``{"request_id": "<client>:<n>"}``;
with ``distinct=K`` (caching under test) content and request_id are both
``key-<n mod K>``, because agenkit's cache key covers the metadata too.
"""

from __future__ import annotations

import asyncio
import collections
import importlib
import itertools
import time
from collections.abc import Callable, Iterable
from typing import Any

from chaosagenkit.client.recorder import Recorder
from chaosagenkit.client.stack import build_stack, validate_middleware
from chaosagenkit.exceptions import ConfigurationError

__all__ = ["DEFAULT_TIMEOUT_MS", "Client", "ConnectionPool", "echo_answer_ok", "resolve_answer_check"]

DEFAULT_TIMEOUT_MS = 5000
_wall_clock = time.time  # bound once: call() is the hot path the benchmark measures
_perf_counter = time.perf_counter
MAX_CONNECTIONS = 256
_CLOSE_TIMEOUT_S = 2.0

AnswerCheck = Callable[[Any, Any], bool]


def echo_answer_ok(request: Any, answer: Any) -> bool:
    """True when the answer carries its request's content and request_id (the echo contract)."""
    metadata = answer.metadata or {}
    return answer.content == request.content and metadata.get("request_id") == request.metadata["request_id"]


def resolve_answer_check(answer_check: str) -> AnswerCheck | None:
    """``"echo"``, ``"none"`` or ``"module:function"`` (called as f(request, answer) -> bool)."""
    if answer_check == "echo":
        return echo_answer_ok
    if answer_check == "none":
        return None
    if not isinstance(answer_check, str) or answer_check.count(":") != 1:
        raise ConfigurationError(
            "answer_check", f"must be 'echo', 'none' or 'module:function', got {answer_check!r}"
        )
    module_name, attribute = answer_check.split(":")
    try:
        check = getattr(importlib.import_module(module_name), attribute)
    except (
        ImportError,
        AttributeError,
        ValueError,
        TypeError,
    ) as e:  # ":f" -> ValueError, ".m:f" -> TypeError
        raise ConfigurationError("answer_check", f"cannot import {answer_check!r}: {e}") from e
    if not callable(check):
        raise ConfigurationError("answer_check", f"{answer_check!r} is not callable")
    return check


class ConnectionPool:
    """An agenkit Agent that hands each request to a free RemoteAgent (one request each).

    Free connections are taken first-come first-served; a request that finds
    none waits for the next one released.
    """

    def __init__(self, name: str, remotes: list[Any]) -> None:
        self._name = name
        self.remotes = remotes
        self._free: collections.deque[Any] = collections.deque(remotes)
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> list[str]:
        return []

    async def process(self, message: Any) -> Any:
        remote = self._free.popleft() if self._free and not self._waiters else await self._wait_for_free()
        try:
            return await remote.process(message)
        finally:
            self._release(remote)

    async def stream(self, message: Any) -> Any:  # agenkit's Agent interface; unused here
        raise NotImplementedError("the connection pool only forwards process()")

    async def _wait_for_free(self) -> Any:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(waiter.result())  # handed a connection while being cancelled
            raise

    def _release(self, remote: Any) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(remote)
                return
        self._free.append(remote)


class Client:
    """One named caller: RemoteAgent(s) + agenkit middleware + an outcome recorder.

    Construct, call and close it from the client runtime's event loop only
    (``chaosagenkit.client.runtime.RUNTIME``); the registry does this.
    """

    def __init__(
        self,
        name: str,
        endpoint: str,
        middleware: list[dict[str, Any]] | None = None,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        connections: int = 1,
        answer_check: str = "echo",
    ) -> None:
        from agenkit.adapters.python.remote_agent import RemoteAgent
        from agenkit.interfaces import Message

        self._message = Message
        self.name = name
        self.endpoint = endpoint
        self.middleware = validate_middleware(middleware)
        self.timeout_ms = timeout_ms
        self.connections = connections
        self.answer_check = answer_check
        self._check = resolve_answer_check(answer_check)
        try:
            self.remotes = [
                RemoteAgent(name, endpoint=endpoint, timeout_ms=timeout_ms) for _ in range(connections)
            ]
        except ValueError as e:  # agenkit's endpoint parser
            raise ConfigurationError("endpoint", f"is not usable by agenkit: {e}") from e
        inner = self.remotes[0] if connections == 1 else ConnectionPool(name, self.remotes)
        self.agent = build_stack(inner, self.middleware)
        self.recorder = Recorder()
        self.created = self.recorder.created
        self.closed = False
        self.traffic: Any = None  # chaosagenkit.client.traffic.Traffic while running
        self.last_batch: tuple[int, int] | None = None  # (source, first row) of the last send_requests
        self._numbers = itertools.count()
        self._sources = itertools.count(1)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "endpoint": self.endpoint,
            "middleware": self.middleware,
            "timeout_ms": self.timeout_ms,
            "connections": self.connections,
            "answer_check": self.answer_check,
        }

    def new_source(self) -> int:
        """A tag for the outcomes of one batch or traffic run."""
        return next(self._sources)

    def next_request(self, distinct: int = 0) -> Any:
        n = next(self._numbers)
        if distinct:
            key = f"key-{n % distinct}"
            return self._message(role="user", content=key, metadata={"request_id": key})
        return self._message(role="user", content=f"req-{n}", metadata={"request_id": f"{self.name}:{n}"})

    async def run_requests(
        self, turns: Iterable[Any], source: int, distinct: int = 0, pause_s: float = 0.0
    ) -> int:
        """Send one request per item of ``turns`` and record each outcome; return the successes.

        Workers sharing one iterator split a batch between them. The whole loop
        is one coroutine on purpose: every coroutine frame between the caller
        and agenkit costs about a microsecond per request (each resume passes
        through it), which the harness benchmark would show.
        """
        process = self.agent.process
        record_answer = self.recorder.record_answer
        successes = 0
        for _ in turns:
            message = self.next_request(distinct)
            sent_at = _wall_clock()
            started = _perf_counter()
            try:
                answer = await process(message)
            except Exception as e:  # every failure is an outcome; CancelledError passes through
                self.recorder.record(sent_at, (_perf_counter() - started) * 1000.0, e, False, source)
            else:
                latency_ms = (_perf_counter() - started) * 1000.0
                wrong = self._check is not None and not self._is_right(message, answer)
                record_answer(sent_at, latency_ms, wrong, source)
                successes += not wrong
            if pause_s:
                await asyncio.sleep(pause_s)
        return successes

    async def close(self) -> None:
        """Stop traffic and close every RemoteAgent (bounded: a dead peer cannot hang us)."""
        self.closed = True
        if self.traffic is not None:
            await self.traffic.stop(drain_s=_CLOSE_TIMEOUT_S)
        for remote in self.remotes:
            try:
                await asyncio.wait_for(remote.close(), _CLOSE_TIMEOUT_S)
            except Exception:
                continue

    def _is_right(self, request: Any, answer: Any) -> bool:
        assert self._check is not None
        try:
            return bool(self._check(request, answer))
        except Exception:  # a checker that cannot read the answer means it is not the right one
            return False
