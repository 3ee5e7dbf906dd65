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
- Memory is bounded by design (the link owns its source's reading, and
  nothing else resumes it): the source stops being read while the
  destination's write buffer is full (what falls due meanwhile waits in the
  toxics' queues, never in the socket's buffer), while this link holds more
  than ``LINK_HIGH_WATER`` bytes (until it is back under ``LINK_LOW_WATER``),
  and, while every link of the process together holds more than
  ``TOTAL_HIGH_WATER`` (``BufferBudget``), as long as it holds more than
  ``PRESSURE_FLOOR``. What a link holds: the data in its toxics' queues, each
  instruction counted ``ITEM_OVERHEAD`` bytes more (a million one-byte
  slices are not one megabyte of memory), plus what the toxics keep in their
  state (``Toxic.held_bytes``). Before stopping for memory, the link asks its
  toxics to let go of what only more input would release (``Toxic.shed``:
  an incomplete message a frame toxic assembles), so a pause never waits on
  itself. A link can exceed its limits by one read of the socket.
- Bounded work per event-loop turn: a link moves at most ``MAX_STEPS``
  instructions per callback; the rest waits in the queues for the next turn,
  so a toxic that multiplies writes (a one-byte slicer) cannot starve the
  API or other connections.
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

__all__ = [
    "ITEM_OVERHEAD",
    "LINK_HIGH_WATER",
    "LINK_LOW_WATER",
    "MAX_STEPS",
    "PRESSURE_FLOOR",
    "PROCESS_BUDGET",
    "TOTAL_HIGH_WATER",
    "TOTAL_LOW_WATER",
    "BufferBudget",
    "Link",
    "LinkStats",
]

MIB = 1024 * 1024
LINK_HIGH_WATER = 4 * MIB
LINK_LOW_WATER = 1 * MIB
TOTAL_HIGH_WATER = 64 * MIB
TOTAL_LOW_WATER = 48 * MIB
PRESSURE_FLOOR = 64 * 1024
#: What one queued instruction costs beyond its data (the objects around it), in bytes.
ITEM_OVERHEAD = 128
#: Instructions a link moves per event-loop callback before it yields.
MAX_STEPS = 1024
_NOOP = NoopToxic()


class BufferBudget:
    """What every link of one process holds, and whether that is too much.

    Over ``high`` bytes the budget is under pressure until it falls below
    ``low``; under pressure, links holding more than ``PRESSURE_FLOOR``
    stop reading (a link carrying small messages keeps flowing). When the
    pressure ends, the links it stopped are told to look again.
    """

    def __init__(self, high: int = TOTAL_HIGH_WATER, low: int = TOTAL_LOW_WATER) -> None:
        self.high = high
        self.low = low
        self.held = 0
        self.pressure = False
        self._squeezed: set[Link] = set()

    def change(self, delta: int) -> None:
        self.held += delta
        if self.pressure:
            if self.held < self.low:
                self.pressure = False
                links, self._squeezed = self._squeezed, set()
                for link in links:
                    link.update_reading()
        elif self.held > self.high:
            self.pressure = True

    def squeeze(self, link: Link, squeezed: bool) -> None:
        if squeezed:
            self._squeezed.add(link)
        else:
            self._squeezed.discard(link)


