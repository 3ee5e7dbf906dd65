"""The fault catalogue the explorer draws from, as pluggable fault sources.

A ``FaultSource`` is a family of faults applied through one control plane:

- ``service``: the chaos host's control API (``chaosagenkit.service.actions``):
  failures, delays, crashes, large answers, memory and CPU pressure;
- ``network``: the fault proxy's toxics (``chaosagenkit.network.actions``):
  latency, bandwidth, timeout, reset, cut, slow close, slicing, packet
  loss, and a partition (the proxy taken down);
- ``frame``: the proxy's agenkit-frame faults: malformed, dropped, delayed,
  duplicated and reordered messages.

Each ``FaultKind`` says, as pure functions: how to draw its parameters from
the one RNG (``draw``), which simpler parameters the shrinker may try
(``simplify``), and which Chaos Toolkit activities apply a fault of that kind
(``activities``: plain activity JSON with the fault's duration as its TTL,
so every fault expires by itself). Nothing here performs I/O: the activities
run inside the experiment, exactly as they would in a hand-written one.

Plugging in a source: build a ``FaultSource`` and call ``register_source``.
Kernel packet faults (network namespaces, nftables, a TUN relay; being built
on the ``kernel`` branch) become one more source when merged: its kinds call
``chaosagenkit.kernel.actions`` (``inject_packet_loss``, ``inject_blackhole``,
...), and its ``control`` hook adds the control's ``network`` declaration and
puts the target in its namespace (see ``FaultSource.control``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.faults.service import ERROR_KINDS
from chaosagenkit.faults.toxics.malformed_frame import MALFORMED_KINDS

__all__ = [
    "PROXY",
    "PROXY_DAEMON",
    "SERVER",
    "SOURCES",
    "DrawContext",
    "FaultKind",
    "FaultSource",
    "kind_named",
    "kinds_for",
    "register_source",
]

#: The names the explorer's sandbox uses (the control's declarations).
SERVER = "target"
PROXY = "target_proxy"
PROXY_DAEMON = "proxy"

_SERVICE = "chaosagenkit.service.actions"
_NETWORK = "chaosagenkit.network.actions"
_PROXY_TRANSPORTS = ("tcp", "http", "h2c", "ws", "grpc")  # a TCP proxy carries these (not unix)
_FRAME_TRANSPORTS = ("tcp", "http")  # agenkit framing and HTTP/1.1 bodies


@dataclass(frozen=True)
class DrawContext:
    """What parameter draws may depend on: the callers' per-attempt timeout (ms)."""

    attempt_timeout_ms: float = 300.0


Activity = dict[str, Any]
#: (seconds after the fault's start, Chaos Toolkit activity)
TimedActivity = tuple[float, Activity]


@dataclass(frozen=True)
class FaultKind:
    """One kind of fault: its parameter draw, its simplifications, its activities."""

    name: str  # "<source>.<kind>"
    timeline_kind: str  # the ``kind`` its inject event carries on the run's fault timeline
    draw: Callable[[random.Random, DrawContext], dict[str, Any]]
    activities: Callable[[Any, int], list[TimedActivity]]  # (Fault, index) -> timed activities
    simplify: Callable[[dict[str, Any]], list[dict[str, Any]]] = lambda params: []
    weight: float = 1.0
    max_duration_s: float | None = None

    @property
    def source(self) -> str:
        return self.name.split(".", 1)[0]


@dataclass(frozen=True)
class FaultSource:
    """A family of faults applied through one control plane.

    ``transports`` lists where it applies; ``needs_proxy`` says the sandbox
    must route the callers through the fault proxy; ``control`` may adjust
    the control's declaration (arguments dict, changed in place) for a
    source that needs more than a server and a proxy (kernel faults will
    declare their network there).
    """

    name: str
    kinds: tuple[FaultKind, ...]
    transports: tuple[str, ...]
    needs_proxy: bool = False
    control: Callable[[dict[str, Any]], None] | None = field(default=None, compare=False)


SOURCES: dict[str, FaultSource] = {}


