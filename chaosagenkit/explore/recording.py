"""Drive a schedule's traffic on real agenkit clients and record the trial's history.

The traffic runs on the client runtime's loop (``chaosagenkit.client.runtime``)
through the run's clients (``chaosagenkit.client.harness.Client``: agenkit's
RemoteAgent under agenkit's middleware): a steady stream of sequential calls
on the main client, bursts of concurrent calls on it, fresh clients created
with the same stack that each fire a burst as their very first use, and
idle gaps in the stream. Every call is recorded twice: in the client's own
outcome recorder (so journals and reports show it as any other traffic) and
as a ``history.Request`` with what the invariants need besides.

What is recorded, and how, without changing what agenkit does:

- per attempt: agenkit's ``RetryDecorator`` asks its ``should_retry`` about
  every failed attempt. Each retry layer of the explorer's clients gets an
  observer there that returns exactly what agenkit would have decided (the
  declared rule, or True when none is declared, which is agenkit's "retry
  everything") and notes the attempt's error chain and whether a retry
  follows, keyed by the call it belongs to (a context variable set around
  each call);
- the circuit breaker: the outermost ``CircuitBreakerDecorator`` of each
  client is sampled (state, requests admitted, agenkit's own transition
  counts) every ``SAMPLE_S`` and right before and after every call, keeping
  only samples that differ from the previous one;
- the host: its fds, agent connections and tasks when the traffic starts,
  and after it ended and the explorer's clients are closed (``host``).

``finish`` ends a trial: it waits until the recovery time after the last
fault has passed (plus ``RECOVERY_TAIL_S`` of calls), stops the traffic,
closes the explorer's clients, measures the host again, and freezes the
``History`` the invariants read.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from chaosagenkit.client.recorder import error_chain
from chaosagenkit.client.runtime import RUNTIME
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.explore.history import Attempt, BreakerSample, History, HostSample, Request, fault_windows
from chaosagenkit.explore.host import measure_host, settle_host
from chaosagenkit.explore.invariants import TOLERANCES, caller_deadline_ms, recovery_s
from chaosagenkit.explore.schedule import TrafficEvent
from chaosagenkit.middleware_view import decorator_chain
from chaosagenkit.sandbox import SANDBOX

__all__ = ["RECOVERY_TAIL_S", "SAMPLE_S", "Recording", "current", "finish", "start"]

#: How often each circuit breaker is sampled between calls.
SAMPLE_S = 0.005
#: Calls go on this long after the recovery time, so ``recovers_after_faults`` has some to check.
RECOVERY_TAIL_S = 1.0
#: The traffic stops by itself after this, whatever happens (a safety bound).
SAFETY_S = 600.0

_CALL: contextvars.ContextVar[str | None] = contextvars.ContextVar("chaosagenkit_explore_call", default=None)
_lock = threading.Lock()
_current: Recording | None = None


@dataclass
class _Observed:
    """A failed attempt as the retry observer saw it."""

    layer: int
    index: int
    errors: tuple[str, ...]
    retried: bool


@dataclass
class Recording:
    """One trial's traffic and everything it observed (lives on the client runtime's loop)."""

    main: Any  # the main client (a chaosagenkit.client.harness.Client)
    interval_s: float
    events: tuple[TrafficEvent, ...]
    server: str
    safety_s: float = SAFETY_S
    started: float = field(default_factory=time.time)
    requests: list[Request] = field(default_factory=list)
    breakers: list[BreakerSample] = field(default_factory=list)
    host_before: HostSample | None = None
    host_after: HostSample | None = None
    clients: list[Any] = field(default_factory=list)
    history: History | None = None
    notes: list[str] = field(default_factory=list)
    _attempts: dict[str, list[_Observed]] = field(default_factory=dict)
    _last_sample: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _timers: list[asyncio.TimerHandle] = field(default_factory=list)
    _stopping: bool = False
    _fresh: itertools.count = field(default_factory=lambda: itertools.count(1))
    _source: int = 0
    _t0: float = 0.0

    # -- on the runtime's loop --------------------------------------------------------

    async def begin(self) -> None:
        loop = asyncio.get_running_loop()
        self._t0 = loop.time()
        self.started = time.time()
        self._source = self.main.new_source()
        self._adopt(self.main)
        self._spawn(self._stream())
        self._spawn(self._sampler())
        for event in self.events:
            if event.kind != "idle":
                self._timers.append(loop.call_later(event.at_s, self._spawn, self._event(event)))

    async def stop(self, drain_s: float) -> None:
        """Stop sending; wait up to ``drain_s`` for calls in flight, then cancel them."""
        self._stopping = True
        for timer in self._timers:
            timer.cancel()
        tasks = set(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=drain_s)
            for task in pending:
                task.cancel()
            if pending:
                self.notes.append(
                    f"{len(pending)} call(s) still in flight {drain_s:g} s after the end: cancelled"
                )
                await asyncio.gather(*pending, return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stream(self) -> None:
        loop = asyncio.get_running_loop()
        idle = [(e.at_s, e.end_s) for e in self.events if e.kind == "idle"]
        while not self._stopping and loop.time() - self._t0 < self.safety_s:
            now = loop.time() - self._t0
            gap_end = max((end for start, end in idle if start <= now < end), default=None)
            if gap_end is not None:
                await self._sleep(gap_end - now)
                continue
            await self._call(self.main)
            await self._sleep(self.interval_s)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early when the traffic stops."""
        end = asyncio.get_running_loop().time() + seconds
        while not self._stopping:
            left = end - asyncio.get_running_loop().time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.05))

    async def _sampler(self) -> None:
        while not self._stopping:
            for client in self.clients:
                self._sample(client)
            await asyncio.sleep(SAMPLE_S)

    async def _event(self, event: TrafficEvent) -> None:
        if self._stopping:
            return
        if event.kind == "burst":
            await asyncio.gather(*(self._call(self.main) for _ in range(event.size)))
            return
        fresh = [self._new_client() for _ in range(event.clients)]
        await asyncio.gather(*(self._call(client) for client in fresh for _ in range(event.size)))

    def _new_client(self) -> Any:
        # Imported on use: it loads chaoslib; other paths here never need it.
        from chaosagenkit.client.registry import create_client

        main = self.main
        client = create_client(
            f"{main.name}-fresh{next(self._fresh)}",
            endpoint=main.endpoint,
            middleware=main.middleware,
            timeout_ms=main.timeout_ms,
            answer_check=main.answer_check,
        )
        self._adopt(client)
        return client

    async def _call(self, client: Any) -> None:
        # Imported on use: it loads chaoslib; other paths here never need it.
        from chaosagenkit.client.harness import resolve_answer_check

        message = client.next_request()
        call_id = message.metadata["request_id"]
        token = _CALL.set(call_id)
        self._sample(client)
        sent = time.time()
        started = time.perf_counter()
        outcome: dict[str, Any] = {}
        try:
            answer = await client.agent.process(message)
        except Exception as e:  # every failure is an outcome; CancelledError passes through
            latency_ms = (time.perf_counter() - started) * 1000.0
            client.recorder.record(sent, latency_ms, e, False, self._source)
            outcome = {
                "error": type(e).__name__,
                "error_module": type(e).__module__,
                "message": str(e)[:300],
                "chain": error_chain(e),
            }
        else:
            latency_ms = (time.perf_counter() - started) * 1000.0
            check = resolve_answer_check(client.answer_check)
            wrong = check is not None and not _right(check, message, answer)
            client.recorder.record_answer(sent, latency_ms, wrong, self._source)
            metadata = answer.metadata if isinstance(getattr(answer, "metadata", None), dict) else {}
            answer_id = metadata.get("request_id")
            outcome = {"wrong": wrong, "answer_id": None if answer_id is None else str(answer_id)}
        finally:
            _CALL.reset(token)
            self._sample(client)
        self.requests.append(
            Request(
                id=call_id,
                client=client.name,
                sent=sent,
                latency_ms=latency_ms,
                attempts=self._attempts_of(call_id),
                **outcome,
            )
        )

    def _attempts_of(self, call_id: str) -> tuple[Attempt, ...]:
        observed = self._attempts.pop(call_id, [])
        return tuple(Attempt(o.errors, o.retried) for o in observed)

    # -- instrumentation (observes, never decides differently) -------------------------

    def _adopt(self, client: Any) -> None:

        self.clients.append(client)
        layer = 0
        for link in decorator_chain(client.agent):
            if type(link).__name__ == "RetryDecorator":
                config = link._config
                config.should_retry = self._observer(config.should_retry, config.max_retries, layer)
                layer += 1

    def _observer(self, declared: Any, max_retries: int, layer: int) -> Any:
        def should_retry(error: Exception) -> bool:
            decision = True if declared is None else bool(declared(error))
            call_id = _CALL.get()
            if call_id is not None:
                seen = self._attempts.setdefault(call_id, [])
                index = 1 + sum(1 for o in seen if o.layer == layer)
                seen.append(_Observed(layer, index, error_chain(error), decision and index < max_retries))
            return decision

        return should_retry

    def _sample(self, client: Any) -> None:
        breaker = _outermost_breaker(client)
        if breaker is None:
            return
        metrics = breaker.metrics
        state = getattr(breaker.state, "value", str(breaker.state))
        admitted = metrics.total_requests - metrics.rejected_requests
        changes = tuple(sorted(metrics.state_changes.items()))
        key = (state, admitted, changes)
        if self._last_sample.get(client.name) == key:
            return
        self._last_sample[client.name] = key
        self.breakers.append(BreakerSample(time.time(), client.name, state, admitted, changes))

    # -- the end ------------------------------------------------------------------------

    def freeze(self, ended: float, timeline: list[dict[str, Any]]) -> History:
        # Imported on use: it loads chaoslib; other paths here never need it.
        from chaosagenkit.client.harness import resolve_answer_check

        self.history = History(
            started=self.started,
            ended=ended,
            requests=tuple(sorted(self.requests, key=lambda r: r.sent)),
            faults=tuple(w for w in fault_windows(timeline) if w.start >= self.started - 1.0),
            breakers=tuple(self.breakers),
            host_before=self.host_before,
            host_after=self.host_after,
            stack=tuple(self.main.middleware),
            remote_timeout_ms=float(self.main.timeout_ms),
            answers_checked=resolve_answer_check(self.main.answer_check) is not None,
            notes=tuple(self.notes),
        )
        return self.history


