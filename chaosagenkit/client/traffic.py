"""Load generation for a client: bounded batches and steady background traffic.

Two shapes of background traffic (``Traffic``), chosen by ``rate_per_s``:

- open loop (``rate_per_s > 0``): requests are STARTED on a fixed schedule
  (``rate_per_s``), whatever the system does, with at most ``concurrency``
  in flight. A scheduled request that finds ``concurrency`` requests still
  in flight is not sent and is counted as ``skipped`` (so a slow system is
  visible as skipped load instead of silently lowering the offered rate).
  Late ticks are caught up, never dropped, except by that bound.
- closed loop (``rate_per_s == 0``): ``concurrency`` workers each send the
  next request as soon as the previous one finishes.

``duration_s`` is a safety bound: traffic stops by itself when it ends,
even if nobody calls ``stop_traffic``. Stopping waits for in-flight
requests up to a drain bound, then cancels them (cancelled requests are
not recorded as outcomes).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from chaosagenkit.client.recorder import Window

__all__ = ["Traffic", "send_batch"]


async def send_batch(
    client: Any, count: int, concurrency: int, distinct: int, interval_ms: float, remember: bool = False
) -> Window:
    """Send ``count`` requests with ``concurrency`` workers; return the batch's outcomes.

    Raises the client's ``AnswerCheckError`` if its answer check ever raised.
    """
    client.raise_if_check_failed()
    source = client.new_source()
    start = len(client.recorder)
    attempts = client.attempt_log.logged if client.attempt_log is not None else 0
    turns = iter(range(count))  # shared by the workers: each takes the next turn
    workers = min(concurrency, count)
    await asyncio.gather(
        *(client.run_requests(turns, source, distinct, interval_ms / 1000.0) for _ in range(workers))
    )
    client.raise_if_check_failed()
    if remember:  # send_requests' batches are what ``last_batch`` probes look at
        client.last_batch = (source, start)
        client.last_batch_attempts = attempts
        if client.first_batch is None:
            client.first_batch = client.last_batch
    return client.recorder.select(source=source, start=start)


class Traffic:
    """Steady load on one client, running on the client runtime's loop until stopped."""

    def __init__(
        self, client: Any, rate_per_s: float, duration_s: float, concurrency: int, distinct: int
    ) -> None:
        self.client = client
        self.rate_per_s = rate_per_s
        self.duration_s = duration_s
        self.concurrency = concurrency
        self.distinct = distinct
        self.source = client.new_source()
        self.first_row = len(client.recorder)
        self.skipped = 0
        self.started = time.time()
        self.ended_by: str | None = None  # "duration" | "stop"
        self._stopping = False
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def mode(self) -> str:
        return "open" if self.rate_per_s > 0 else "closed"

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Begin on the current (runtime) loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"traffic:{self.client.name}")

    async def stop(self, drain_s: float) -> None:
        """Stop scheduling; wait up to ``drain_s`` for in-flight requests, then cancel them."""
        if self.ended_by is None:
            self.ended_by = "stop"
        self._stopping = True
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), drain_s)
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def summary(self) -> dict[str, Any]:
        """The traffic's outcomes summarised, with how it was driven."""
        summary = self.client.recorder.select(source=self.source, start=self.first_row).summary()
        summary.update(
            mode=self.mode,
            rate_per_s=self.rate_per_s,
            concurrency=self.concurrency,
            skipped=self.skipped,
            running=self.running,
            ended_by=self.ended_by,
        )
        return summary

    async def _run(self) -> None:
        try:
            if self.rate_per_s > 0:
                await self._open_loop()
            else:
                await asyncio.gather(*(self._closed_worker() for _ in range(self.concurrency)))
            if self.ended_by is None:
                self.ended_by = "duration"
            while self._in_flight:  # let what was sent finish (stop() bounds this wait)
                await asyncio.wait(set(self._in_flight))
        finally:
            for task in self._in_flight:
                task.cancel()
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    def _deadline_passed(self, loop: asyncio.AbstractEventLoop, deadline: float) -> bool:
        return self._stopping or loop.time() >= deadline or self.client.check_error is not None

    async def _closed_worker(self) -> None:
        await self.client.run_requests(self._until_stopped(), self.source, self.distinct)

    def _until_stopped(self) -> Any:
        """Turns for a closed-loop worker: one per request until stopped or the duration ends."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.duration_s
        while not self._deadline_passed(loop, deadline):
            yield None

    async def _open_loop(self) -> None:
        loop = asyncio.get_running_loop()
        begin = loop.time()
        deadline = begin + self.duration_s
        scheduled = 0
        while not self._deadline_passed(loop, deadline) and self.client.check_error is None:
            due = int((loop.time() - begin) * self.rate_per_s) + 1 - scheduled
            for _ in range(due):
                scheduled += 1
                if len(self._in_flight) >= self.concurrency:
                    self.skipped += 1
                    continue
                task = loop.create_task(self.client.run_requests((None,), self.source, self.distinct))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
                task.add_done_callback(_retrieve)
            next_at = begin + scheduled / self.rate_per_s
            await asyncio.sleep(max(0.0, min(next_at, deadline) - loop.time()))


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a finished request task's exception as seen (run_requests records failures itself)."""
    if not task.cancelled():
        task.exception()
