"""Shared test fixtures.

Every test must leave nothing behind: no child process, no listening port.
``no_leftover_processes`` (autouse) checks the first after each test.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.polling import wait_for

# A test run started in the background by a non-interactive shell inherits SIGINT ignored, and so
# would every child a test starts (an ignored signal stays ignored across exec): the Ctrl-C tests
# need Python's default, in this process and in the children.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def child_pids(parent: int | None = None) -> set[int]:
    """PIDs of live (non-zombie) processes whose parent is ``parent`` (default: this one)."""
    parent = os.getpid() if parent is None else parent
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces, so split after ')'
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == parent and state != "Z":
            found.add(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def no_leftover_processes():
    """Fail a test that leaves a child process of the test runner alive."""
    before = child_pids()
    yield
    try:
        wait_for(lambda: not child_pids() - before, timeout_s=10.0, what="the test's child processes to exit")
    except AssertionError:
        pytest.fail(f"test left child processes running: {sorted(child_pids() - before)}")