#: The budget of the process: every proxy of a daemon shares it.
PROCESS_BUDGET = BufferBudget()


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
        budget: BufferBudget = PROCESS_BUDGET,
    ) -> None:
        self.connection = connection
        self.direction = direction
        self.source = source
        self.dest = dest
        self.stats = stats
        self.budget = budget
        self.loop = asyncio.get_running_loop()
        self.stages: list[_Stage] = []
        self.ended = False  # the destination has been closed (or the connection reset)
        self.tap: Callable[[bytes], None] | None = None  # sees bytes written (HTTP request methods)
        self._fast = True
        self._limits: str | None = None  # the destination's write buffer limits we set
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._held_bytes = 0  # in the stages' queues, with ITEM_OVERHEAD per instruction
        self._accounted = 0  # what the budget was last told this link holds
        self._over = False  # above LINK_HIGH_WATER, not yet back under LINK_LOW_WATER
        self._paused_by_dest = False
        self._reading: bool | None = None  # what the source was last told; None: unknown
        self._updating = False
        self._update_again = False
        self._steps = 0  # instructions moved in the current callback

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
        self._steps = 0
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
        self._steps = 0
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
        self._steps = 0
        self._emit(len(self.stages) - 1, stage.behaviour.start(stage.state, now), now)
        self._after_work()

    def update_toxic(self, name: str, toxic: Toxic, toxicity: float, toxicity_changed: bool) -> None:
        """New attributes (same type) for a toxic on this link; state carries over."""
        index = self._index(name)
        if index is None or self.ended:
            return
        stage = self.stages[index]
        now = self.loop.time()
        self._steps = 0
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
        self._steps = 0
        for instruction in stage.queue:
            self._held_bytes -= _cost(instruction)
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
        """Recompute whether the fast path applies.

        Off the fast path the destination counts as full as soon as its write
        buffer holds anything: what falls due then waits in the toxics'
        queues, where the limits count it, instead of piling up in the
        socket's buffer (as one object per piece: a one-byte slicer made
        that buffer thirty times larger than its data).
        """
        fast = not self.stages and self.tap is None and not self.ended
        limits_change = fast != self._fast or self._limits is None
        self._fast = fast
        if limits_change and not self.ended and not self.dest.is_closing():
            self._limits = "default" if fast else "empty"
            if fast:
                self.dest.set_write_buffer_limits()
            else:
                self.dest.set_write_buffer_limits(high=0)

    # -- flow control ------------------------------------------------------------------
    def pause_source(self) -> None:
        """The destination's write buffer is full: stop reading, write nothing more."""
        self._paused_by_dest = True
        self.update_reading()

    def resume_source(self) -> None:
        """The destination drained: what fell due meanwhile goes on, reading may resume."""
        self._paused_by_dest = False
        self._after_work()
        self.update_reading()

    def start_reading(self) -> None:
        """Apply the reading state from scratch (the connection is linked: until now
        the proxy kept the source paused, or the event loop did not let it)."""
        self._reading = None
        self.update_reading()

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
        self.budget.squeeze(self, False)
        if self._accounted:
            self.budget.change(-self._accounted)
            self._accounted = 0

    def held(self) -> int:
        """Bytes this link holds: its queues (with their overhead) and its toxics' states."""
        total = self._held_bytes
        for stage in self.stages:
            if stage.active:
                total += stage.toxic.held_bytes(stage.state)
        return total

    def update_reading(self) -> None:
        """Pause or resume the source according to the destination and the memory held."""
        if self._updating:
            self._update_again = True  # a change made while deciding: decide again after
            return
        self._updating = True
        try:
            self._update_again = True
            while self._update_again:
                self._update_again = False
                self._decide_reading()
        finally:
            self._updating = False

    def _decide_reading(self) -> None:
        if self.ended:
            return
        held = self._account()
        over = held > LINK_HIGH_WATER or (self._over and held > LINK_LOW_WATER)
        squeezed = self.budget.pressure and held > PRESSURE_FLOOR
        if (over or squeezed) and self._shed():
            if self.ended:
                return
            held = self._account()
            over = held > LINK_HIGH_WATER or (self._over and held > LINK_LOW_WATER)
            squeezed = self.budget.pressure and held > PRESSURE_FLOOR
        self._over = over
        self.budget.squeeze(self, squeezed)
        reading = not (self._paused_by_dest or over or squeezed)
        if reading == self._reading or self.source.is_closing():
            return
        self._reading = reading
        if reading:
            self.source.resume_reading()
        else:
            self.source.pause_reading()

    def _account(self) -> int:
        """What this link holds now; the budget learns the difference."""
        held = self.held()
        if held != self._accounted:
            delta, self._accounted = held - self._accounted, held
            self.budget.change(delta)
        return held

    def _shed(self) -> bool:
        """Ask the toxics to let go of what only more input would release; True if any did."""
        now = self.loop.time()
        shed = False
        for index, stage in enumerate(self.stages):
            if self.ended:
                break
            if stage.active and stage.toxic.held_bytes(stage.state):
                produced = stage.toxic.shed(stage.state, now)
                if produced:
                    shed = True
                    self._emit(index, produced, now)
        if shed:
            self._arm_timer()
        return shed

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
            if stage.queue or at > now or self._blocked(index, instruction, now):
                if at < stage.last_at:  # never before what the toxic emitted earlier
                    at = stage.last_at
                    instruction = _retimed(instruction, at)
                stage.last_at = at
                stage.queue.append(instruction)
                self._held_bytes += _cost(instruction)
            else:
                stage.last_at = max(stage.last_at, at)
                self._pass(index + 1, instruction, now)

    def _blocked(self, index: int, instruction: Instruction, now: float) -> bool:
        """Must ``instruction``, due now from stage ``index``, wait in its queue?

        It waits when this callback has done its share of work, or when it is
        data and nothing can move past the next stage (``_stuck``).
        """
        if self._steps >= MAX_STEPS:
            return True
        return isinstance(instruction, Deliver) and self._stuck(index + 1, now)

    def _stuck(self, index: int, now: float) -> bool:
        """Can data not move past stage ``index`` (``len(stages)``: the socket) now?

        True while the destination is full and every stage from ``index`` on
        has data due at its head: new data would only wait behind it. A
        stuck stage is not fed and not woken (its output would only queue
        up: a slicer would cut its input into ever more pieces), so what a
        link holds cannot grow while its peer does not read.
        """
        if not self._paused_by_dest:
            return False
        for stage in self.stages[index:]:
            queue = stage.queue
            if not queue or queue[0].at > now or not isinstance(queue[0], Deliver):
                return False
        return True

    def _pass(self, index: int, instruction: Instruction, now: float) -> None:
        """Hand an instruction to stage ``index`` (or the socket after the last stage)."""
        self._steps += 1
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
        self._steps = 0
        # last stage first: what drains there makes room for the stages before it
        for index in reversed(range(len(self.stages))):
            if self.ended:
                return
            stage = self.stages[index]
            while stage.queue and stage.queue[0].at <= now and not self.ended and self._steps < MAX_STEPS:
                instruction = stage.queue[0]
                if isinstance(instruction, Deliver) and self._stuck(index + 1, now):
                    break  # resume_source() goes on
                stage.queue.popleft()
                self._held_bytes -= _cost(instruction)
                self._pass(index + 1, instruction, now)
            if self._stuck(index, now):
                continue
            while stage.wakes and stage.wakes[0] <= now and not self.ended and self._steps < MAX_STEPS:
                at = heapq.heappop(stage.wakes)
                self._steps += 1
                self._emit(index, stage.behaviour.tick(stage.state, at), now)
        self._after_work()

    def _after_work(self) -> None:
        """Arm the timer for the next due item and apply the memory limits."""
        if self.ended:
            return
        self._arm_timer()
        self.update_reading()

    def _arm_timer(self) -> None:
        """One timer for the earliest queued instruction or wake-up that can act when due."""
        due = None
        now = self.loop.time() if self._paused_by_dest else 0.0
        for index, stage in enumerate(self.stages):
            if stage.queue:
                head = stage.queue[0]
                waits = isinstance(head, Deliver) and head.at <= now and self._stuck(index + 1, now)
                if not waits:
                    due = head.at if due is None or head.at < due else due
            if stage.wakes and not self._stuck(index, now):
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

    def _index(self, name: str) -> int | None:
        for index, stage in enumerate(self.stages):
            if stage.name == name:
                return index
        return None


def _cost(instruction: Instruction) -> int:
    """What a queued instruction holds in memory, as the limits count it."""
    if isinstance(instruction, Deliver):
        return len(instruction.data) + ITEM_OVERHEAD
    return ITEM_OVERHEAD


def _retimed(instruction: Instruction, at: float) -> Instruction:
    if isinstance(instruction, Deliver):
        return Deliver(at, instruction.data)
    return type(instruction)(at)
