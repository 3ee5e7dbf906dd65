"""Schedules as data, the generator, the catalogue, the experiment builder and the timeline (no sockets)."""

from __future__ import annotations

import random

import pytest
from chaoslib.experiment import ensure_experiment_is_valid

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.explore.catalogue import SOURCES, DrawContext, kind_named, kinds_for
from chaosagenkit.explore.experiment import build_experiment, invariant_probe_name, method_times
from chaosagenkit.explore.generate import GeneratorSettings, attempt_timeout_ms, draw_schedule
from chaosagenkit.explore.history import FaultWindow, fault_windows
from chaosagenkit.explore.host import parse_proc_net_tcp
from chaosagenkit.explore.invariants import INVARIANTS
from chaosagenkit.explore.schedule import Fault, Schedule, Traffic, TrafficEvent
from chaosagenkit.faults.service import parse_fault
from chaosagenkit.faults.toxics import build_toxic

STACK = (
    {"type": "retry", "max_retries": 3, "initial_delay": 0.05},
    {"type": "circuit_breaker", "failure_threshold": 5, "recovery_timeout_ms": 500},
    {"type": "timeout", "timeout_ms": 300},
)
SETTINGS = GeneratorSettings(stacks=(STACK, STACK[1:]), kinds=tuple(kinds_for("tcp")))


