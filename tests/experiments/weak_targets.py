"""Weak agents, to prove that an experiment's expectations can fail (test-only).

Each is an agent a team could really ship, with one weakness an experiment
names: too slow for CPU pressure, or mishandling the moment its own memory
runs out. They are served by a real ``chaosagenkit serve`` like any agent
(``target_agent``), answer like the echo target while healthy (so the
steady state holds), and show their weakness only under the fault.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from agenkit.interfaces import Agent, Message

#: CPU time one request of the CPU-bound agent costs (s of its own thread's CPU).
CPU_WORK_S = 0.1
#: Working memory the memory-hungry agents allocate for each request (MiB).
WORK_MIB = 32


def echo_answer(message: Message) -> Message:
    """What the echo target answers: the request's content and request_id."""
    return Message(
        role="agent",
        content=message.content,
        metadata={"request_id": (message.metadata or {}).get("request_id")},
    )


class CpuBoundEcho(Agent):
    """An agent doing CPU_WORK_S of pure-Python work per request (parsing, scoring): too slow when CPU is short."""

    @property
    def name(self) -> str:
        return "cpu-bound"

    async def process(self, message: Message) -> Message:
        until = time.thread_time() + CPU_WORK_S
        while time.thread_time() < until:  # CPU time, so contention shows as a longer wall time
            pass
        return echo_answer(message)


class MemoryHungryEcho(Agent):
    """An agent that needs WORK_MIB of working memory per request; subclasses differ when it is refused."""

    @property
    def name(self) -> str:
        return "memory-hungry"

    async def process(self, message: Message) -> Message:
        try:
            work = bytearray(WORK_MIB * 1024 * 1024)
            work[::4096] = b"\x01" * len(range(0, len(work), 4096))  # really use the pages
        except MemoryError:
            return await self.out_of_memory(message)
        del work
        return echo_answer(message)

    async def out_of_memory(self, message: Message) -> Message:
        raise MemoryError(f"{self.name}: no memory for {WORK_MIB} MiB of work")


class HangsWhenMemoryIsShort(MemoryHungryEcho):
    """Waits for memory to come back instead of failing: callers time out instead of getting an error."""

    async def out_of_memory(self, message: Message) -> Message:
        await asyncio.sleep(60)
        return echo_answer(message)


class WrongWhenMemoryIsShort(MemoryHungryEcho):
    """Degrades to an empty answer when memory is short: a wrong answer instead of an error."""

    async def out_of_memory(self, message: Message) -> Message:
        return Message(role="agent", content="", metadata={})


class DiesWhenMemoryIsShort(MemoryHungryEcho):
    """Exits when an allocation fails (as code that treats MemoryError as fatal does)."""

    async def out_of_memory(self, message: Message) -> Message:
        os._exit(1)


class BrokenAfterMemoryError(MemoryHungryEcho):
    """Stays broken once an allocation failed (a poisoned state it never resets)."""

    def __init__(self) -> None:
        self.poisoned = False

    async def process(self, message: Message) -> Message:
        if self.poisoned:
            raise RuntimeError(f"{self.name}: unusable since an allocation failed")
        return await super().process(message)

    async def out_of_memory(self, message: Message) -> Message:
        self.poisoned = True
        return await super().out_of_memory(message)


class SlowEcho(Agent):
    """An echo that takes 350 ms per answer: a real agent's speed, slower than the echo target's."""

    @property
    def name(self) -> str:
        return "slow"

    async def process(self, message: Message) -> Message:
        await asyncio.sleep(0.35)
        return echo_answer(message)


def cpu_bound_echo() -> Agent:
    return CpuBoundEcho()


def hangs_when_memory_is_short() -> Agent:
    return HangsWhenMemoryIsShort()


def wrong_when_memory_is_short() -> Agent:
    return WrongWhenMemoryIsShort()


def dies_when_memory_is_short() -> Agent:
    return DiesWhenMemoryIsShort()


def broken_after_memory_error() -> Agent:
    return BrokenAfterMemoryError()


def slow_echo() -> Agent:
    return SlowEcho()


#: The steady-state hypothesis of every experiment sends 20 requests first.
HEALTHY_REQUESTS = 20


class EchoThenFail(Agent):
    """Echo the first HEALTHY_REQUESTS requests, then fail every request: a target that breaks
    after the steady state (the kernel experiments' weakened runs)."""

    def __init__(self) -> None:
        self.seen = 0

    @property
    def name(self) -> str:
        return "echo"

    async def process(self, message: Message) -> Message:
        self.seen += 1
        if self.seen > HEALTHY_REQUESTS:
            raise RuntimeError("weak target: broken after the steady state")
        return echo_answer(message)


def echo_then_fail() -> Agent:
    return EchoThenFail()


class LenientToolAgent(Agent):
    """The LLM-backed target (chaosagenkit.llm.targets) with one weakness a team could ship: when
    the model's tool call does not parse, it runs the tool with no text instead of failing,
    so the caller gets a wrong answer rather than an error."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return "llm"

    async def process(self, message: Message) -> Message:
        try:
            return await self.inner.process(message)
        except json.JSONDecodeError:
            return Message(
                role="agent", content="", metadata={"request_id": (message.metadata or {}).get("request_id")}
            )


def lenient_tool_agent() -> Agent:
    from chaosagenkit.llm.targets import llm_agent

    return LenientToolAgent(llm_agent())
