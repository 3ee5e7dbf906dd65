"""Deliberately weak targets for the explorer's invariant tests (test-only).

Served by a real ``chaosagenkit serve`` like any agent. Each misbehaves in
one way and only for the explorer's calls (request ids ``explorer:N``), so
the steady state before and after the method, which the ``caller`` client
sends, still holds and each trial can be judged.
"""

from __future__ import annotations

import asyncio
import time

from agenkit.interfaces import Agent, Message


def _explorer_call(message: Message) -> bool:
    return str((message.metadata or {}).get("request_id", "")).startswith("explorer:")


def _echo(message: Message, request_id: object = None) -> Message:
    metadata = message.metadata or {}
    rid = metadata.get("request_id") if request_id is None else request_id
    return Message(role="agent", content=message.content, metadata={"request_id": rid})


class _Weak(Agent):
    @property
    def name(self) -> str:
        return "echo"

    async def process(self, message: Message) -> Message:
        if not _explorer_call(message):
            return _echo(message)
        return await self.misbehave(message)

    async def misbehave(self, message: Message) -> Message:
        raise NotImplementedError


class WrongIds(_Weak):
    """Answers each explorer call with the previous explorer call's request id."""

    def __init__(self) -> None:
        self.previous: object = None

    async def misbehave(self, message: Message) -> Message:
        previous, self.previous = self.previous, (message.metadata or {}).get("request_id")
        return _echo(message, previous if previous is not None else "explorer:none")


class Slow(_Weak):
    """Takes 150 ms over each explorer call (within a 400 ms RemoteAgent timeout, one at a time)."""

    async def misbehave(self, message: Message) -> Message:
        await asyncio.sleep(0.15)
        return _echo(message)


class BreaksLater(_Weak):
    """Fails every explorer call from 1.5 s after the first one on: it never recovers."""

    def __init__(self) -> None:
        self.first: float | None = None

    async def misbehave(self, message: Message) -> Message:
        self.first = self.first or time.monotonic()
        if time.monotonic() - self.first >= 1.5:
            raise RuntimeError("weak target: broken for good")
        return _echo(message)


class FailsOnce(_Weak):
    """Fails the 3rd explorer call, with no fault injected."""

    def __init__(self) -> None:
        self.seen = 0

    async def misbehave(self, message: Message) -> Message:
        self.seen += 1
        if self.seen == 3:
            raise RuntimeError("weak target: one spontaneous failure")
        return _echo(message)


class LeaksTasks(_Weak):
    """Leaves a task that never ends behind every explorer call."""

    def __init__(self) -> None:
        self.leaked: set[asyncio.Task[None]] = set()

    async def misbehave(self, message: Message) -> Message:
        self.leaked.add(asyncio.get_running_loop().create_task(asyncio.sleep(3600)))
        return _echo(message)


def wrong_ids() -> Agent:
    return WrongIds()


def slow() -> Agent:
    return Slow()


def breaks_later() -> Agent:
    return BreaksLater()


def fails_once() -> Agent:
    return FailsOnce()


def leaks_tasks() -> Agent:
    return LeaksTasks()
