"""The real Toxiproxy server for differential tests: find the binary, start it, stop it.

The binary comes from ``$TOXIPROXY_SERVER`` or ``toxiproxy-server`` on PATH
(``make test``, which CI runs, points the variable at ../shared/toxiproxy/bin/toxiproxy-server
when that exists); without it the tests that need it skip with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

__all__ = ["free_port", "real_toxiproxy", "start_toxiproxy", "stop_toxiproxy", "toxiproxy_binary"]

START_TIMEOUT_S = 10.0


def toxiproxy_binary() -> str | None:
    """Path of toxiproxy-server from $TOXIPROXY_SERVER or PATH, or None."""
    configured = os.environ.get("TOXIPROXY_SERVER")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("toxiproxy-server")


def require_toxiproxy() -> str:
    """The binary, or skip the test saying why (printed with -ra)."""
    binary = toxiproxy_binary()
    if binary is None:
        where = os.environ.get("TOXIPROXY_SERVER")
        reason = (
            f"TOXIPROXY_SERVER={where} is not an executable file"
            if where
            else "the real Toxiproxy is absent: set TOXIPROXY_SERVER or put toxiproxy-server on PATH"
        )
        pytest.skip(reason)
    return binary


def free_port() -> int:
    """A port free a moment ago (callers retry when another process takes it first)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_toxiproxy(binary: str, attempts: int = 5) -> tuple[subprocess.Popen[bytes], str]:
    """Start toxiproxy-server on a free loopback port; return the process and its API URL.

    The port is found free and then handed to the server, so another process
    can take it in between: the server then exits, and we retry on another.
    """
    for _ in range(attempts):
        port = free_port()
        process = subprocess.Popen(
            [binary, "-host", "127.0.0.1", "-port", str(port)],
            env={**os.environ, "LOG_LEVEL": "error"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        if _wait_ready(process, url):
            return process, url
        stop_toxiproxy(process)
    raise RuntimeError(f"toxiproxy-server did not start after {attempts} attempts")


def stop_toxiproxy(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def real_toxiproxy() -> Iterator[str]:
    """A running toxiproxy-server's API URL (the test is skipped without the binary)."""
    process, url = start_toxiproxy(require_toxiproxy())
    try:
        yield url
    finally:
        stop_toxiproxy(process)


def _wait_ready(process: subprocess.Popen, url: str) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False  # the port was taken: try another
        try:
            if httpx.get(f"{url}/version", timeout=1.0).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    return False
