"""``ChaosAgent``: an agenkit Agent decorator that injects service faults.

``ChaosAgent(agent)`` is an ``agenkit.interfaces.Agent`` like agenkit's own
middleware decorators (the wrapped agent is ``._agent``), so it can be
served by ``LocalAgent``/``HTTPAgentServer`` (that is what ``chaosagenkit
serve`` does) or wrapped by agenkit middleware in-process. For each request
it asks its ``FaultPolicy`` for a decision, then, in this order:

1. crash: the process exits at once with ``CRASH_EXIT_CODE`` while the
   request is in flight (``os._exit``: no exception, no answer, no cleanup);
2. delay: ``asyncio.sleep`` for the drawn time. Removing the fault (clear,
   delete, or expiry swept by the host) releases requests it is delaying:
   a cleared fault does not keep holding callers;
3. failure: raise the error kind's exception (below) instead of calling
   the wrapped agent;
4. otherwise call the wrapped agent; a large_response fault adds
   ``size_bytes`` of padding to the answer's metadata (``chaosagenkit_padding``)
   and keeps its content and ``request_id``.

Error kinds, chosen so agenkit's servers report each as it would a real one:

- ``exception``: ``InjectedFailure`` (a ``RuntimeError``), an agent bug;
- ``connection``: ``InjectedConnectionError``, a subclass of agenkit's
  ``agenkit.adapters.python.ConnectionError`` (code CONNECTION_FAILED), a
  dependency the agent could not reach;
- ``timeout``: ``InjectedTimeoutError``, a subclass of agenkit's
  ``AgentTimeoutError`` (code AGENT_TIMEOUT), raised at once (the delay
  fault is the way to make a caller really wait).

Each carries ``chaosagenkit_injected = True`` and says "injected" in its
message. Memory and CPU pressure are host resources, not per-request
decisions: ``chaosagenkit.service.host`` holds them.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

from agenkit.adapters.python.errors import (
    AgentTimeoutError,
    ProtocolError,
    ProtocolErrorCode,
)
from agenkit.adapters.python.errors import (
    ConnectionError as AgenkitConnectionError,
)
from agenkit.interfaces import Agent, Message

from chaosagenkit.faults.service import (
    NO_FAULT,
    ActiveFault,
    Decision,
    FaultPolicy,
    FaultSpec,
    parse_faults,
)
from chaosagenkit.stats import percentile

__all__ = [
    "CRASH_EXIT_CODE",
    "PADDING_KEY",
    "ChaosAgent",
    "InjectedConnectionError",
    "InjectedFailure",
    "InjectedTimeoutError",
    "LatencyRecorder",
    "crash_process",
    "injected_error",
]

#: Exit status of a host crashed on purpose (EX_SOFTWARE), told apart from a clean stop (0).
CRASH_EXIT_CODE = 70
PADDING_KEY = "chaosagenkit_padding"


class InjectedFailure(RuntimeError):
    """A plain exception injected by chaosagenkit (error kind ``exception``)."""

    chaosagenkit_injected = True


class InjectedConnectionError(AgenkitConnectionError):
    """agenkit's ConnectionError, injected by chaosagenkit (error kind ``connection``)."""

    chaosagenkit_injected = True


class InjectedTimeoutError(AgentTimeoutError):
    """agenkit's AgentTimeoutError, injected by chaosagenkit (error kind ``timeout``)."""

    chaosagenkit_injected = True

    def __init__(self, message: str, details: dict[str, Any]) -> None:
        ProtocolError.__init__(self, ProtocolErrorCode.AGENT_TIMEOUT, message, details)


def injected_error(kind: str, fault_id: str | None, agent_name: str) -> Exception:
    """The exception for error kind ``kind`` injected by fault ``fault_id``."""
    message = f"chaosagenkit injected {kind} failure (fault {fault_id}, agent '{agent_name}')"
    details = {"chaosagenkit_injected": True, "fault_id": fault_id, "error_kind": kind}
    if kind == "connection":
        return InjectedConnectionError(message, details)
    if kind == "timeout":
        return InjectedTimeoutError(message, details)
    return InjectedFailure(message)


def crash_process(reason: str) -> NoReturn:
    """Exit NOW with CRASH_EXIT_CODE: no cleanup, no answer to anyone (one line on stderr)."""
    try:
        os.write(2, f"chaosagenkit: crashing on purpose: {reason}\n".encode())
    finally:
        os._exit(CRASH_EXIT_CODE)


def _crash_on_request(decision: Decision) -> NoReturn:
    crash_process(f"fault {decision.error_fault}, request {decision.request} in flight")


#: Upper bounds (ms) of the request-duration histogram the host's ``GET /metrics`` shows.
LATENCY_BUCKETS_MS = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000)


