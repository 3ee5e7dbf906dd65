"""The one way tests wait: poll a condition until it holds, fail naming what did not happen.

No fixed sleeps in tests (HELPERS.md): a test waits on a condition, with a
timeout that only bounds a failure (a passing test never waits for it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

__all__ = ["wait_for", "wait_for_async"]


def wait_for(condition: Callable[[], Any], timeout_s: float = 15.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy and return that; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what} (last: {value!r:.200})")
        time.sleep(0.02)


async def wait_for_async(
    condition: Callable[[], Any], timeout_s: float = 10.0, what: str = "condition"
) -> Any:
    """``wait_for`` inside an event loop: polls without blocking the loop the condition depends on."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what} (last: {value!r:.200})")
        await asyncio.sleep(0.005)
