"""Real journals for the report tests: tiny experiments run through chaoslib.

Each builder runs an experiment with ``chaoslib.experiment.run_experiment``
(the code ``chaos run`` uses), with chaosagenkit's own control declared, so
statuses, deviations, method expectations and the fault timeline are the
ones Chaos Toolkit and chaosagenkit really write.

``add_traffic`` is the one fake: it adds client outcomes and stretches the
run to a realistic length (tens of seconds, thousands of requests). The
client harness is another part of the system and a real run of that length
would make every report test slow, so the outcomes are drawn from a seeded
RNG that follows the recorded fault windows (latency up in a latency
window, errors in a failure window, nothing answers while crashed).
"""

from __future__ import annotations

import json
import logging
import math
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from chaoslib.experiment import run_experiment

PROVIDERS = "tests.report.providers"
CONTROL = {"name": "chaosagenkit", "provider": {"type": "python", "module": "chaosagenkit.control"}}


def probe(name: str, output: Any, tolerance: Any = None, func: str = "value") -> dict[str, Any]:
    activity: dict[str, Any] = {
        "type": "probe",
        "name": name,
        "provider": {"type": "python", "module": PROVIDERS, "func": func, "arguments": {}},
    }
    if func == "value":
        activity["provider"]["arguments"]["v"] = output
    if tolerance is not None:
        activity["tolerance"] = tolerance
    return activity


def action(name: str, func: str = "value", **arguments: Any) -> dict[str, Any]:
    return {
        "type": "action",
        "name": name,
        "provider": {"type": "python", "module": PROVIDERS, "func": func, "arguments": arguments},
    }


def inject(name: str, target: str, kind: str, fault_id: str, duration_s: float) -> dict[str, Any]:
    return action(
        name, "record", event="inject", target=target, kind=kind, fault_id=fault_id, duration_s=duration_s
    )


