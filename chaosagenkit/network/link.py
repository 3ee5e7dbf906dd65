"""One direction of one proxied connection: source socket -> toxic chain -> destination socket.

The link is the only place where toxics meet time and sockets. Its rules:

- No toxic: every chunk is written to the destination as it is read, in the
  same callback (no task, no timer, no copy): the fast path.
- With toxics: each chunk enters the first toxic stamped with the loop's
  monotonic time; every instruction a toxic returns goes to the next toxic
  (or the socket) when its time comes. A stage's output keeps the order the
  toxic emitted it and never leaves earlier than the output before it, so
  the stream stays a stream. One timer per link serves every stage.
- End of stream: when the source closes, the end travels down the chain
  behind the data (toxics release what they hold: nothing is dropped on the
  floor); when it reaches the end, the destination is closed. Closing one
  side of a connection thus closes the other, as in Toxiproxy.
- ``Reset`` aborts the connection with SO_LINGER 0 (TCP RST) when its time comes.
- Removing a toxic from a live link forwards everything it had scheduled at
  once, then what its ``removed`` hook releases (if it was drawn active)
  and what its ``cleanup`` hook says (whether drawn active or not, as
  Toxiproxy calls ``Cleanup``); its pending wake-ups die.
- Back-pressure: the source stops being read while the destination's write
  buffer is full, or while the toxics hold more than ``HIGH_WATER`` bytes.
"""

from __future__ import annotations

import asyncio
import heapq
import random
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from chaosagenkit.faults.toxics.base import (
    Close,
    ConnectionContext,
    Deliver,
    Instruction,
    Reset,
    Toxic,
    ToxicTally,
    Wake,
)
from chaosagenkit.faults.toxics.noop import NoopToxic

if TYPE_CHECKING:
    from chaosagenkit.network.proxy import ProxyConnection

__all__ = ["HIGH_WATER", "LOW_WATER", "Link", "LinkStats"]

HIGH_WATER = 4 * 1024 * 1024
LOW_WATER = 1024 * 1024
_NOOP = NoopToxic()


class LinkStats:
    """Bytes one direction read from its source and wrote to its destination."""

    __slots__ = ("received", "sent")

    def __init__(self) -> None:
        self.received = 0
        self.sent = 0


class _Stage:
    """One toxic on one link: its state and its scheduled output."""

    __slots__ = ("active", "finished", "last_at", "name", "queue", "state", "toxic", "wakes")

    def __init__(self, name: str, toxic: Toxic, state, active: bool) -> None:
        self.name = name
        self.toxic = toxic
        self.state = state
        self.active = active
        self.queue: deque[Instruction] = deque()
        self.wakes: list[float] = []
        self.last_at = 0.0
        self.finished = False  # the toxic emitted Close or Reset: ignore what it says next

    @property
    def behaviour(self) -> Toxic:
        return self.toxic if self.active else _NOOP


