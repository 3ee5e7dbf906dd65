"""Shared test fixtures.

Every test must leave nothing behind: no child process, no listening port.
``no_leftover_processes`` (autouse) checks the first after each test, and
``no_leftover_processes_after_the_module`` after each module's fixtures.
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


@pytest.fixture(scope="module", autouse=True)
def no_leftover_processes_after_the_module():
    """Fail a module whose fixtures leave a child process alive (the check above sees a test's own)."""
    before = child_pids()
    yield
    try:
        wait_for(
            lambda: not child_pids() - before, timeout_s=10.0, what="the module's child processes to exit"
        )
    except AssertionError:
        pytest.fail(f"the module left child processes running: {sorted(child_pids() - before)}")


@pytest.fixture(autouse=True)
def _one_kernel_test_at_a_time(request, tmp_path_factory):
    """Tests marked ``xdist_group("kernel")`` build network namespaces and nftables tables and
    check that none is left: under ``pytest -n`` they take a machine-wide lock, so two never
    overlap whichever worker runs them (the group alone did not keep them on one worker)."""
    marker = request.node.get_closest_marker("xdist_group")
    if marker is None or "kernel" not in marker.args:
        yield
        return
    import fcntl

    # in pytest's own temporary root (shared by the workers of one run, cleaned by pytest)
    with open(tmp_path_factory.getbasetemp().parent / "kernel.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