def _outermost_breaker(client: Any) -> Any:

    for link in decorator_chain(client.agent):
        if type(link).__name__ == "CircuitBreakerDecorator":
            return link
    return None


def _right(check: Any, request: Any, answer: Any) -> bool:
    try:
        return bool(check(request, answer))
    except Exception:  # a checker that cannot read the answer means it is not the right one
        return False


# -- what the activities call (from Chaos Toolkit's thread) ------------------------------


def start(
    client: str, interval_ms: float, events: list[dict[str, Any]], server: str, safety_s: float
) -> Recording:
    """Begin a trial's traffic on ``client``; measure ``server`` first. Replaces any earlier recording."""
    # Imported on use: it loads chaoslib; other paths here never need it.
    from chaosagenkit.client.registry import get_client

    global _current
    main = get_client(client)
    if main.closed:
        raise ConfigurationError("client", f"client {client!r} is closed")
    parsed = tuple(TrafficEvent.from_json(e) for e in events)
    ref = SANDBOX.servers.get(server)
    if ref is None:
        raise ConfigurationError(
            "server", f"unknown server {server!r} (known: {', '.join(SANDBOX.servers) or 'none'})"
        )
    recording = Recording(
        main=main, interval_s=interval_ms / 1000.0, events=parsed, server=server, safety_s=safety_s
    )
    recording.host_before = measure_host(ref)
    with _lock:
        previous, _current = _current, recording
    if previous is not None and previous.history is None:
        RUNTIME.run(previous.stop(0.0), 10.0)
    RUNTIME.run(recording.begin(), 10.0)
    return recording


