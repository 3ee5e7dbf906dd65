"""The leftover-port check fails on a listener of ours and only on ours."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.polling import wait_for
from tests.ports import assert_released, listening_owners


def test_a_port_this_process_listens_on_is_not_released_and_a_closed_one_is():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    with pytest.raises(AssertionError, match=rf"127\.0\.0\.1:{port} is still listened on by pid"):
        assert_released([("127.0.0.1", port)])
    listener.close()
    assert_released([("127.0.0.1", port)])


def test_a_child_s_listener_is_ours_too():
    child = subprocess.Popen(
        [sys.executable, "-c", "import socket,sys; s=socket.create_server(('127.0.0.1',0)); "
         "print(s.getsockname()[1], flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        port = int(child.stdout.readline())
        wait_for(lambda: child.pid in listening_owners(port), what="the child's listener")
        with pytest.raises(AssertionError, match="still listened on"):
            assert_released([("127.0.0.1", port)])
    finally:
        child.stdin.close()
        child.wait(timeout=10)
        child.stdout.close()
    assert_released([("127.0.0.1", port)])