class LatencyRecorder:
    """Time spent in ``ChaosAgent.process``: count, sum, max and a histogram over all, percentiles over a window."""

    def __init__(self, window: int = 10_000) -> None:
        self._samples: deque[float] = deque(maxlen=window)
        self.count = 0
        self.max_ms = 0.0
        self.total_ms = 0.0
        self.buckets = [0] * (len(LATENCY_BUCKETS_MS) + 1)  # per bound, then above the last

    def record(self, ms: float) -> None:
        self._samples.append(ms)
        self.count += 1
        self.total_ms += ms
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS_MS, ms)] += 1
        if ms > self.max_ms:
            self.max_ms = ms

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self._samples)

        def pct(q: float) -> float | None:  # the one definition probes and reports use
            return round(percentile(ordered, q * 100), 3) if ordered else None

        return {
            "count": self.count,
            "window": len(ordered),
            "p50": pct(0.50),
            "p95": pct(0.95),
            "p99": pct(0.99),
            "max": round(self.max_ms, 3) if self.count else None,
        }


class ChaosAgent(Agent):
    """Wrap ``agent`` and apply the decisions of ``policy`` (a new one seeded ``seed`` if None)."""

    def __init__(
        self,
        agent: Agent,
        policy: FaultPolicy | None = None,
        seed: int | None = None,
        *,
        clock: Callable[[], float] = time.time,
        crash: Callable[[Decision], Any] = _crash_on_request,
    ) -> None:
        self._agent = agent
        self.policy = policy if policy is not None else FaultPolicy(seed)
        self._clock = clock
        self._crash = crash
        self.latency = LatencyRecorder()
        self._delayed: dict[str, set[asyncio.Event]] = {}

    @property
    def name(self) -> str:
        return self._agent.name

    @property
    def stats(self) -> dict[str, Any]:
        """Requests, injected faults by kind and latency (ms) of this decorator.

        Not called ``metrics``: chaosagenkit.middleware_view reads objects with
        ``metrics`` as agenkit middleware, and this is not agenkit's.
        """
        return {**self.policy.stats(), "latency_ms": self.latency.summary()}

    # -- faults (the in-process API; the host's control API calls these) -----

    def add_faults(self, data: Any) -> list[ActiveFault]:
        """Add one fault (JSON object) or a list of them, all or nothing."""
        return self.add_specs(parse_faults(data))

    def add_specs(self, specs: list[FaultSpec]) -> list[ActiveFault]:
        """Add already validated fault specs, all at the same instant."""
        now = self._clock()
        return [self.policy.add(spec, now) for spec in specs]

    def remove_fault(self, fault_id: str) -> ActiveFault | None:
        fault = self.policy.remove(fault_id)
        self.reconcile()
        return fault

    def clear_faults(self) -> list[ActiveFault]:
        removed = self.policy.clear()
        self.reconcile()
        return removed

    def active_faults(self) -> list[ActiveFault]:
        """The faults in force now, oldest first; expired ones are dropped."""
        return self.policy.active(self._clock())

    def reconcile(self) -> set[str]:
        """Drop expired faults and end the delays of faults no longer active.

        Returns the ids of the active faults. The host calls it after every
        change and when a fault's time is up; without a host, expiry happens
        on the next request and delays already running finish normally.
        """
        active = {fault.id for fault in self.active_faults()}
        for fault_id in [f for f in self._delayed if f not in active]:
            for event in self._delayed.pop(fault_id):
                event.set()
        return active

    # -- requests ------------------------------------------------------------

    async def process(self, message: Message) -> Message:
        started = time.perf_counter()
        try:
            decision = self.policy.decide(self._clock())
            if decision is NO_FAULT:
                return await self._agent.process(message)
            await self._before(decision)
            result = await self._agent.process(message)
            return self._pad(result, decision.pad_bytes) if decision.pad_bytes else result
        finally:
            self.latency.record((time.perf_counter() - started) * 1000.0)

    async def stream(self, message: Message) -> AsyncIterator[Message]:
        """Stream through the wrapped agent; faults act before the first chunk."""
        decision = self.policy.decide(self._clock())
        if decision is not NO_FAULT:
            await self._before(decision)
        async for chunk in self._agent.stream(message):
            yield chunk

    async def _before(self, decision: Decision) -> None:
        if decision.crash:
            self._crash(decision)
        if decision.delay_ms > 0:
            await self._delay(decision)
        if decision.error is not None:
            raise injected_error(decision.error, decision.error_fault, self.name)

    async def _delay(self, decision: Decision) -> None:
        released = asyncio.Event()
        for fault_id in decision.delay_faults:
            self._delayed.setdefault(fault_id, set()).add(released)
        try:
            async with asyncio.timeout(decision.delay_ms / 1000.0):
                await released.wait()
        except TimeoutError:
            pass  # the whole delay elapsed: the normal case
        finally:
            for fault_id in decision.delay_faults:
                waiting = self._delayed.get(fault_id)
                if waiting is not None:
                    waiting.discard(released)
                    if not waiting:
                        del self._delayed[fault_id]

    @staticmethod
    def _pad(result: Message, size_bytes: int) -> Message:
        metadata = {**(result.metadata or {}), PADDING_KEY: "x" * size_bytes}
        return Message(
            role=result.role, content=result.content, metadata=metadata, timestamp=result.timestamp
        )