def current() -> Recording:
    """The trial being recorded; ConfigurationError when no traffic was started in this run."""
    with _lock:
        recording = _current
    if recording is None:
        raise ConfigurationError(
            "client", "no exploration traffic was started in this run (start_exploration_traffic comes first)"
        )
    return recording


def finish(recording: Recording) -> History:
    """End the trial once (later calls return the same history): see the module docstring."""
    # Imported on use: it loads chaoslib; other paths here never need it.
    from chaosagenkit.client.registry import close_client

    with _lock:
        if recording.history is not None:
            return recording.history
        timeline = SANDBOX.timeline()
        windows = [w for w in fault_windows(timeline) if w.start >= recording.started - 1.0]
        planned_end = recording.started + max((e.end_s for e in recording.events), default=0.0)
        last_end = max([planned_end] + [w.end if w.end is not None else time.time() for w in windows])
        stack, remote_ms = recording.main.middleware, recording.main.timeout_ms
        until = last_end + recovery_s(stack, remote_ms, TOLERANCES) + RECOVERY_TAIL_S
        until = min(until, recording.started + recording.safety_s)
        remaining = until - time.time()
        if remaining > 0:
            time.sleep(remaining)  # the calls after the recovery time are what the invariants check
        drain_s = caller_deadline_ms(stack, remote_ms) / 1000.0 + 1.0
        RUNTIME.run(recording.stop(min(drain_s, 60.0)), min(drain_s, 60.0) + 10.0)
        ended = time.time()
        for client in recording.clients:
            try:
                close_client(client.name)
            except Exception as e:  # a client that cannot close is a note, not a reason to stop
                recording.notes.append(f"could not close {client.name}: {e}")
        ref = SANDBOX.servers.get(recording.server)
        if recording.host_before is not None and ref is not None:
            settle = TOLERANCES.leak_settle_s + _longest_delay_s(timeline)
            recording.host_after = settle_host(ref, recording.host_before, settle)
        return recording.freeze(ended, SANDBOX.timeline())


def _longest_delay_s(timeline: list[dict[str, Any]]) -> float:
    """The longest delay any fault of the run asked the host for (it may still be serving one)."""
    longest = 0.0
    for event in timeline:
        detail = event.get("detail") or {}
        for key in ("delay_ms", "max_delay_ms", "latency_ms"):
            value = detail.get(key)
            if isinstance(value, int | float):
                longest = max(longest, float(value) / 1000.0)
    return longest
