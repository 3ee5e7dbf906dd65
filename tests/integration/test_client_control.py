"""Clients declared in chaosagenkit.control, driven by a real chaoslib run, exported to the journal."""

from __future__ import annotations

import json

import pytest
from chaoslib.experiment import run_experiment

from chaosagenkit.control import EXTENSION_NAME
from chaosagenkit.sandbox import SANDBOX

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_middleware, pytest.mark.slow]

CLIENT = "chaosagenkit.client"


def activity(kind: str, name: str, module: str, func: str, tolerance=None, **arguments) -> dict:
    entry = {
        "type": kind,
        "name": name,
        "provider": {"type": "python", "module": f"{CLIENT}.{module}", "func": func, "arguments": arguments},
    }
    if tolerance is not None:
        entry["tolerance"] = tolerance
    return entry


def experiment(method: list[dict]) -> dict:
    return {
        "title": "clients declared in the control",
        "description": "a direct and a proxied client exist before the hypothesis",
        "controls": [{"name": "chaosagenkit", "provider": {
            "type": "python", "module": "chaosagenkit.control", "arguments": {
                "seed": "11",
                "servers": [{"name": "target", "agent": "chaosagenkit.targets:echo"}],
                "proxy": {"name": "proxy"},
                "proxies": [{"name": "target_proxy", "upstream": "server:target"}],
                "clients": [
                    {"name": "direct", "server": "target",
                     "middleware": [{"type": "circuit_breaker", "failure_threshold": 3}]},
                    {"name": "proxied", "proxy": "target_proxy", "timeout_ms": 2000},
                ],
            }}}],
        "steady-state-hypothesis": {"title": "both clients are answered", "probes": [
            activity("probe", "direct answers", "probes", "send_requests", client="direct", count=5,
                     tolerance={"type": "range", "target": "success_ratio", "range": [1.0, 1.0]}),
            activity("probe", "proxied answers", "probes", "send_requests", client="proxied", count=5,
                     tolerance={"type": "range", "target": "success_ratio", "range": [1.0, 1.0]}),
        ]},
        "method": method,
    }  # fmt: skip


def extension(journal: dict) -> dict:
    return next(e for e in journal["extensions"] if e["name"] == EXTENSION_NAME)


def test_declared_clients_run_traffic_and_their_outcomes_reach_the_journal():
    journal = run_experiment(experiment([
        activity("action", "load", "actions", "start_traffic", client="proxied", rate_per_s=40,
                 duration_s=30, concurrency=2),
        activity("probe", "batch", "probes", "send_requests", client="direct", count=20, concurrency=1,
                 tolerance={"type": "range", "target": "success_ratio", "range": [1.0, 1.0]}),
        activity("probe", "breaker closed", "probes", "circuit_state", client="direct", tolerance="closed"),
        activity("probe", "some traffic", "probes", "traffic_summary", client="proxied",
                 tolerance={"type": "range", "target": "ok", "range": [1, 1_000_000]}),
        activity("action", "stop load", "actions", "stop_traffic", client="proxied"),
        activity("probe", "no wrong answers", "probes", "wrong_answers", client="proxied", tolerance=0),
    ]))  # fmt: skip
    assert journal["status"] == "completed", journal
    assert journal["deviated"] is False
    ext = extension(journal)
    assert ext["expectations_met"] is True and len(ext["expectations"]) == 4
    clients = ext["clients"]
    assert set(clients) == {"direct", "proxied"}
    direct, proxied = clients["direct"], clients["proxied"]
    assert direct["middleware"] == [{"type": "circuit_breaker", "failure_threshold": 3}]
    assert direct["endpoint"].startswith("tcp://127.0.0.1:")
    assert proxied["endpoint"].startswith("tcp://127.0.0.1:") and proxied["endpoint"] != direct["endpoint"]
    outcomes = direct["outcomes"]
    assert len(outcomes["t"]) == 5 + 5 + 20  # hypothesis before and after, and the method's batch
    assert outcomes["ok"] == [1] * 30 and outcomes["error"] == [None] * 30 and outcomes["wrong"] == [0] * 30
    assert outcomes["t"] == sorted(outcomes["t"]) and outcomes["t"][0] >= 0
    assert len(proxied["outcomes"]["t"]) > 10 and set(proxied["outcomes"]["ok"]) == {1}
    assert SANDBOX.clients == {}  # the control closed and forgot them


