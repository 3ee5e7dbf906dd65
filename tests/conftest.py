"""Shared test fixtures.

Every test must leave nothing behind: no child process, no listening port.
``no_leftover_processes`` (autouse) checks the first after each test.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest


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
    deadline = time.monotonic() + 10.0
    leftover = child_pids() - before
    while leftover and time.monotonic() < deadline:
        time.sleep(0.05)
        leftover = child_pids() - before
    assert not leftover, f"test left child processes running: {sorted(leftover)}"


#: Tests that build network namespaces, nftables tables or tc qdiscs: run one at a time
#: (pytest -n with --dist loadgroup keeps a group on one worker). Two at once fight over
#: the kernel's shared state (a namespace's name, the machine's conntrack and counters).
KERNEL_MODULES = (
    "tests/integration/test_kernel_network.py",
    "tests/integration/test_kernel_sigkill.py",
    "tests/integration/test_topology_netns.py",
    "tests/experiments/test_kernel_experiments.py",
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.startswith(KERNEL_MODULES) or "dns_failure" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("kernel"))