def register_source(source: FaultSource) -> None:
    """Add a fault source (or replace one of the same name)."""
    for kind in source.kinds:
        if kind.source != source.name:
            raise ConfigurationError("kind", f"{kind.name!r} must start with '{source.name}.'")
    SOURCES[source.name] = source


def kinds_for(transport: str, sources: tuple[str, ...] | None = None) -> list[FaultKind]:
    """Every fault kind usable over ``transport`` (from ``sources`` only, when given)."""
    return [
        kind
        for source in SOURCES.values()
        if transport in source.transports and (sources is None or source.name in sources)
        for kind in source.kinds
    ]


def kind_named(name: str) -> FaultKind:
    """The catalogue entry ``name``; ConfigurationError naming the known ones otherwise."""
    for source in SOURCES.values():
        for kind in source.kinds:
            if kind.name == name:
                return kind
    known = ", ".join(k.name for s in SOURCES.values() for k in s.kinds)
    raise ConfigurationError("kind", f"must be one of {known}, got {name!r}")


# -- activity helpers --------------------------------------------------------------


def _action(name: str, module: str, func: str, arguments: dict[str, Any]) -> Activity:
    return {
        "type": "action",
        "name": name,
        "provider": {"type": "python", "module": module, "func": func, "arguments": arguments},
    }


def _label(fault: Any, index: int) -> str:
    return f"fault-{index}-{fault.kind.replace('.', '-').replace('_', '-')}"


def _ttl(fault: Any) -> float:
    return round(max(fault.duration_s, 0.001), 3)


def _service(func: str, *param_names: str) -> Callable[[Any, int], list[TimedActivity]]:
    def activities(fault: Any, index: int) -> list[TimedActivity]:
        arguments = {"server": SERVER, **{p: fault.params[p] for p in param_names if p in fault.params}}
        arguments["duration_s"] = _ttl(fault)
        return [(0.0, _action(_label(fault, index), _SERVICE, func, arguments))]

    return activities


def _toxic(type_name: str, attribute_names: dict[str, str]) -> Callable[[Any, int], list[TimedActivity]]:
    """``add_toxic`` of ``type_name``; ``attribute_names`` maps parameter -> Toxiproxy attribute."""

    def activities(fault: Any, index: int) -> list[TimedActivity]:
        params = fault.params
        arguments = {
            "proxy": PROXY,
            "toxic_type": type_name,
            "attributes": {attr: params[p] for p, attr in attribute_names.items() if p in params},
            "stream": params.get("stream", "downstream"),
            "toxicity": params.get("toxicity", 1.0),
            "duration_s": _ttl(fault),
            "name": f"f{index}-{type_name}",
        }
        return [(0.0, _action(_label(fault, index), _NETWORK, "add_toxic", arguments))]

    return activities


def _crash(fault: Any, index: int) -> list[TimedActivity]:
    label = _label(fault, index)
    crash = _action(
        f"{label}-crash",
        _SERVICE,
        "crash_server",
        {"server": SERVER, "when": fault.params.get("when", "now")},
    )
    restart = _action(f"{label}-restart", _SERVICE, "restart_server", {"name": SERVER})
    return [(0.0, crash), (fault.duration_s, restart)]


def _partition(fault: Any, index: int) -> list[TimedActivity]:
    arguments = {"name": PROXY, "duration_s": _ttl(fault)}
    return [(0.0, _action(_label(fault, index), _NETWORK, "disable_proxy", arguments))]


# -- draws ---------------------------------------------------------------------------


def _around_timeout(rng: random.Random, ctx: DrawContext) -> int:
    """A delay from well under to well over the callers' per-attempt timeout, in 10 ms steps."""
    return max(10, int(round(ctx.attempt_timeout_ms * rng.uniform(0.3, 3.0), -1)))


def _stream(rng: random.Random) -> str:
    return "downstream" if rng.random() < 0.7 else "upstream"


def _toxicity(rng: random.Random) -> float:
    return rng.choice((1.0, 1.0, 0.5))