class Link:
    """Carry one direction of a connection through its toxics."""

    def __init__(
        self,
        connection: ProxyConnection,
        direction: str,
        source: asyncio.Transport,
        dest: asyncio.Transport,
        stats: LinkStats,
    ) -> None:
        self.connection = connection
        self.direction = direction
        self.source = source
        self.dest = dest
        self.stats = stats
        self.loop = asyncio.get_running_loop()
        self.stages: list[_Stage] = []
        self.ended = False  # the destination has been closed (or the connection reset)
        self.tap: Callable[[bytes], None] | None = None  # sees bytes written (HTTP request methods)
        self._fast = True
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._held_bytes = 0
        self._paused_by_dest = False
        self._paused_by_toxics = False

    # -- the data path -------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Bytes read from the source."""
        self.stats.received += len(data)
        if self._fast:
            self.dest.write(data)
            self.stats.sent += len(data)
            return
        if self.ended:
            return
        if not self.stages:
            self._sink(Deliver(0.0, data))
            return
        now = self.loop.time()
        stage = self.stages[0]
        if stage.active:
            stage.state.tally.bytes += len(data)
        self._emit(0, stage.behaviour.feed(stage.state, data, now), now)
        self._after_work()

    def source_ended(self) -> None:
        """The source closed (FIN, error or our own close)."""
        if self.ended:
            return
        if not self.stages:
            self._sink(Close(0.0))
            return
        now = self.loop.time()
        self._pass(0, Close(now), now)
        self._after_work()

    # -- toxics on a live link -------------------------------------------------------
    def add_toxic(
        self,
        name: str,
        toxic: Toxic,
        toxicity: float,
        rng: random.Random,
        tally: ToxicTally,
        context: ConnectionContext,
    ) -> None:
        """Append a toxic to the chain (Toxiproxy adds at the end)."""
        if self.ended:
            return
        active = toxic.per_frame or toxicity >= 1.0 or rng.random() < toxicity
        state = toxic.new_state(rng, context, tally, toxicity if toxic.per_frame else 1.0)
        if active:
            tally.connections += 1
        stage = _Stage(name, toxic, state, active)
        self.stages.append(stage)
        self.refresh()
        now = self.loop.time()
        self._emit(len(self.stages) - 1, stage.behaviour.start(stage.state, now), now)
        self._after_work()

    def update_toxic(self, name: str, toxic: Toxic, toxicity: float, toxicity_changed: bool) -> None:
        """New attributes (same type) for a toxic on this link; state carries over."""
        index = self._index(name)
        if index is None or self.ended:
            return
        stage = self.stages[index]
        now = self.loop.time()
        was_active = stage.active
        if toxic.per_frame:
            stage.state.toxicity = toxicity
        elif toxicity_changed:
            stage.active = toxicity >= 1.0 or stage.state.rng.random() < toxicity
            if was_active and not stage.active:
                self._emit(index, stage.toxic.removed(stage.state, now), now)
        stage.toxic = toxic
        if stage.active and not was_active:
            stage.state.tally.connections += 1
            self._emit(index, toxic.start(stage.state, now), now)  # it joins the connection now
        elif stage.active:
            self._emit(index, toxic.updated(stage.state, now), now)
        self._after_work()

    def remove_toxic(self, name: str) -> None:
        """Take a toxic out: forward what it scheduled, then what it releases."""
        index = self._index(name)
        if index is None:
            return
        stage = self.stages.pop(index)
        self.refresh()
        if self.ended:
            return
        now = self.loop.time()
        for instruction in stage.queue:
            if isinstance(instruction, Deliver):
                self._held_bytes -= len(instruction.data)
        forwarded = [
            *stage.queue,
            *stage.behaviour.removed(stage.state, now),
            *stage.toxic.cleanup(stage.state, now),
        ]
        stage.queue.clear()
        for instruction in forwarded:
            if self.ended:
                break
            if not isinstance(instruction, Wake):
                self._pass(index, _retimed(instruction, now), now)
        self._after_work()

    def refresh(self) -> None:
        """Recompute whether the fast path applies."""
        self._fast = not self.stages and self.tap is None and not self.ended

    # -- flow control ------------------------------------------------------------------
    def pause_source(self) -> None:
        """The destination's write buffer is full."""
        self._paused_by_dest = True
        self._update_reading()

    def resume_source(self) -> None:
        self._paused_by_dest = False
        self._update_reading()

    def close(self) -> None:
        """Forget everything scheduled (the connection is going away)."""
        self.ended = True
        self._fast = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for stage in self.stages:
            stage.queue.clear()
            stage.wakes.clear()
        self._held_bytes = 0

    # -- the engine --------------------------------------------------------------------
    def _emit(self, index: int, instructions: list[Instruction], now: float) -> None:
        """Route what stage ``index`` returned: on now, or into its queue for later."""
        stage = self.stages[index]
        for instruction in instructions:
            if self.ended or stage.finished:
                return
            if isinstance(instruction, Wake):
                heapq.heappush(stage.wakes, instruction.at)
                continue
            if not isinstance(instruction, Deliver):
                stage.finished = True
            at = instruction.at
            if stage.queue or at > now:
                if at < stage.last_at:  # never before what the toxic emitted earlier
                    at = stage.last_at
                    instruction = _retimed(instruction, at)
                stage.last_at = at
                stage.queue.append(instruction)
                if isinstance(instruction, Deliver):
                    self._held_bytes += len(instruction.data)
            else:
                stage.last_at = max(stage.last_at, at)
                self._pass(index + 1, instruction, now)

    def _pass(self, index: int, instruction: Instruction, now: float) -> None:
        """Hand an instruction to stage ``index`` (or the socket after the last stage)."""
        if index >= len(self.stages) or isinstance(instruction, Reset):
            self._sink(instruction)
            return
        stage = self.stages[index]
        if isinstance(instruction, Deliver):
            if stage.active:
                stage.state.tally.bytes += len(instruction.data)
            produced = stage.behaviour.feed(stage.state, instruction.data, instruction.at)
        else:
            produced = stage.behaviour.end(stage.state, instruction.at)
        self._emit(index, produced, now)

    def _sink(self, instruction: Instruction) -> None:
        if self.ended:
            return
        if isinstance(instruction, Deliver):
            data = instruction.data
            if data:
                if self.tap is not None:
                    self.tap(data)
                self.dest.write(data)
                self.stats.sent += len(data)
        elif isinstance(instruction, Close):
            self.close()
            self.connection.link_finished(self)
        elif isinstance(instruction, Reset):
            self.connection.reset()

    def _on_timer(self) -> None:
        self._timer = None
        if self.ended:
            return
        now = self.loop.time()
        for index in range(len(self.stages)):
            if self.ended:
                return
            stage = self.stages[index]
            while stage.wakes and stage.wakes[0] <= now and not self.ended:
                at = heapq.heappop(stage.wakes)
                self._emit(index, stage.behaviour.tick(stage.state, at), now)
            while stage.queue and stage.queue[0].at <= now and not self.ended:
                instruction = stage.queue.popleft()
                if isinstance(instruction, Deliver):
                    self._held_bytes -= len(instruction.data)
                self._pass(index + 1, instruction, now)
        self._after_work()

    def _after_work(self) -> None:
        """Arm the timer for the next due item and apply toxic back-pressure."""
        if self.ended:
            return
        due = None
        for stage in self.stages:
            if stage.queue:
                at = stage.queue[0].at
                due = at if due is None or at < due else due
            if stage.wakes:
                at = stage.wakes[0]
                due = at if due is None or at < due else due
        if due is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        elif self._timer is None or due != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = due
            self._timer = self.loop.call_at(due, self._on_timer)
        paused = self._held_bytes > HIGH_WATER or (self._paused_by_toxics and self._held_bytes > LOW_WATER)
        if paused != self._paused_by_toxics:
            self._paused_by_toxics = paused
            self._update_reading()

    def _update_reading(self) -> None:
        if self.source.is_closing():
            return
        if self._paused_by_dest or self._paused_by_toxics:
            self.source.pause_reading()
        else:
            self.source.resume_reading()

    def _index(self, name: str) -> int | None:
        for index, stage in enumerate(self.stages):
            if stage.name == name:
                return index
        return None


def _retimed(instruction: Instruction, at: float) -> Instruction:
    if isinstance(instruction, Deliver):
        return Deliver(at, instruction.data)
    return type(instruction)(at)
