"""Service faults of the chaos host: specs, and the policy that decides each request.

Pure logic (no sockets, no event loop, no chaoslib): the host and
``ChaosAgent`` do the sleeping, raising, padding and exiting; this module
only says what to do. Its design rules, stated once:

- A fault spec validates itself from the control API's JSON
  (``FaultSpec.from_json``, with ``chaosagenkit.validation`` and the limits
  of ``chaosagenkit.limits``); anything wrong raises ``ConfigurationError``
  naming the field, before anything changes. A fault from JSON always has a
  TTL: without ``duration_s`` (or with null) it gets the default TTL.
- Time is passed in (``now``, seconds): the policy never reads a clock, so
  tests drive expiry with a fake one. A fault expires at ``added_at +
  duration_s`` and is dropped on the next decision or listing (the host
  also sweeps on a timer for faults that hold resources).
- ONE seeded ``random.Random`` makes every random choice, and each active
  fault draws a FIXED number of values per request whatever it decides
  (failure_rate 1, delay 2, large_response 1, the rest 0). So the same
  seed, the same faults and the same request sequence give the same
  decisions, and no draw depends on wall-clock timing or on an earlier
  outcome.
- Counting faults (fail_first, fail_every, crash after N) count the
  requests they have seen since they were added.
- When several faults apply to one request: the failure of the oldest
  failing fault wins, delays add up, the largest padding wins, and a crash
  beats everything.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, Self, cast

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.limits import DEFAULT_TTL_S, MAX_CPU_THREADS, MAX_MEMORY_MIB, MAX_PADDING_BYTES, MAX_TIME_MS
from chaosagenkit.validation import (
    invalid,
    require_choice,
    require_number,
    require_probability,
    require_ttl,
)

__all__ = [
    "CRASH_WHEN",
    "ERROR_KINDS",
    "FAULT_KINDS",
    "NO_FAULT",
    "ActiveFault",
    "CpuPressure",
    "Crash",
    "Decision",
    "Delay",
    "FailEvery",
    "FailFirst",
    "FailingFault",
    "FailureRate",
    "FaultPolicy",
    "FaultSpec",
    "LargeResponse",
    "MemoryPressure",
    "parse_fault",
    "parse_faults",
]

#: How an injected failure reaches the caller (see chaosagenkit.service.chaos_agent).
ERROR_KINDS = ("exception", "connection", "timeout")
CRASH_WHEN = ("now", "next_request", "after_requests")

# -- specs -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FaultSpec:
    """What a fault does, validated; ``duration_s``, its TTL in seconds, for all kinds.

    Subclasses declare ``kind`` and their own fields (with defaults where a
    field is optional) and check values in ``_check``; ``from_json`` does the
    rest: it refuses unknown fields, missing fields and wrong types, and
    gives a fault without ``duration_s`` the default TTL. (A spec built in
    Python may leave ``duration_s`` None: it then lasts until removed.)
    """

    kind: ClassVar[str] = ""
    #: False for faults that act on the host (memory, CPU), not on requests.
    per_request: ClassVar[bool] = True
    duration_s: float | None = None

    @classmethod
    def from_json(cls, data: Any, *, default_ttl_s: float = DEFAULT_TTL_S) -> Self:
        """Build the spec of ``data["kind"]`` from a JSON object; raise ConfigurationError.

        ``duration_s`` absent or null: ``default_ttl_s``.
        """
        if not isinstance(data, dict):
            raise invalid("fault", "a JSON object", data)
        if "kind" not in data:
            raise ConfigurationError("kind", f"is missing: one of {', '.join(FAULT_KINDS)}")
        spec_type = FAULT_KINDS.get(data["kind"]) if isinstance(data["kind"], str) else None
        if spec_type is None:
            raise invalid("kind", f"one of {', '.join(FAULT_KINDS)}", data["kind"])
        if cls is not FaultSpec and spec_type is not cls:
            raise invalid("kind", cls.kind, data["kind"])
        fields_given = {k: v for k, v in data.items() if k != "kind"}
        # spec_type is cls, or cls is FaultSpec: either way an instance of cls.
        return cast(Self, spec_type._from_fields(fields_given, default_ttl_s))

    @classmethod
    def _from_fields(cls, values: dict[str, Any], default_ttl_s: float) -> Self:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigurationError(
                unknown[0], f"is not a field of a {cls.kind} fault (fields: {', '.join(known)})"
            )
        for name, spec_field in known.items():
            if name not in values and _required(spec_field):
                raise ConfigurationError(name, f"is missing: a {cls.kind} fault needs it")
        kwargs = dict(values)
        kwargs["duration_s"] = require_ttl(kwargs.get("duration_s"), "duration_s", default=default_ttl_s)
        return cls(**cls._check(kwargs))

    @classmethod
    def _check(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Check and normalise the kind's own fields; return constructor arguments."""
        return values

    def params(self) -> dict[str, Any]:
        """The kind's own fields as JSON (without ``duration_s``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "duration_s"}

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.params(), "duration_s": self.duration_s}


def _required(spec_field: Any) -> bool:
    return spec_field.default is MISSING and spec_field.default_factory is MISSING


@dataclass(frozen=True, kw_only=True)
class FailingFault(FaultSpec):
    """A fault that fails requests with an ``error`` kind (``ERROR_KINDS``)."""

    error: str = "exception"

    @classmethod
    def _check(cls, values: dict[str, Any]) -> dict[str, Any]:
        values["error"] = require_choice(values.get("error", "exception"), "error", ERROR_KINDS)
        return values

    def fails(self, seen: int, rng: random.Random) -> bool:
        """Whether the ``seen``-th request since the fault was added fails."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class FailureRate(FailingFault):
    """Fail each request with probability ``rate`` (one draw per request)."""

    kind: ClassVar[str] = "failure_rate"
    rate: float

    @classmethod
    def _check(cls, values: dict[str, Any]) -> dict[str, Any]:
        values["rate"] = require_probability(values["rate"], "rate")
        return super()._check(values)

    def fails(self, seen: int, rng: random.Random) -> bool:
        return rng.random() < self.rate


