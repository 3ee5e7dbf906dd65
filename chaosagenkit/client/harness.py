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

Requests: content from the client's ``request_content`` template (default
``req-{n}``, n counting from 0) and metadata ``{"request_id": "<client>:<n>"}``;
with ``distinct=K`` (caching under test) the content is the template at
``n mod K`` and the request_id ``key-<n mod K>``, because agenkit's cache key
covers the metadata too.

Answers: ``answer_check`` decides whether an answer is the right one for its
request: ``echo`` (content and request_id come back), ``any`` (any answer that
is not an error) or ``module:function`` (``f(request, answer) -> bool``,
imported like the served agent, see ``chaosagenkit.references``). A check
that RAISES is a configuration error, not a wrong answer: the client stops
sending, and this and every later batch fails with that one error.

Attempts: under a ``retry`` middleware, an ``AttemptLog`` between the
innermost decorator and the RemoteAgent notes every call that reaches the
RemoteAgent (when it started and ended, for which request), so probes can
show the backoff between a request's attempts. Without retry nothing of
ours sits between the stack and the RemoteAgent.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import Callable, Iterable
from typing import Any

from chaosagenkit.client.recorder import Recorder
from chaosagenkit.client.stack import build_stack, validate_middleware
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.references import import_reference

__all__ = [
    "ANSWER_CHECKS",
    "DEFAULT_REQUEST_CONTENT",
    "DEFAULT_TIMEOUT_MS",
    "AnswerCheckError",
    "AttemptLog",
    "Client",
    "ConnectionPool",
    "echo_answer_ok",
    "request_content_template",
    "resolve_answer_check",
]

DEFAULT_TIMEOUT_MS = 5000
DEFAULT_REQUEST_CONTENT = "req-{n}"
#: The built-in answer checks; anything else must be "module:function".
ANSWER_CHECKS = ("echo", "any")
#: Older name of "any", still accepted.
_ANY_ALIASES = ("any", "none")
#: Attempts an AttemptLog keeps (the oldest are dropped past this).
MAX_ATTEMPTS_LOGGED = 100_000
_wall_clock = time.time  # bound once: call() is the hot path the benchmark measures
_perf_counter = time.perf_counter
MAX_CONNECTIONS = 256
_CLOSE_TIMEOUT_S = 2.0

AnswerCheck = Callable[[Any, Any], bool]


def echo_answer_ok(request: Any, answer: Any) -> bool:
    """True when the answer carries its request's content and request_id (the echo contract)."""
    metadata = answer.metadata or {}
    return answer.content == request.content and metadata.get("request_id") == request.metadata["request_id"]


def resolve_answer_check(answer_check: Any) -> AnswerCheck | None:
    """``"echo"``, ``"any"`` (None: no check) or ``"module:function"`` (f(request, answer) -> bool)."""
    if answer_check == "echo":
        return echo_answer_ok
    if answer_check in _ANY_ALIASES:
        return None
    expected = "'echo', 'any' or 'module:function'"
    if not isinstance(answer_check, str) or ":" not in answer_check:
        raise ConfigurationError("answer_check", f"must be {expected}, got {answer_check!r}")
    check = import_reference(answer_check, "answer_check", expected)
    if not callable(check):
        raise ConfigurationError("answer_check", f"{answer_check!r} is not callable")
    return check


def request_content_template(template: Any) -> str:
    """Check a ``request_content`` template: a string with ``{n}`` and no other field."""
    if not isinstance(template, str) or "{n}" not in template:
        raise ConfigurationError(
            "request_content", f"must be a string with {{n}} (e.g. 'status of order {{n}}'), got {template!r}"
        )
    try:
        template.format(n=0)
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigurationError(
            "request_content",
            f"must use only {{n}} (write {{{{ and }}}} for braces), got {template!r}: {e!r}",
        ) from e
    return template


class AnswerCheckError(ConfigurationError):
    """The answer check raised instead of returning True or False: the check is broken."""

    def __init__(self, answer_check: str, request: Any, answer: Any, error: Exception) -> None:
        super().__init__(
            "answer_check",
            f"{answer_check} raised {type(error).__name__}: {error} (request {_short(request.content)}, "
            f"answer {_short(getattr(answer, 'content', answer))}); it must return True or False",
        )


