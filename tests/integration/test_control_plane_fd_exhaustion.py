"""A daemon out of file descriptors does not flood its stderr.

The audit saw a host write 62 MB of stderr in 23 s once its descriptors
ran out: asyncio logs every failed ``accept()`` with a traceback and tries
again at once. Here both daemons run with a (hard) limit of 64 descriptors
and get 150 connections on their control port: the accept error must show
(the situation is real), and must not repeat by the thousand (without the
limiter it repeats about a thousand times a second).
"""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
import time

import pytest

from tests.polling import wait_for

pytestmark = [pytest.mark.chaos]

ACCEPT_FAILED = "socket.accept() out of system resource"
#: How long the flood is given to show, once the first error is out (it needs milliseconds).
WATCH_S = 2.0


def limit_descriptors() -> None:
    # The hard limit too: a daemon raises its soft limit to the hard one at start.
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


@pytest.mark.parametrize(
    "command",
    [
        ["serve"],
        ["proxy", "--listen", "127.0.0.1:0", "--loop", "asyncio"],  # uvloop handles EMFILE quietly itself
    ],
    ids=["host", "proxy"],
)
def test_running_out_of_descriptors_logs_the_accept_error_once_not_a_flood(command, tmp_path):
    stderr_path = tmp_path / "stderr"
    with stderr_path.open("wb") as stderr:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "chaosagenkit", *command, "--exit-with-parent"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            preexec_fn=limit_descriptors,
        )
    clients: list[socket.socket] = []
    try:
        ready = json.loads(daemon.stdout.readline())
        port = int((ready.get("control") or ready["api"]).rsplit(":", 1)[1])
        for _ in range(150):
            try:
                clients.append(socket.create_connection(("127.0.0.1", port), timeout=1))
            except OSError:
                break  # the listen backlog is full too: enough pressure

        def errors() -> int:
            return stderr_path.read_text(errors="replace").count(ACCEPT_FAILED)

        wait_for(errors, timeout_s=30, what="the daemon to run out of descriptors")
        watch_until = time.monotonic() + WATCH_S
        while time.monotonic() < watch_until:  # a window in which a flood would show: it must not
            assert errors() <= 2, f"{errors()} accept errors logged: the flood is back"
            time.sleep(0.05)
        assert stderr_path.stat().st_size < 20_000
    finally:
        for client in clients:
            client.close()
        daemon.terminate()
        daemon.wait(10)
        daemon.stdout.close()