@dataclass(frozen=True, kw_only=True)
class FailFirst(FailingFault):
    """Fail the first ``count`` requests seen after the fault was added."""

    kind: ClassVar[str] = "fail_first"
    count: int

    @classmethod
    def _check(cls, values: dict[str, Any]) -> dict[str, Any]:
        values["count"] = require_number(values["count"], "count", minimum=1, integer=True)
        return super()._check(values)

    def fails(self, seen: int, rng: random.Random) -> bool:
        return seen <= self.count


@dataclass(frozen=True, kw_only=True)
class FailEvery(FailingFault):
    """Fail every ``nth`` request seen after the fault was added (the nth, 2nth, ...)."""

    kind: ClassVar[str] = "fail_every"
    nth: int

    @classmethod
    def _check(cls, values: dict[str, Any]) -> dict[str, Any]:
        values["nth"] = require_number(values["nth"], "nth", minimum=1, integer=True)
        return super()._check(values)

    def fails(self, seen: int, rng: random.Random) -> bool:
        return seen % self.nth == 0


@dataclass(frozen=True, kw_only=True)
class Delay(FaultSpec):
    """Delay a fraction ``rate`` of requests: fixed, uniform range, or mean +/- jitter."""

    kind: ClassVar[str] = "delay"
    delay_ms: float
    max_delay_ms: float | None = None
    jitter_ms: float | None = None
    rate: float = 1.0

    @classmethod
    def _check(cls, values: dict[str, Any]) -> dict[str, Any]:
        delay = values["delay_ms"] = require_number(
            values["delay_ms"], "delay_ms", minimum=0, maximum=MAX_TIME_MS
        )
        if values.get("max_delay_ms") is not None and values.get("jitter_ms") is not None:
            raise ConfigurationError(
                "jitter_ms", "cannot be combined with max_delay_ms: choose a range or a jitter"
            )
        if values.get("max_delay_ms") is not None:
            values["max_delay_ms"] = require_number(
                values["max_delay_ms"], "max_delay_ms", maximum=MAX_TIME_MS
            )
            if values["max_delay_ms"] < delay:
                raise invalid("max_delay_ms", f">= delay_ms ({delay})", values["max_delay_ms"])
        if values.get("jitter_ms") is not None:
            values["jitter_ms"] = require_number(
                values["jitter_ms"], "jitter_ms", minimum=0, maximum=MAX_TIME_MS
            )
        values["rate"] = require_probability(values.get("rate", 1.0), "rate")
        return values

    def draw_ms(self, rng: random.Random) -> float:
        """The delay of one request; always ONE draw from ``rng``."""
        u = rng.random()
        if self.max_delay_ms is not None:
            return self.delay_ms + u * (self.max_delay_ms - self.delay_ms)
        if self.jitter_ms is not None:
            return max(0.0, self.delay_ms + (2.0 * u - 1.0) * self.jitter_ms)
        return self.delay_ms