def test_a_bad_client_declaration_interrupts_the_run_before_the_hypothesis():
    exp = experiment([])
    exp["controls"][0]["provider"]["arguments"]["clients"][0]["middleware"] = [{"type": "retry", "tries": 3}]
    journal = run_experiment(exp)
    assert journal["status"] == "interrupted"
    assert journal["steady_states"]["before"] is None
    assert SANDBOX.clients == {} and SANDBOX.servers == {}


def service(kind: str, func: str, **arguments) -> dict:
    return {"type": kind, "name": func, "provider": {
        "type": "python", "module": f"chaosagenkit.service.{'actions' if kind == 'action' else 'probes'}",
        "func": func, "arguments": arguments}}  # fmt: skip


def test_two_tier_experiment_fault_behind_the_relay_opens_the_relays_breaker_then_recovers():
    relay_middleware = [{"type": "circuit_breaker", "failure_threshold": 4, "recovery_timeout_ms": 200,
                         "success_threshold": 1}]  # fmt: skip
    exp = {
        "title": "a failing backend behind a relay",
        "description": "the relay's own agenkit breaker opens, fails fast, and closes after the fault",
        "controls": [{"name": "chaosagenkit", "provider": {
            "type": "python", "module": "chaosagenkit.control", "arguments": {
                "seed": "5",
                "servers": [
                    {"name": "backend", "agent": "chaosagenkit.targets:echo"},
                    {"name": "relay", "agent": "chaosagenkit.targets:relay", "env": {
                        "CHAOSAGENKIT_RELAY_ENDPOINT": "{server:backend}",
                        "CHAOSAGENKIT_RELAY_MIDDLEWARE": json.dumps(relay_middleware)}},
                ],
                "clients": [{"name": "caller", "server": "relay"}],
            }}}],
        "steady-state-hypothesis": {"title": "answered through the relay", "probes": [
            activity("probe", "relay answers", "probes", "send_requests", client="caller", count=3,
                     tolerance={"type": "range", "target": "success_ratio", "range": [1.0, 1.0]}),
        ]},
        "method": [
            activity("action", "load", "actions", "start_traffic", client="caller", rate_per_s=40,
                     duration_s=60, concurrency=2),
            service("action", "inject_failure_rate", server="backend", rate=1.0),
            activity("probe", "burst fails", "probes", "send_requests", client="caller", count=6,
                     tolerance={"type": "range", "target": "ok", "range": [0, 0]}),
            activity("probe", "relay breaker open", "probes", "circuit_state", server="relay", tolerance="open"),
            service("action", "clear_faults", server="backend"),
            activity("probe", "recovered", "probes", "time_to_recover", client="caller", target="backend",
                     consecutive=3, timeout_s=20, tolerance=[0, 20]),
            activity("probe", "relay breaker closed", "probes", "circuit_state", server="relay",
                     tolerance="closed"),
            activity("action", "stop load", "actions", "stop_traffic", client="caller"),
        ],
    }  # fmt: skip
    journal = run_experiment(exp)
    assert journal["status"] == "completed", [r.get("exception") for r in journal["run"]]
    assert journal["deviated"] is False
    ext = extension(journal)
    assert ext["expectations_met"] is True, ext["expectations"]
    events = [(e["event"], e["target"]) for e in ext["timeline"]]
    assert ("inject", "backend") in events and ("clear", "backend") in events
    outcomes = ext["clients"]["caller"]["outcomes"]
    assert "RemoteExecutionError" in outcomes["error"] and sum(outcomes["wrong"]) == 0
