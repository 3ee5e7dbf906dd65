"""The toxic contract: pure fault logic for one direction of one TCP connection.

A toxic is a pure object (like h11: no sockets, no event loop, no sleeping).
The proxy's link feeds it chunks of bytes stamped with the monotonic time
(seconds) at which they reach the toxic, and the toxic answers with
*instructions*:

- ``Deliver(at, data)``: hand ``data`` to the next toxic (or the socket) at ``at``;
- ``Close(at)``: end the stream gracefully (FIN) at ``at``;
- ``Reset(at)``: abort the whole connection (RST) at ``at``;
- ``Wake(at)``: call ``tick`` at ``at`` (for decisions that depend on time
  passing, not on data arriving);
- *hold*: return nothing for some bytes and keep them in the state, to be
  released later from ``tick``, ``end`` or ``removed``.

The link keeps a stream a stream: instructions leave a toxic in the order it
emits them, never earlier than the one before (head-of-line blocking, as on
TCP). Times may lie in the past (a timer fired late); the link then acts at
once. Nothing a toxic emits after a ``Close`` or ``Reset`` is used.

Hooks, each returning a list of instructions:

- ``start(state, now)``: the toxic joins a connection (at accept, or when it
  is added to a live connection);
- ``feed(state, data, now)``: bytes arrive;
- ``tick(state, now)``: a ``Wake`` fell due;
- ``end(state, now)``: the source closed. Don't drop data on the floor
  (Toxiproxy's rule): deliver what is held, then ``Close``;
- ``removed(state, now)``: the toxic stops acting on a live connection
  (it is removed, or a toxicity update drew it inactive): release what it
  holds (the link forwards anything it had already scheduled at once);
- ``cleanup(state, now)``: Toxiproxy's ``CleanupToxic``: the toxic is
  removed from a live connection, whether its toxicity drew it active there
  or not (Toxiproxy calls ``Cleanup`` on every link); a ``timeout`` toxic
  closes the connection here, as Toxiproxy does;
- ``updated(state, now)``: its attributes changed on a live connection;
- ``shed(state, now)``: the link must stop reading to keep memory bounded:
  release, unchanged, what only more input would release (an incomplete
  message a frame toxic is assembling), so the pause cannot wait on itself.

``held_bytes(state)`` says how many bytes the toxic keeps in its state (not
yet emitted); the link counts them against its memory limits, so a toxic
that holds data must report it.

Per-connection state comes from ``new_state(rng, context)``; the link calls
it once per toxic per connection with a ``random.Random`` derived from the
proxy's seed, so the same seed and the same traffic give the same decisions.
Toxicity (the probability that the toxic applies) is drawn by the link once
per connection, as Toxiproxy does, except for frame toxics
(``per_frame = True``), which draw it for every frame themselves.

Each toxic has a frozen config dataclass whose field names carry units
(``latency_ms``) and which validates itself from Toxiproxy's JSON attribute
names (``latency``); invalid input raises ``ConfigurationError`` naming the
attribute. ``state.act()`` counts how many times a toxic really acted on
traffic; the API reports it, and ``traffic_impacted`` relies on it.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.faults.framing.base import FramingContext
from chaosagenkit.limits import MAX_TIME_MS
from chaosagenkit.validation import finite_float, require, require_number, shown

__all__ = [
    "MAX_DURATION_MS",
    "Close",
    "ConnectionContext",
    "Deliver",
    "Instruction",
    "Reset",
    "Toxic",
    "ToxicConfig",
    "ToxicState",
    "ToxicTally",
    "Wake",
    "finite_float",
    "shown",
]

#: The longest time attribute accepted: ``limits.MAX_TIME_MS`` (one day), as for service faults.
MAX_DURATION_MS = MAX_TIME_MS


@dataclass(frozen=True, slots=True)
class Deliver:
    """Deliver ``data`` at monotonic time ``at``."""

    at: float
    data: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """Close the stream gracefully (FIN) at ``at``."""

    at: float


@dataclass(frozen=True, slots=True)
class Reset:
    """Reset the whole connection (RST, unsent data discarded) at ``at``."""

    at: float


@dataclass(frozen=True, slots=True)
class Wake:
    """Call the toxic's ``tick`` at ``at``."""

    at: float


Instruction = Deliver | Close | Reset | Wake


class ToxicTally:
    """Counters one toxic shares across all its connections (read by the API)."""

    __slots__ = ("acted", "bytes", "connections")

    def __init__(self) -> None:
        self.acted = 0  # times the toxic changed traffic (delayed, dropped, cut, corrupted ...)
        self.connections = 0  # connections on which the toxic was drawn active
        self.bytes = 0  # bytes that reached the toxic on those connections (the link counts them)

    def as_json(self) -> dict[str, int]:
        return {"acted": self.acted, "connections": self.connections, "bytes": self.bytes}


class ConnectionContext:
    """What the two directions of one connection may share.

    Frame toxics need facts only the other direction sees (which requests
    were HEAD, what a WebSocket upgrade negotiated, the path of each gRPC
    call): a toxic that needs them sets ``wants_framing`` and the proxy
    runs an observer on each direction that records them in ``framing``.
    ``established`` turns true once the connection carries data with the
    toxics it was opened with: a toxic added later joins an open connection
    (``reset_peer`` then closes instead of resetting, as Toxiproxy).
    """

    __slots__ = ("established", "framing", "number", "wants_framing")

    def __init__(self, number: int = 0) -> None:
        self.number = number
        self.wants_framing = False
        self.established = False
        self.framing = FramingContext()