def experiment(
    title: str,
    probes: list[dict[str, Any]],
    method: list[dict[str, Any]],
    *,
    rollbacks: list[dict[str, Any]] | None = None,
    transport: str | None = "tcp",
    plan: dict[str, Any] | None = None,
    controls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    exp: dict[str, Any] = {
        "title": title,
        "description": f"{title}: a report fixture",
        "tags": ["agenkit", "report-fixture"],
        "configuration": {"transport": transport} if transport else {},
        "controls": [CONTROL] if controls is None else controls,
        "method": method,
        "rollbacks": rollbacks or [],
    }
    if probes:
        exp["steady-state-hypothesis"] = {"title": "the agent answers", "probes": probes}
    if plan:
        exp["extensions"] = [{"name": "chaosagenkit", **plan}]
    return exp


def run(exp: dict[str, Any], experiment_vars: tuple[dict, dict] | None = None) -> dict[str, Any]:
    """Run ``exp`` through chaoslib; return the journal as ``chaos run`` saves it (JSON)."""
    logging.getLogger("chaostoolkit").setLevel(logging.CRITICAL)  # keep test output readable
    journal = run_experiment(exp, experiment_vars=experiment_vars)
    return json.loads(json.dumps(journal, default=str))


# -- the journals every report test uses ---------------------------------------------------


def held() -> dict[str, Any]:
    return run(
        experiment(
            "Retry under transient failures",
            [probe("success-rate", 0.99, [0.95, 1.0])],
            [
                inject("inject-failures", "target", "failure_rate", "f1", 12),
                probe("retries-absorbed-failures", 0.98, [0.9, 1.0]),
                action("clear-faults", "record", event="clear", target="target"),
            ],
            plan={"plan": "3.2", "verdicts": {"tcp": "holds", "http": "holds"}},
        )
    )


def deviated_after() -> dict[str, Any]:
    """The steady state does not hold after the method: the crashed server stays down."""
    answers = probe("target-answers", None, True, func="target_answers")
    return run(
        experiment(
            "Server crash and reconnect",
            [answers],
            [action("crash-server", "record", event="crash", target="target")],
            plan={
                "plan": "2.1",
                "verdicts": {"tcp": "deviates"},
                "findings": {"tcp": "RemoteAgent never reconnects after the connection breaks"},
            },
        )
    )


def deviated_expectation() -> dict[str, Any]:
    """A method expectation is not met; chaosagenkit's control marks the run deviated."""
    return run(
        experiment(
            "Circuit breaker under failures",
            [probe("success-rate", 1.0, [0.95, 1.0])],
            [
                inject("inject-failures", "target_proxy", "reset_peer", "f1", 20),
                probe("circuit-state", "closed", "open"),
                action("clear-faults", "record", event="clear", target="target_proxy", fault_id="f1"),
            ],
            plan={"plan": "3.1", "verdicts": {"tcp": "holds"}},
        )
    )


def baseline_not_met() -> dict[str, Any]:
    return run(
        experiment(
            "Rate limiter under load",
            [probe("p95-latency-ms", 950, [0, 500])],
            [inject("inject-latency", "target_proxy", "latency", "f1", 5)],
        )
    )


def failed() -> dict[str, Any]:
    """A steady-state probe raises."""
    return run(
        experiment(
            "Malformed responses",
            [probe("answers", None, True, func="fail")],
            [action("inject-malformed", "record", event="inject", target="target", kind="malformed")],
        )
    )


def aborted() -> dict[str, Any]:
    """The method hits an unexpected error (a provider function that does not exist)."""
    method = [action("inject-latency", "no_such_function")]
    return run(experiment("Slow responses", [probe("answers", True, True)], method))


def interrupted() -> dict[str, Any]:
    """A method action interrupts the run (as a safeguard would) after a fault was injected."""
    return run(
        experiment(
            "Connection drops",
            [probe("answers", True, True)],
            [
                inject("drop-connections", "target_proxy", "reset_peer", "f1", 30),
                action("stop", "interrupt", reason="safeguard tripped"),
                probe("errors-seen", 3, [1, 10]),
            ],
            rollbacks=[action("clear-faults", "record", event="clear", target="target_proxy")],
        )
    )


def interrupted_by_control() -> dict[str, Any]:
    """A control stops the run before the method, as a failed sandbox set-up does."""
    control = {"name": "stopper", "provider": {"type": "python", "module": PROVIDERS}}
    return run(
        experiment(
            "Network latency",
            [probe("answers", True, True)],
            [inject("inject-latency", "target_proxy", "latency", "f1", 10)],
            controls=[CONTROL, control],
        )
    )


def plain() -> dict[str, Any]:
    """A journal of plain ``chaos run``: no chaosagenkit control, no extension."""
    return run(
        experiment(
            "Plain experiment",
            [probe("service-is-up", True, True)],
            [action("do-something"), probe("look-around", {"items": 3})],
            controls=[],
            transport=None,
        )
    )


# -- the one fake: client traffic ----------------------------------------------------------


def add_traffic(
    journal: dict[str, Any],
    *,
    seed: int = 7,
    duration_s: float = 40.0,
    rate_per_s: float = 75.0,
    clients: tuple[str, ...] = ("caller",),
) -> dict[str, Any]:
    """Stretch the run to ``duration_s`` and add seeded client outcomes (see module docstring).

    Timeline entries keep their order and are spread over the run: the
    first fault starts at a quarter of the run. ``duration_s`` limits each
    fault as recorded.
    """
    ext = next(e for e in journal["extensions"] if e["name"] == "chaosagenkit")
    start = datetime.fromisoformat(journal["start"])
    t_start = start.timestamp()
    events = ext["timeline"]
    for i, event in enumerate(events):
        event["t"] = t_start + duration_s * (0.25 + 0.5 * i / max(len(events), 1))
    journal["end"] = (start + timedelta(seconds=duration_s)).isoformat()
    journal["duration"] = duration_s
    _spread_entries(journal, start, duration_s)
    windows = _windows_for_traffic(events, t_start + duration_s)
    rng = random.Random(seed)
    ext["clients"] = {}
    for name in clients:
        columns: dict[str, list[Any]] = {"t": [], "latency_ms": [], "ok": [], "error": [], "wrong": []}
        t = 0.5
        while t < duration_s - 0.5:
            kinds = {kind for (a, b, kind) in windows if a <= t_start + t <= b}
            latency = rng.lognormvariate(math.log(8), 0.35)
            ok, error, wrong = 1, None, 0
            if "latency" in kinds:
                latency += 400 + rng.uniform(-50, 50)
            if "crashed" in kinds or "disabled" in kinds:
                ok, error, latency = 0, "ConnectionError", rng.uniform(0.2, 2)
            elif kinds & {"failure_rate", "reset_peer"} and rng.random() < 0.4:
                ok, error = 0, "RemoteExecutionError"
            elif "malformed" in kinds and rng.random() < 0.1:
                wrong = 1
            for column, value in zip(
                columns, (round(t, 4), round(latency, 3), ok, error, wrong), strict=True
            ):
                columns[column].append(value)
            t += rng.expovariate(rate_per_s)
        ext["clients"][name] = {
            "endpoint": "tcp://127.0.0.1:40123",
            "middleware": [{"type": "retry", "max_retries": 3}],
            "t0": t_start,
            "outcomes": columns,
        }
    return journal


def _spread_entries(journal: dict[str, Any], start: datetime, duration_s: float) -> None:
    """Place the run entries over the stretched run, in their order."""
    steady = journal["steady_states"]
    phases = [
        (steady.get("before") or {}).get("probes", []),
        journal["run"],
        (steady.get("after") or {}).get("probes", []),
        journal["rollbacks"],
    ]
    entries = [e for phase in phases for e in phase]
    for i, entry in enumerate(entries):
        at = start + timedelta(seconds=duration_s * i / max(len(entries), 1))
        took = timedelta(seconds=entry.get("duration") or 0)
        entry["start"] = at.isoformat()
        if "end" in entry:
            entry["end"] = (at + took).isoformat()


def _windows_for_traffic(events: list[dict[str, Any]], run_end: float) -> list[tuple[float, float, str]]:
    from chaosagenkit.report.windows import fault_windows

    return [(w.start, w.end, w.kind) for w in fault_windows(events, run_end)]


# -- the small journals stored in tests/fixtures/journals -----------------------------------

#: file name -> (builder, add traffic); regenerate with ``python -m tests.report.journals``
STORED = {
    "plain-completed.json": (plain, False),
    "held-with-traffic.json": (held, True),
    "deviated-expectation.json": (deviated_expectation, True),
    "interrupted.json": (interrupted, True),
    "failed.json": (failed, False),
}


def write_stored(folder: Path) -> list[Path]:
    """(Re)write the stored fixture journals: short runs, a few hundred outcomes each."""
    written = []
    for name, (build, traffic) in STORED.items():
        data = build()
        if traffic:
            add_traffic(data, seed=len(name), duration_s=10, rate_per_s=20)
        path = folder / name
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_stored(Path(__file__).resolve().parent.parent / "fixtures" / "journals"):
        print(written_path)
