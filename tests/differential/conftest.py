"""Fixtures of the differential tests: our proxy daemon and the real Toxiproxy, side by side."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaosagenkit.network import daemons
from tests.differential.toxiproxy_support import real_toxiproxy


@pytest.fixture(scope="module")
def theirs() -> Iterator[str]:
    """API URL of a real toxiproxy-server (the module is skipped without the binary)."""
    with real_toxiproxy() as url:
        yield url


@pytest.fixture(scope="module")
def ours(theirs) -> Iterator[str]:
    """API URL of a ``chaosagenkit proxy`` daemon (started after Toxiproxy is known to be there)."""
    process, ready = daemons.start_daemon()
    try:
        yield ready["api"]
    finally:
        daemons.stop_daemon(process)