@dataclass(frozen=True, kw_only=True)
class Crash(FaultSpec):
    """Make the host process exit: now, on the next request, or after N more requests."""

    kind: ClassVar[str] = "crash"
    when: str = "now"
    after_requests: int | None = None

    @classmethod
    def _check(cls, values: dict[str, Any]) -> dict[str, Any]:
        when = require_choice(values.get("when", "now"), "when", CRASH_WHEN)
        values["when"] = when
        after = values.get("after_requests")
        if when == "after_requests":
            if after is None:
                raise ConfigurationError("after_requests", "is missing: when is after_requests, say how many")
            values["after_requests"] = require_number(after, "after_requests", minimum=1, integer=True)
        elif after not in (None, 0):
            raise ConfigurationError(
                "after_requests", f"only applies when 'when' is after_requests, not {when}"
            )
        else:
            values.pop("after_requests", None)
        return values

    def crashes_on(self, seen: int) -> bool:
        """Whether the ``seen``-th request since the fault was added crashes the host.

        ``after_requests`` N: N requests are served, the (N+1)-th crashes in flight.
        """
        if self.when == "next_request":
            return seen >= 1
        if self.when == "after_requests":
            return seen > (self.after_requests or 0)
        return False


@dataclass(frozen=True, kw_only=True)
class LargeResponse(FaultSpec):
    """Pad a fraction ``rate`` of answers with ``size_bytes`` bytes of metadata."""

    kind: ClassVar[str] = "large_response"
    size_bytes: int
    rate: float = 1.0

    @classmethod
    def _check(cls, values: dict[str, Any]) -> dict[str, Any]:
        values["size_bytes"] = require_number(
            values["size_bytes"], "size_bytes", minimum=1, maximum=MAX_PADDING_BYTES, integer=True
        )
        values["rate"] = require_probability(values.get("rate", 1.0), "rate")
        return values


@dataclass(frozen=True, kw_only=True)
class MemoryPressure(FaultSpec):
    """Allocate and hold ``mib`` MiB inside the host while the fault is active."""

    kind: ClassVar[str] = "memory_pressure"
    per_request: ClassVar[bool] = False
    mib: int

    @classmethod
    def _check(cls, values: dict[str, Any]) -> dict[str, Any]:
        values["mib"] = require_number(values["mib"], "mib", minimum=1, maximum=MAX_MEMORY_MIB, integer=True)
        return values


@dataclass(frozen=True, kw_only=True)
class CpuPressure(FaultSpec):
    """Keep ``threads`` threads busy inside the host for ``duration_s`` seconds."""

    kind: ClassVar[str] = "cpu_pressure"
    per_request: ClassVar[bool] = False
    threads: int = 1

    @classmethod
    def _check(cls, values: dict[str, Any]) -> dict[str, Any]:
        values["threads"] = require_number(
            values.get("threads", 1), "threads", minimum=1, maximum=MAX_CPU_THREADS, integer=True
        )
        return values


#: kind -> spec class: the API's ``kind`` values.
FAULT_KINDS: dict[str, type[FaultSpec]] = {
    spec.kind: spec
    for spec in (
        FailureRate,
        FailFirst,
        FailEvery,
        Delay,
        Crash,
        LargeResponse,
        MemoryPressure,
        CpuPressure,
    )
}


def parse_fault(data: Any, *, default_ttl_s: float = DEFAULT_TTL_S) -> FaultSpec:
    """One fault from JSON (``FaultSpec.from_json``)."""
    return FaultSpec.from_json(data, default_ttl_s=default_ttl_s)


def parse_faults(data: Any, *, default_ttl_s: float = DEFAULT_TTL_S) -> list[FaultSpec]:
    """One fault object or a list of them; an error names the list index: ``[2].rate``."""
    if not isinstance(data, list):
        return [parse_fault(data, default_ttl_s=default_ttl_s)]
    if not data:
        raise invalid("faults", "a fault object or a non-empty list of them", data)
    specs = []
    for index, item in enumerate(data):
        try:
            specs.append(parse_fault(item, default_ttl_s=default_ttl_s))
        except ConfigurationError as e:
            raise ConfigurationError(f"[{index}].{e.field}", e.message) from None
    return specs


# -- the policy --------------------------------------------------------------


