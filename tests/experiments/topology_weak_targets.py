"""Leaves that break after the steady state, for weakened topology runs (test-only).

Served by a real ``chaosagenkit serve`` like any agent. They stand in for a
leaf that goes wrong during an experiment in a way no fault of ours injects
at run time: one that starts answering wrongly, slowly, or never recovers.
Configured by the experiment's own worker knob, ``CHAOSAGENKIT_WORKER``
(JSON): ``after`` healthy requests come first (default 20: the steady
state's batch); with ``state`` (a file) the count survives a restart.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from agenkit.interfaces import Agent, Message


class EchoThen(Agent):
    """Echo ``after`` requests, then fail, answer wrongly or slowly."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        settings = json.loads(os.environ.get("CHAOSAGENKIT_WORKER") or "{}")
        self.after = int(settings.get("after", 20))
        self.state = str(settings.get("state", ""))
        self.seen = 0

    @property
    def name(self) -> str:
        return f"echo_then_{self.mode}"

    async def process(self, message: Message) -> Message:
        broken = self._count() > self.after
        request_id = (message.metadata or {}).get("request_id")
        if broken and self.mode == "fail":
            raise RuntimeError("weak target: broken after the steady state")
        if broken and self.mode == "slow":
            await asyncio.sleep(5.0)
        content = f"{message.content} (wrong)" if broken and self.mode == "wrong" else message.content
        return Message(role="agent", content=content, metadata={"request_id": request_id})

    def _count(self) -> int:
        if not self.state:
            self.seen += 1
            return self.seen
        path = Path(self.state)
        seen = int(path.read_text() or 0) + 1 if path.exists() else 1
        path.write_text(str(seen))
        return seen


def echo_then_fail() -> Agent:
    return EchoThen("fail")


def echo_then_wrong() -> Agent:
    return EchoThen("wrong")


def echo_then_slow() -> Agent:
    return EchoThen("slow")
