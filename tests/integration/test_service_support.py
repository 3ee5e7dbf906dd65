"""Helpers for the chaos host's integration tests (no tests here).

Every host here is a real ``chaosagenkit serve`` child process started with
``chaosagenkit.service.hosts``; every call goes through a real agenkit
``RemoteAgent``. Waiting is done on conditions with a deadline, never with
fixed sleeps.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agenkit.interfaces import Agent, Message

from tests.polling import wait_for

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    """One request as the caller saw it."""

    request_id: str
    content: str
    reply: Message | None
    error: BaseException | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def matches(self) -> bool:
        """The answer belongs to this request (echo target)."""
        assert self.reply is not None
        return (
            self.reply.content == self.content
            and (self.reply.metadata or {}).get("request_id") == self.request_id
        )


async def call_async(endpoint: str, n: int = 1, *, timeout_ms: int = 10_000, tag: str = "r") -> list[Outcome]:
    """Send ``n`` requests one after another on ONE RemoteAgent; record each outcome."""
    from agenkit.adapters.python import RemoteAgent

    agent = RemoteAgent("echo", endpoint=endpoint, timeout_ms=timeout_ms)
    outcomes = []
    try:
        for i in range(n):
            request_id, content = f"{tag}{i}", f"content-{tag}{i}"
            started = time.perf_counter()
            try:
                reply = await agent.process(
                    Message(role="user", content=content, metadata={"request_id": request_id})
                )
                outcomes.append(Outcome(request_id, content, reply, None, time.perf_counter() - started))
            except Exception as e:  # the outcome IS the observation
                outcomes.append(Outcome(request_id, content, None, e, time.perf_counter() - started))
    finally:
        try:
            await agent.close()
        except Exception:
            pass
    return outcomes


def call(endpoint: str, n: int = 1, **kwargs: Any) -> list[Outcome]:
    return asyncio.run(call_async(endpoint, n, **kwargs))


def raw_request(
    method: str, url: str, body: bytes | None = None, token: str | None = None
) -> tuple[int, Any]:
    """One HTTP request with exactly these bytes; return (status, decoded JSON or None)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    return status, (json.loads(raw) if raw.strip() else None)


def proc_status(pid: int, key: str) -> int:
    """A number from /proc/PID/status (VmRSS is in kB; Threads is a count)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (from /proc/PID/stat)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def retrying_echo() -> Agent:
    """A target that is itself wrapped in agenkit middleware (for GET /middleware)."""
    from agenkit.middleware import RetryConfig, RetryDecorator

    from chaosagenkit.targets import EchoAgent

    return RetryDecorator(EchoAgent(), RetryConfig(max_retries=2, initial_delay=0.01))


def not_an_agent() -> str:
    """A factory that returns something that is not an agenkit Agent."""
    return "I am a string"
