"""Helpers for the client's integration tests (no tests here).

``local_server`` serves an agent factory with agenkit's own ``LocalAgent``
in a child process on an ephemeral 127.0.0.1 port: for the deliberate fakes
the chaos host cannot provoke (an agent that answers with someone else's
request_id). Everything with service faults runs on real ``chaosagenkit
serve`` processes instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chaosagenkit.client import registry
from chaosagenkit.sandbox import SANDBOX

REPO = Path(__file__).resolve().parents[2]

_SERVE = """
import asyncio, importlib, json, os, sys
from agenkit.adapters.python import LocalAgent

async def main():
    module, attribute = sys.argv[1].split(":")
    agent = getattr(importlib.import_module(module), attribute)()
    server = LocalAgent(agent, endpoint="tcp://127.0.0.1:0")
    await server.start()
    port = server._server.sockets[0].getsockname()[1]
    print(json.dumps({"endpoint": f"tcp://127.0.0.1:{port}"}), flush=True)
    parent = os.getppid()
    while os.getppid() == parent:  # exit with the test runner
        await asyncio.sleep(0.2)

asyncio.run(main())
"""


@contextlib.contextmanager
def local_server(factory: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve ``module:function`` with agenkit's LocalAgent in a child process; yield its endpoint."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVE, factory],
        stdout=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, f"local server for {factory} exited with {process.wait(10)}"
        yield json.loads(line)["endpoint"]
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def clean_clients() -> Iterator[None]:
    """An empty sandbox before; every client closed and forgotten after."""
    SANDBOX.reset()
    yield
    registry.close_all_clients()
    SANDBOX.reset()


def wait_for(condition: Callable[[], Any], timeout_s: float = 10.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what} (last: {value!r})")
        time.sleep(0.02)