def test_schedules_round_trip_through_json() -> None:
    rng = random.Random(3)
    for _ in range(30):
        schedule = draw_schedule(rng, SETTINGS, allow_idle=True)
        again = Schedule.from_json(schedule.to_json())
        assert again.key() == schedule.key()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"faults": "x"}, "faults"),
        ({"faults": [{"start_s": 1}]}, "faults[]"),
        ({"faults": [{"kind": "service.delay", "start_s": -1}]}, "faults[].start_s"),
        ({"traffic": {"events": [{"kind": "storm"}]}}, "traffic.events[]"),
        ({"traffic": {"events": [{"kind": "burst", "size": 0}]}}, "traffic.events[].size"),
        ({"seed": -3}, "seed"),
        ({"stack": [1]}, "stack"),
    ],
)
def test_malformed_schedules_name_the_field(data: dict, field: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        Schedule.from_json(data)
    assert error.value.field == field


def test_one_seed_draws_one_sequence_of_schedules() -> None:
    first = [draw_schedule(random.Random(9), SETTINGS).key() for _ in range(3)]
    rng_a, rng_b = random.Random(9), random.Random(9)
    assert [draw_schedule(rng_a, SETTINGS).key() for _ in range(20)] == [
        draw_schedule(rng_b, SETTINGS).key() for _ in range(20)
    ]
    assert len(set(first)) == 1
    other = random.Random(10)
    assert draw_schedule(other, SETTINGS).key() != first[0]


def test_the_generator_covers_the_catalogue_stacks_overlaps_and_shapes() -> None:
    rng = random.Random(1)
    schedules = [draw_schedule(rng, SETTINGS, allow_idle=True) for _ in range(400)]
    kinds = {f.kind for s in schedules for f in s.faults}
    assert kinds == {k.name for k in SETTINGS.kinds}
    assert {len(s.stack) for s in schedules} == {len(stack) for stack in SETTINGS.stacks}
    assert {e.kind for s in schedules for e in s.traffic.events} == {"burst", "fresh_clients", "idle"}
    overlapping = [
        s
        for s in schedules
        if any(a.start_s < b.end_s and b.start_s < a.end_s for a in s.faults for b in s.faults if a is not b)
    ]
    assert overlapping
    assert any(not s.faults for s in schedules)
    assert all(e.duration_s == 62.0 for s in schedules for e in s.traffic.events if e.kind == "idle")
    no_idle = [draw_schedule(rng, SETTINGS) for _ in range(100)]
    assert not any(e.kind == "idle" for s in no_idle for e in s.traffic.events)


def test_every_drawn_fault_passes_the_validators_of_its_control_plane() -> None:
    rng = random.Random(2)
    for kind in SETTINGS.kinds:
        for _ in range(20):
            fault = Fault(kind.name, 1.0, 1.0, kind.draw(rng, DrawContext(300.0)))
            for _offset, activity in kind.activities(fault, 1):
                arguments = activity["provider"]["arguments"]
                func = activity["provider"]["func"]
                if func == "add_toxic":
                    build_toxic(arguments["toxic_type"], arguments["attributes"])
                elif func.startswith("inject_"):
                    params = {k: v for k, v in arguments.items() if k not in ("server", "duration_s")}
                    parse_fault({"kind": kind.timeline_kind, **params, "duration_s": arguments["duration_s"]})
            for simpler in kind.simplify(fault.params):
                assert set(simpler) == set(fault.params)


def test_sources_apply_where_their_control_plane_reaches() -> None:
    assert {k.source for k in kinds_for("unix")} == {"service"}
    assert {k.source for k in kinds_for("ws")} == {"service", "network"}
    assert {k.source for k in kinds_for("tcp")} == {"service", "network", "frame"}
    assert {k.source for k in kinds_for("tcp", ("frame",))} == {"frame"}
    with pytest.raises(ConfigurationError):
        kind_named("kernel.blackhole")
    assert set(SOURCES) >= {"service", "network", "frame"}


def test_the_attempt_timeout_is_the_deadline_inside_the_outermost_retry() -> None:
    assert attempt_timeout_ms(STACK, 2000) == 300
    assert attempt_timeout_ms((), 2000) == 2000


SCHEDULE = Schedule(
    faults=(
        Fault("network.latency", 1.5, 1.0, {"latency_ms": 400, "jitter_ms": 0, "stream": "downstream"}),
        Fault("service.crash", 0.5, 2.0, {"when": "now"}),
    ),
    traffic=Traffic(50.0, (TrafficEvent("burst", 1.0, size=4),)),
    stack=STACK,
    seed=77,
)


def test_the_experiment_is_valid_chaos_toolkit_with_faults_at_their_times() -> None:
    experiment = build_experiment(SCHEDULE, transport="tcp")
    ensure_experiment_is_valid(experiment)
    method = experiment["method"]
    assert method[0]["provider"]["func"] == "start_exploration_traffic"
    assert method[0]["provider"]["arguments"]["events"] == [{"kind": "burst", "at_s": 1.0, "size": 4}]
    faults = [a for a in method if a["type"] == "action"][1:]
    assert [a["provider"]["func"] for a in faults] == ["crash_server", "add_toxic", "restart_server"]
    assert [a.get("pauses", {}).get("before", 0) for a in faults] == [0.5, 1.0, 1.0]  # at 0.5, 1.5, 2.5
    latency = faults[1]["provider"]["arguments"]
    assert latency["duration_s"] == 1.0 and latency["attributes"] == {"latency": 400, "jitter": 0}
    probes = [a for a in method if a["type"] == "probe"]
    assert [p["name"] for p in probes] == [invariant_probe_name(n) for n in INVARIANTS]
    assert all(p["tolerance"] == {"type": "range", "target": "violations", "range": [0, 0]} for p in probes)
    control = experiment["controls"][0]["provider"]["arguments"]
    assert control["proxies"] == [{"name": "target_proxy", "upstream": "server:target"}]
    assert [c["name"] for c in control["clients"]] == ["caller", "explorer"]
    assert experiment["configuration"]["seed"] == 77
    assert experiment["configuration"]["client_middleware"] == [dict(layer) for layer in STACK]
    assert [t for t, _ in method_times(SCHEDULE)] == [0.5, 1.5, 2.5]


def test_a_finding_experiment_checks_only_its_invariant_and_needs_no_proxy_for_service_faults() -> None:
    service_only = SCHEDULE.replace(faults=SCHEDULE.faults[1:])
    experiment = build_experiment(service_only, invariants=["recovers_after_faults"])
    ensure_experiment_is_valid(experiment)
    probes = [a["name"] for a in experiment["method"] if a["type"] == "probe"]
    assert probes == ["invariant-recovers-after-faults"]
    control = experiment["controls"][0]["provider"]["arguments"]
    assert "proxy" not in control and all(c["server"] == "target" for c in control["clients"])


def test_fault_windows_come_from_the_timeline() -> None:
    events = [
        {"t": 10.0, "event": "start", "target": "target"},
        {"t": 11.0, "event": "inject", "target": "target", "kind": "delay", "id": "f1", "duration_s": 2.0},
        {
            "t": 11.5,
            "event": "inject",
            "target": "target_proxy",
            "kind": "latency",
            "id": "f1-latency",
            "duration_s": 5.0,
        },
        {"t": 12.0, "event": "clear", "target": "target_proxy", "id": "f1-latency"},
        {"t": 12.5, "event": "crash", "target": "target", "kind": "crash", "id": "f2"},
        {"t": 15.0, "event": "restart", "target": "target"},
        {"t": 16.0, "event": "disable", "target": "target_proxy", "kind": "proxy_down", "duration_s": 3.0},
        {"t": 17.0, "event": "crash", "target": "target", "kind": "crash"},
        {"t": 18.0, "event": "inject", "target": "target", "kind": "delay", "id": "f3", "duration_s": 9.0},
        {"t": 19.0, "event": "clear", "target": "target", "detail": {"removed": ["f9"]}},
        {"t": 20.0, "event": "clear", "target": "target", "detail": {"removed": ["f3"]}},
    ]
    assert fault_windows(events) == (
        FaultWindow("delay", "target", 11.0, 13.0),
        FaultWindow("latency", "target_proxy", 11.5, 12.0),
        FaultWindow("crash", "target", 12.5, 15.0),
        FaultWindow("proxy_down", "target_proxy", 16.0, 19.0),
        FaultWindow("crash", "target", 17.0, None),
        FaultWindow("delay", "target", 18.0, 20.0),
    )


def test_proc_net_tcp_is_parsed() -> None:
    text = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 0100007F:9C41 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4711 1 0\n"
        "   1: 0100007F:9C41 0100007F:D0A2 01 00000000:00000000 00:00000000 00000000     0        0 4712 1 0\n"
        "   2: garbage\n"
    )
    assert parse_proc_net_tcp(text) == [(0x9C41, "0A", 4711), (0x9C41, "01", 4712)]