class AttemptLog:
    """An agenkit Agent that notes each call reaching the agent it wraps (a retry's attempts).

    ``attempts`` holds (request, started, ended, error name or None), times
    from ``time.perf_counter`` in s; ``logged`` counts every attempt ever
    noted, so a batch can find its own after the oldest were dropped.
    Holding the request keeps its identity unique while it is listed.
    """

    def __init__(self, agent: Any) -> None:
        self._agent = agent
        self.attempts: collections.deque[tuple[Any, float, float, str | None]] = collections.deque(
            maxlen=MAX_ATTEMPTS_LOGGED
        )
        self.logged = 0

    @property
    def name(self) -> str:
        return self._agent.name

    @property
    def capabilities(self) -> list[str]:
        return []

    async def process(self, message: Any) -> Any:
        started = _perf_counter()
        try:
            answer = await self._agent.process(message)
        except BaseException as e:
            self._note(message, started, type(e).__name__)
            raise
        self._note(message, started, None)
        return answer

    async def stream(self, message: Any) -> Any:  # agenkit's Agent interface; unused here
        raise NotImplementedError("the attempt log only forwards process()")

    def since(self, logged: int) -> list[tuple[Any, float, float, str | None]]:
        """The attempts noted after the first ``logged`` ones (those still kept)."""
        skip = max(0, len(self.attempts) - (self.logged - logged))
        return list(itertools.islice(self.attempts, skip, None))

    def _note(self, message: Any, started: float, error: str | None) -> None:
        self.attempts.append((message, started, _perf_counter(), error))
        self.logged += 1


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        request_content: str = DEFAULT_REQUEST_CONTENT,
    ) -> None:
        from agenkit.adapters.python.remote_agent import RemoteAgent
        from agenkit.interfaces import Message

        self._message = Message
        self.name = name
        self.endpoint = endpoint
        self.middleware = validate_middleware(middleware)
        self.timeout_ms = timeout_ms
        self.connections = connections
        self.request_content = request_content_template(request_content)
        self.answer_check = answer_check
        self._check = resolve_answer_check(answer_check)
        self.check_error: AnswerCheckError | None = None  # set once the answer check raised
        try:
            self.remotes = [
                RemoteAgent(name, endpoint=endpoint, timeout_ms=timeout_ms) for _ in range(connections)
            ]
        except ValueError as e:  # agenkit's endpoint parser
            raise ConfigurationError("endpoint", f"is not usable by agenkit: {e}") from e
        inner = self.remotes[0] if connections == 1 else ConnectionPool(name, self.remotes)
        self.attempt_log: AttemptLog | None = None
        if any(spec["type"] == "retry" for spec in self.middleware):
            inner = self.attempt_log = AttemptLog(inner)
        self.agent = build_stack(inner, self.middleware)
        self.recorder = Recorder()
        self.created = self.recorder.created
        self.closed = False
        self.traffic: Any = None  # chaosagenkit.client.traffic.Traffic while running
        self.last_batch: tuple[int, int] | None = None  # (source, first row) of the last send_requests
        self.first_batch: tuple[int, int] | None = None  # the same for the first: the baseline
        self.last_batch_attempts = 0  # attempt_log.logged when the last send_requests began
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
            "request_content": self.request_content,
        }

    def new_source(self) -> int:
        """A tag for the outcomes of one batch or traffic run."""
        return next(self._sources)

    def next_request(self, distinct: int = 0) -> Any:
        n = next(self._numbers)
        if distinct:
            k = n % distinct
            return self._message(
                role="user", content=self.request_content.format(n=k), metadata={"request_id": f"key-{k}"}
            )
        return self._message(
            role="user",
            content=self.request_content.format(n=n),
            metadata={"request_id": f"{self.name}:{n}"},
        )

    async def run_requests(
        self, turns: Iterable[Any], source: int, distinct: int = 0, pause_s: float = 0.0
    ) -> int:
        """Send one request per item of ``turns`` and record each outcome; return the successes.

        Workers sharing one iterator split a batch between them. The whole loop
        is one coroutine on purpose: every coroutine frame between the caller
        and agenkit costs about a microsecond per request (each resume passes
        through it), which the harness benchmark would show. Raises
        ``AnswerCheckError`` (once: other workers just stop) if the answer
        check raised; a request whose answer could not be judged is not recorded.
        """
        process = self.agent.process
        record_answer = self.recorder.record_answer
        successes = 0
        for _ in turns:
            if self.check_error is not None:
                break
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
                if self.check_error is not None:
                    break
                record_answer(sent_at, latency_ms, wrong, source)
                successes += not wrong
            if pause_s:
                await asyncio.sleep(pause_s)
        return successes

    def raise_if_check_failed(self) -> None:
        """Raise the answer check's error again, if it ever raised (the client cannot judge answers)."""
        if self.check_error is not None:
            raise self.check_error

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
        except Exception as e:  # a broken check is the user's configuration, not the target's fault
            if self.check_error is None:
                self.check_error = AnswerCheckError(self.answer_check, request, answer, e)
                self.check_error.__cause__ = e
            return False