@dataclass
class ActiveFault:
    """A fault the policy holds: its spec, id, times (seconds) and counters."""

    id: str
    spec: FaultSpec
    added_at: float
    expires_at: float | None
    seen: int = 0  # requests decided while the fault was active
    injected: int = 0  # requests on which it acted
    delayed_ms: float = 0.0  # delay it added, over all requests (a delay fault)

    @property
    def kind(self) -> str:
        return self.spec.kind

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "params": self.spec.params(),
            "duration_s": self.spec.duration_s,
            "added_at": self.added_at,
            "expires_at": self.expires_at,
            "requests_seen": self.seen,
            "injected": self.injected,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one request. ``NO_FAULT`` when nothing applies."""

    request: int = 0  # 1-based number of the request since the policy started
    crash: bool = False
    error: str | None = None  # one of ERROR_KINDS
    error_fault: str | None = None  # id of the fault whose failure wins
    delay_ms: float = 0.0
    delay_faults: tuple[str, ...] = ()
    pad_bytes: int = 0
    fault_ids: tuple[str, ...] = ()  # every fault that acted


NO_FAULT = Decision()


class FaultPolicy:
    """The active faults of one host and the per-request decisions they make."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self._faults: dict[str, ActiveFault] = {}
        self._next_id = 1
        self._next_expiry: float | None = None
        self.requests = 0
        self.injected: Counter[str] = Counter()

    def reseed(self, seed: int) -> None:
        """Restart the random sequence from ``seed`` (counters are kept)."""
        self.seed = seed
        self._rng = random.Random(seed)

    # -- faults --------------------------------------------------------------

    def add(self, spec: FaultSpec, now: float) -> ActiveFault:
        """Activate ``spec`` at ``now``; return the active fault with its new id."""
        fault_id = f"f{self._next_id}"
        self._next_id += 1
        expires = None if spec.duration_s is None else now + spec.duration_s
        fault = ActiveFault(fault_id, spec, added_at=now, expires_at=expires)
        self._faults[fault_id] = fault
        self._update_next_expiry()
        return fault

    def remove(self, fault_id: str) -> ActiveFault | None:
        """Remove one fault; None when there is no such id."""
        fault = self._faults.pop(fault_id, None)
        self._update_next_expiry()
        return fault

    def clear(self) -> list[ActiveFault]:
        """Remove every fault; return them."""
        removed = list(self._faults.values())
        self._faults.clear()
        self._next_expiry = None
        return removed

    def expire(self, now: float) -> list[ActiveFault]:
        """Drop the faults whose time is up at ``now``; return them."""
        if self._next_expiry is None or now < self._next_expiry:
            return []
        expired = [f for f in self._faults.values() if f.expires_at is not None and now >= f.expires_at]
        for fault in expired:
            del self._faults[fault.id]
        self._update_next_expiry()
        return expired

    def active(self, now: float) -> list[ActiveFault]:
        """The faults in force at ``now``, oldest first (expired ones are dropped)."""
        self.expire(now)
        return list(self._faults.values())

    def get(self, fault_id: str) -> ActiveFault | None:
        return self._faults.get(fault_id)

    @property
    def next_expiry(self) -> float | None:
        return self._next_expiry

    def _update_next_expiry(self) -> None:
        times = [f.expires_at for f in self._faults.values() if f.expires_at is not None]
        self._next_expiry = min(times) if times else None

    # -- decisions -----------------------------------------------------------

    def decide(self, now: float) -> Decision:
        """Decide what happens to the next request arriving at ``now``."""
        self.requests += 1
        if not self._faults:
            return NO_FAULT
        self.expire(now)
        crash_fault: str | None = None
        error: str | None = None
        error_fault: str | None = None
        delay_ms = 0.0
        delay_faults: list[str] = []
        pad_bytes = 0
        pad_fault: str | None = None
        for fault in list(self._faults.values()):
            spec = fault.spec
            if not spec.per_request:
                continue
            fault.seen += 1
            match spec:
                case FailingFault():
                    if spec.fails(fault.seen, self._rng) and error is None:
                        error, error_fault = spec.error, fault.id
                case Delay():
                    fires = self._rng.random() < spec.rate
                    drawn = spec.draw_ms(self._rng)
                    if fires:
                        delay_ms += drawn
                        delay_faults.append(fault.id)
                        fault.delayed_ms += drawn
                        self._count(fault)
                case LargeResponse():
                    if self._rng.random() < spec.rate and spec.size_bytes > pad_bytes:
                        pad_bytes, pad_fault = spec.size_bytes, fault.id
                case Crash():
                    if spec.crashes_on(fault.seen) and crash_fault is None:
                        crash_fault = fault.id
        if crash_fault is not None:
            self._count(self._faults[crash_fault])
            return Decision(self.requests, crash=True, error_fault=crash_fault, fault_ids=(crash_fault,))
        acted = list(delay_faults)
        if error_fault is not None:
            self._count(self._faults[error_fault])
            acted.append(error_fault)
        if pad_fault is not None and error is None:
            self._count(self._faults[pad_fault])
            acted.append(pad_fault)
        else:
            pad_bytes = 0
        if not acted:
            return Decision(self.requests)
        return Decision(
            self.requests,
            error=error,
            error_fault=error_fault,
            delay_ms=delay_ms,
            delay_faults=tuple(delay_faults),
            pad_bytes=pad_bytes,
            fault_ids=tuple(acted),
        )

    def _count(self, fault: ActiveFault) -> None:
        fault.injected += 1
        self.injected[fault.kind] += 1

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "injected": dict(sorted(self.injected.items())),
            "active_faults": len(self._faults),
            "seed": self.seed,
        }