class ToxicState:
    """Per-connection state of one toxic; toxics subclass it for their own fields."""

    __slots__ = ("acted", "context", "rng", "tally", "toxicity")

    def __init__(
        self,
        rng: random.Random,
        context: ConnectionContext,
        tally: ToxicTally,
        toxicity: float = 1.0,
    ) -> None:
        self.rng = rng
        self.context = context
        self.tally = tally
        self.toxicity = toxicity
        self.acted = 0

    def act(self, times: int = 1) -> None:
        """Record that the toxic changed traffic ``times`` times."""
        self.acted += times
        self.tally.acted += times


@dataclass(frozen=True)
class ToxicConfig:
    """Base of every toxic's attributes.

    ``ATTRIBUTES`` maps Toxiproxy's attribute name to the field name (with
    its unit); ``from_attributes`` converts, merges and validates.
    """

    ATTRIBUTES: ClassVar[dict[str, str]] = {}

    @classmethod
    def from_attributes(cls, attributes: Any, base: Self | None = None) -> Self:
        """Build a config from Toxiproxy JSON attributes, on top of ``base`` (an update).

        ``None`` means no attributes (Toxiproxy accepts ``"attributes": null``).
        """
        if attributes is None:
            attributes = {}
        if not isinstance(attributes, dict):
            raise ConfigurationError("attributes", f"must be a JSON object, got {type(attributes).__name__}")
        values = {} if base is None else dataclasses.asdict(base)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for attribute, value in attributes.items():
            field_name = cls.ATTRIBUTES.get(attribute)
            if field_name is None:
                known = ", ".join(sorted(cls.ATTRIBUTES)) or "none"
                raise ConfigurationError(
                    attribute, f"is not an attribute of this toxic (attributes: {known})"
                )
            values[field_name] = _coerce(attribute, fields[field_name].type, value)
        config = cls(**values)
        config.validate()
        return config

    def to_attributes(self) -> dict[str, Any]:
        """Toxiproxy's JSON attributes of this config."""
        return {attribute: getattr(self, name) for attribute, name in self.ATTRIBUTES.items()}

    def validate(self) -> None:
        """Raise ``ConfigurationError`` naming the Toxiproxy attribute that is out of range."""

    # helpers for validate(): errors name the attribute the user sent
    def _attribute(self, field_name: str) -> str:
        for attribute, name in self.ATTRIBUTES.items():
            if name == field_name:
                return attribute
        return field_name

    def _check_range(self, field_name: str, minimum: float, maximum: float | None = None) -> None:
        require_number(
            getattr(self, field_name), self._attribute(field_name), minimum=minimum, maximum=maximum
        )


def _coerce(attribute: str, annotation: Any, value: Any) -> Any:
    """An attribute's JSON value as its field's type (``chaosagenkit.validation``'s number rule).

    JSON has one number type: 100.0 is an int field's 100, 100.5 a mistake
    (Toxiproxy rejects it too).
    """
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value  # however large: the config's range check refuses it, naming its bound
        return require_number(value, attribute, integer=True)
    if kind == "float":
        return float(require_number(value, attribute))
    if kind == "str":
        require(isinstance(value, str), attribute, "a string", value)
        return value
    if kind == "bool":
        require(isinstance(value, bool), attribute, "true or false", value)
        return value
    raise TypeError(f"unsupported attribute type {annotation!r}")  # a bug in a config class


class Toxic:
    """Base toxic: passes everything through unchanged (the ``noop`` behaviour)."""

    type_name: ClassVar[str] = ""
    Config: ClassVar[type[ToxicConfig]] = ToxicConfig
    State: ClassVar[type[ToxicState]] = ToxicState
    #: True for frame toxics: toxicity is drawn per frame by the toxic, not per connection.
    per_frame: ClassVar[bool] = False

    def __init__(self, config: ToxicConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()

    @classmethod
    def from_attributes(cls, attributes: Any, base: ToxicConfig | None = None) -> Self:
        return cls(cls.Config.from_attributes(attributes, base))

    def new_state(
        self,
        rng: random.Random,
        context: ConnectionContext,
        tally: ToxicTally,
        toxicity: float = 1.0,
    ) -> ToxicState:
        return self.State(rng, context, tally, toxicity)

    def start(self, state: ToxicState, now: float) -> list[Instruction]:
        return []

    def feed(self, state: ToxicState, data: bytes, now: float) -> list[Instruction]:
        return [Deliver(now, data)]

    def tick(self, state: ToxicState, now: float) -> list[Instruction]:
        return []

    def end(self, state: ToxicState, now: float) -> list[Instruction]:
        return [Close(now)]

    def removed(self, state: ToxicState, now: float) -> list[Instruction]:
        return []

    def cleanup(self, state: ToxicState, now: float) -> list[Instruction]:
        return []

    def updated(self, state: ToxicState, now: float) -> list[Instruction]:
        return []

    def shed(self, state: ToxicState, now: float) -> list[Instruction]:
        return []

    def held_bytes(self, state: ToxicState) -> int:
        return 0