def _without(params: dict[str, Any], **simpler: Any) -> list[dict[str, Any]]:
    """``params`` with each of ``simpler``'s values put in, one at a time, where it differs."""
    return [{**params, k: v} for k, v in simpler.items() if k in params and params[k] != v]


SERVICE = FaultSource(
    name="service",
    transports=("tcp", "unix", "ws", "http", "h2c", "grpc"),
    kinds=(
        FaultKind(
            "service.failure_rate",
            "failure_rate",
            lambda rng, ctx: {"rate": rng.choice((0.3, 0.5, 1.0)), "error": rng.choice(ERROR_KINDS)},
            _service("inject_failure_rate", "rate", "error"),
            lambda p: _without(p, rate=1.0, error="exception"),
        ),
        FaultKind(
            "service.fail_first",
            "fail_first",
            lambda rng, ctx: {"count": rng.randint(1, 6), "error": rng.choice(ERROR_KINDS)},
            _service("inject_fail_first", "count", "error"),
            lambda p: _without(p, count=max(1, p["count"] // 2), error="exception"),
        ),
        FaultKind(
            "service.fail_every",
            "fail_every",
            lambda rng, ctx: {"nth": rng.randint(2, 4), "error": rng.choice(ERROR_KINDS)},
            _service("inject_fail_every", "nth", "error"),
            lambda p: _without(p, error="exception"),
        ),
        FaultKind(
            "service.delay",
            "delay",
            lambda rng, ctx: {"delay_ms": _around_timeout(rng, ctx), "rate": rng.choice((1.0, 1.0, 0.5))},
            _service("inject_delay", "delay_ms", "rate"),
            lambda p: _without(p, rate=1.0, delay_ms=int(round(p["delay_ms"], -2)) or 100),
        ),
        FaultKind(
            "service.crash",
            "crash",
            lambda rng, ctx: {"when": rng.choice(("now", "next_request"))},
            _crash,
            lambda p: _without(p, when="now"),
        ),
        FaultKind(
            "service.large_response",
            "large_response",
            # 12 MiB is above agenkit's 10 MiB frame limit; the others are below it
            lambda rng, ctx: {"size_bytes": rng.choice((65_536, 1_048_576, 12 * 1_048_576))},
            _service("inject_large_responses", "size_bytes"),
        ),
        FaultKind(
            "service.memory_pressure",
            "memory_pressure",
            lambda rng, ctx: {"mib": rng.choice((64, 128))},
            _service("inject_memory_pressure", "mib"),
            lambda p: _without(p, mib=64),
            weight=0.3,
        ),
        FaultKind(
            "service.cpu_pressure",
            "cpu_pressure",
            lambda rng, ctx: {"threads": 1},
            _service("inject_cpu_pressure", "threads"),
            weight=0.3,
            max_duration_s=2.0,  # the machine is shared: keep CPU burns short
        ),
    ),
)

NETWORK = FaultSource(
    name="network",
    transports=_PROXY_TRANSPORTS,
    needs_proxy=True,
    kinds=(
        FaultKind("network.partition", "proxy_down", lambda rng, ctx: {}, _partition),
        FaultKind(
            "network.latency",
            "latency",
            lambda rng, ctx: {
                "latency_ms": _around_timeout(rng, ctx),
                "jitter_ms": rng.choice((0, 0, 50)),
                "stream": _stream(rng),
            },
            _toxic("latency", {"latency_ms": "latency", "jitter_ms": "jitter"}),
            lambda p: _without(p, jitter_ms=0, stream="downstream"),
        ),
        FaultKind(
            "network.bandwidth",
            "bandwidth",
            lambda rng, ctx: {"rate_kbps": rng.choice((1, 8, 64)), "stream": _stream(rng)},
            _toxic("bandwidth", {"rate_kbps": "rate"}),
            lambda p: _without(p, stream="downstream"),
        ),
        FaultKind(
            "network.timeout",
            "timeout",
            lambda rng, ctx: {"timeout_ms": rng.choice((0, 100, 500)), "stream": _stream(rng)},
            _toxic("timeout", {"timeout_ms": "timeout"}),
            lambda p: _without(p, timeout_ms=0, stream="downstream"),
        ),
        FaultKind(
            "network.reset_peer",
            "reset_peer",
            lambda rng, ctx: {
                "timeout_ms": rng.choice((0, 50, 200)),
                "stream": _stream(rng),
                "toxicity": _toxicity(rng),
            },
            _toxic("reset_peer", {"timeout_ms": "timeout"}),
            lambda p: _without(p, timeout_ms=0, stream="downstream", toxicity=1.0),
        ),
        FaultKind(
            "network.limit_data",
            "limit_data",
            lambda rng, ctx: {
                "bytes": rng.choice((0, 100, 600, 2000)),
                "stream": _stream(rng),
                "toxicity": _toxicity(rng),
            },
            _toxic("limit_data", {"bytes": "bytes"}),
            lambda p: _without(p, bytes=0, stream="downstream", toxicity=1.0),
        ),
        FaultKind(
            "network.slow_close",
            "slow_close",
            lambda rng, ctx: {"delay_ms": rng.choice((100, 500)), "stream": _stream(rng)},
            _toxic("slow_close", {"delay_ms": "delay"}),
            lambda p: _without(p, stream="downstream"),
        ),
        FaultKind(
            "network.slicer",
            "slicer",
            lambda rng, ctx: {"average_size": rng.choice((1, 8, 64)), "delay_us": rng.choice((0, 100, 1000))},
            _toxic("slicer", {"average_size": "average_size", "delay_us": "delay"}),
            lambda p: _without(p, delay_us=0),
        ),
        FaultKind(
            "network.packet_loss",
            "packet_loss",
            lambda rng, ctx: {
                "loss_rate": rng.choice((0.05, 0.2, 0.5)),
                "correlation": rng.choice((0.0, 0.25)),
                "stream": _stream(rng),
            },
            _toxic("packet_loss", {"loss_rate": "loss_rate", "correlation": "correlation"}),
            lambda p: _without(p, correlation=0.0, stream="downstream"),
        ),
    ),
)

FRAME = FaultSource(
    name="frame",
    transports=_FRAME_TRANSPORTS,
    needs_proxy=True,
    kinds=(
        FaultKind(
            "frame.malformed_frame",
            "malformed_frame",
            lambda rng, ctx: {
                "kind": rng.choice(MALFORMED_KINDS),
                "stream": "downstream" if rng.random() < 0.8 else "upstream",
                "toxicity": _toxicity(rng),
            },
            _toxic("malformed_frame", {"kind": "kind"}),
            lambda p: _without(p, kind="invalid_json", stream="downstream", toxicity=1.0),
        ),
        FaultKind(
            "frame.drop_frame",
            "drop_frame",
            lambda rng, ctx: {"stream": _stream(rng), "toxicity": _toxicity(rng)},
            _toxic("drop_frame", {}),
            lambda p: _without(p, stream="downstream", toxicity=1.0),
        ),
        FaultKind(
            "frame.delay_frame",
            "delay_frame",
            lambda rng, ctx: {
                "delay_ms": _around_timeout(rng, ctx),
                "stream": _stream(rng),
                "toxicity": _toxicity(rng),
            },
            _toxic("delay_frame", {"delay_ms": "delay"}),
            lambda p: _without(p, stream="downstream", toxicity=1.0),
        ),
        FaultKind(
            "frame.duplicate_frame",
            "duplicate_frame",
            lambda rng, ctx: {
                "copies": rng.choice((1, 2)),
                "stream": _stream(rng),
                "toxicity": _toxicity(rng),
            },
            _toxic("duplicate_frame", {"copies": "copies"}),
            lambda p: _without(p, copies=1, stream="downstream", toxicity=1.0),
        ),
        FaultKind(
            "frame.reorder_frames",
            "reorder_frames",
            lambda rng, ctx: {"window_ms": rng.choice((50, 200)), "stream": _stream(rng)},
            _toxic("reorder_frames", {"window_ms": "window"}),
            lambda p: _without(p, stream="downstream"),
        ),
    ),
)

for _source in (SERVICE, NETWORK, FRAME):
    register_source(_source)
