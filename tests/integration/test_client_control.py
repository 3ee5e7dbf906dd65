"""Clients declared in chaosagenkit.control, driven by a real chaoslib run, exported to the journal."""

from __future__ import annotations

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
