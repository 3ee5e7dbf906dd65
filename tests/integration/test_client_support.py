"""Helpers for the client's integration tests (no tests here).

``chaos_host`` starts a real ``chaosagenkit serve`` through the service
part's own ``start_server``; every service fault in these tests happens
there. ``local_server`` serves an agent factory with agenkit's own
``LocalAgent`` in a child process on an ephemeral 127.0.0.1 port, only for
the deliberate fakes the chaos host cannot provoke (an agent that answers
with someone else's request_id).
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
from chaosagenkit.control_client import ControlClient
from chaosagenkit.sandbox import SANDBOX, ServerRef
from tests.polling import wait_for

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


@contextlib.contextmanager
def chaos_host(
    name: str, agent: str = "chaosagenkit.targets:echo", env: dict[str, str] | None = None
) -> Iterator[ServerRef]:
    """A real ``chaosagenkit serve`` process on ephemeral 127.0.0.1 ports, registered as ``name``.

    Started and stopped by the service part's own process management.
    """
    from chaosagenkit.service.hosts import start_server, stop_started_servers

    ref = start_server(name, agent, seed=4, env=env)
    try:
        yield ref
    finally:
        current = SANDBOX.servers.get(name)
        if current is not None and current.process is not None:
            ref = current  # restarted during the test: stop the process running now
        others = {k: v for k, v in SANDBOX.servers.items() if k != name}
        SANDBOX.servers.clear()
        SANDBOX.servers[name] = ref
        stop_started_servers()  # SIGTERM, then SIGKILL; waits; forgets only this one
        SANDBOX.servers.update(others)


def register(*refs: ServerRef) -> None:
    """Make module-scoped hosts known to this test's (fresh) sandbox."""
    for ref in refs:
        SANDBOX.servers[ref.name] = ref


def inject(ref: ServerRef, fault: dict[str, Any]) -> dict[str, Any]:
    """Add a fault on the host through its control API and put it on the fault timeline."""
    added = ControlClient(ref.control_url, ref.token).post("/faults", fault)
    SANDBOX.record_event("inject", ref.name, kind=fault["kind"], fault_id=added.get("id"))
    return added


def clear(ref: ServerRef) -> None:
    """Remove every fault on the host and put the clear on the fault timeline."""
    ControlClient(ref.control_url, ref.token).delete("/faults")
    SANDBOX.record_event("clear", ref.name)


@pytest.fixture
def clean_clients() -> Iterator[None]:
    """An empty sandbox before; every client closed and forgotten after."""
    SANDBOX.reset()
    yield
    registry.close_all_clients()
    SANDBOX.reset()


@pytest.fixture(scope="module")
def echo_host() -> Iterator[ServerRef]:
    """One chaos host serving echo, shared by a test module (module scope)."""
    with chaos_host("target") as ref:
        yield ref


@pytest.fixture
def target(echo_host: ServerRef, clean_clients: None) -> Iterator[ServerRef]:
    """The module's echo host registered as "target" in a fresh sandbox; no faults left after."""
    register(echo_host)
    yield echo_host
    clear(echo_host)
