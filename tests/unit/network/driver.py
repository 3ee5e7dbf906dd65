"""Drive a pure toxic through time without sockets (h11's ConnectionPair idea).

``run(toxic, events)`` feeds ``events`` — ``(t, "data", b"...")``, ``(t, "end")``,
``(t, "remove")``, ``(t, "update", toxic)``, ``(t, "shed")`` — in order, firing the toxic's
wake-ups when their time comes, and returns what came out as tuples:
``("deliver", at, data)``, ``("close", at)``, ``("reset", at)``. It applies
the toxic contract's one rule about order (nothing leaves before what was
emitted earlier) so tables can state delivery times as the link would.
"""

from __future__ import annotations

import heapq
import random
from typing import Any

from chaosagenkit.faults.toxics.base import (
    Close,
    ConnectionContext,
    Deliver,
    Reset,
    Toxic,
    ToxicTally,
    Wake,
)


class Run:
    def __init__(self, toxic: Toxic, *, seed: int = 0, toxicity: float = 1.0, start: float = 0.0):
        self.toxic = toxic
        self.tally = ToxicTally()
        self.context = ConnectionContext()
        self.state = toxic.new_state(random.Random(seed), self.context, self.tally, toxicity)
        self.out: list[tuple[Any, ...]] = []
        self.wakes: list[float] = []
        self._last = float("-inf")
        self._ended = False
        self._emit(toxic.start(self.state, start))

    def feed(self, t: float, data: bytes) -> None:
        self._fire(t)
        self._emit(self.toxic.feed(self.state, data, t))

    def end(self, t: float) -> None:
        self._fire(t)
        self._emit(self.toxic.end(self.state, t))

    def remove(self, t: float) -> None:
        self._fire(t)
        self.wakes.clear()
        self._emit(self.toxic.removed(self.state, t) + self.toxic.cleanup(self.state, t))

    def update(self, t: float, toxic: Toxic) -> None:
        self._fire(t)
        self.toxic = toxic
        self._emit(toxic.updated(self.state, t))

    def shed(self, t: float) -> None:
        self._fire(t)
        self._emit(self.toxic.shed(self.state, t))

    def finish(self, until: float = float("inf")) -> list[tuple[Any, ...]]:
        self._fire(until)
        return self.out

    @property
    def acted(self) -> int:
        return self.tally.acted

    def _fire(self, t: float) -> None:
        while self.wakes and self.wakes[0] <= t:
            at = heapq.heappop(self.wakes)
            self._emit(self.toxic.tick(self.state, at))

    def _emit(self, instructions) -> None:
        for instruction in instructions:
            if self._ended:
                return  # nothing a toxic emits after Close or Reset is used
            if isinstance(instruction, Wake):
                heapq.heappush(self.wakes, instruction.at)
                continue
            at = max(instruction.at, self._last)
            self._last = at
            if isinstance(instruction, Deliver):
                self.out.append(("deliver", round(at, 6), instruction.data))
            elif isinstance(instruction, Close):
                self.out.append(("close", round(at, 6)))
                self._ended = True
            elif isinstance(instruction, Reset):
                self.out.append(("reset", round(at, 6)))
                self._ended = True


def run(toxic: Toxic, events: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    driver = Run(toxic, **kwargs)
    for event in events:
        t, kind, *args = event
        getattr(driver, kind)(t, *args) if kind != "data" else driver.feed(t, *args)
    return driver.finish()


def delivered(out: list[tuple[Any, ...]]) -> bytes:
    return b"".join(item[2] for item in out if item[0] == "deliver")
