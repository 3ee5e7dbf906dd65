"""Keep a daemon's stderr readable when the same error repeats thousands of times a second.

When a process runs out of file descriptors, asyncio logs every failed
``accept()`` with its traceback and retries at once: the audit saw a host
write 62 MB of stderr in 23 s. ``RepeatLimiter`` lets each distinct message
(logger, level, first line) through at most once per interval and says, on
the next one it lets through, how many it held back. Both daemons put it on
their stderr handler.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

__all__ = ["RepeatLimiter"]


class RepeatLimiter(logging.Filter):
    """A logging filter: each distinct message at most once per ``interval_s`` seconds."""

    def __init__(self, interval_s: float = 10.0, max_keys: int = 1024) -> None:
        super().__init__()
        self._interval_s = interval_s
        self._max_keys = max_keys
        self._seen: OrderedDict[tuple[str, int, str], list] = OrderedDict()  # key -> [last shown, held back]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        key = (record.name, record.levelno, message.partition("\n")[0])
        now = time.monotonic()
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self._interval_s:
            entry[1] += 1
            return False
        if entry is not None and entry[1]:
            record.msg = (
                f"{message}\n(the same message {entry[1]} more time(s) in the last {self._interval_s:g} s)"
            )
            record.args = ()
        self._seen[key] = [now, 0]
        self._seen.move_to_end(key)
        while len(self._seen) > self._max_keys:
            self._seen.popitem(last=False)
        return True
