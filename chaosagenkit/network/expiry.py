"""Expiry timers, in the chaos process, for faults on a proxy API that cannot expire them itself.

Our daemon removes a toxic, or enables a disabled proxy, when its
``duration_s`` is up, even if the chaos process dies. A real Toxiproxy has
no expiry, so against it a timer here undoes the fault. Timers are keyed by
what they undo, ``(API URL, proxy, toxic name or "" for the re-enable)``: a
new fault on the same thing replaces the timer, undoing it by hand cancels
it (``cancel``, ``cancel_api``), and the run's teardown cancels every timer
still pending (``cancel_all``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Key", "cancel", "cancel_all", "cancel_api", "later", "pending"]

Key = tuple[str, str, str]

_timers: dict[Key, threading.Timer] = {}
_lock = threading.Lock()


def later(key: Key, delay_s: float, action: Callable[..., None], *args: Any) -> None:
    """Run ``action(*args)`` after ``delay_s``, replacing the timer ``key`` had."""

    def run() -> None:
        with _lock:
            if _timers.get(key) is not timer:
                return  # replaced or cancelled just as it fired
            del _timers[key]
        action(*args)

    timer = threading.Timer(delay_s, run)
    timer.daemon = True
    with _lock:
        previous = _timers.pop(key, None)
        if previous is not None:
            previous.cancel()
        _timers[key] = timer
    timer.start()


def cancel(key: Key) -> None:
    """Cancel the timer of ``key``, if any."""
    with _lock:
        timer = _timers.pop(key, None)
    if timer is not None:
        timer.cancel()


def cancel_api(url: str, proxy_name: str | None = None) -> None:
    """Cancel the timers of one API (or of one proxy there): what they would undo is gone."""
    with _lock:
        keys = [k for k in _timers if k[0] == url and (proxy_name is None or k[1] == proxy_name)]
        timers = [_timers.pop(k) for k in keys]
    for timer in timers:
        timer.cancel()


def cancel_all() -> None:
    """Forget every pending expiry (teardown removes everything anyway)."""
    with _lock:
        timers = list(_timers.values())
        _timers.clear()
    for timer in timers:
        timer.cancel()


def pending() -> list[Key]:
    """The keys of the expiry timers this process still runs."""
    with _lock:
        return sorted(_timers)
