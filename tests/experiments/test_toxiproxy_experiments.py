"""The network experiments that use only Toxiproxy's toxics, against the real Toxiproxy.

Each must give the verdict recorded for it against chaosagenkit's proxy
(``--var toxiproxy_url=``): the evidence that the fault reached the traffic
comes from the clients when the proxy keeps no counters. A fault the real
Toxiproxy cannot inject (a frame toxic) ends the run failed, not deviated.
Skipped, with the reason, without the binary (tests/differential).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from chaosagenkit.suite import plan_runs
from tests.differential.toxiproxy_support import real_toxiproxy
from tests.experiments.conftest import EXPERIMENTS, assert_nothing_left_behind, run_plan

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_network, pytest.mark.slow]

#: Network experiments whose faults are all Toxiproxy's own (toxics, disabling a proxy).
TOXIPROXY_ONLY = (
    "network_latency",
    "connection_drop",
    "connection_timeout",
    "connection_refused",
    "network_partition",
)


@pytest.fixture(scope="module")
def toxiproxy_url() -> Iterator[str]:
    with real_toxiproxy() as url:
        yield url


def plans(name: str, transports=("tcp", "http")):
    return [p for p in plan_runs([EXPERIMENTS / f"{name}.json"]) if p.transport in transports]


def extension(document: dict[str, Any]) -> dict[str, Any]:
    return next(e for e in document.get("extensions") or [] if e.get("name") == "chaosagenkit")


def evidence_probes(experiment: dict[str, Any]) -> set[str]:
    """Names of the method probes that check the fault reached the traffic."""
    return {
        a["name"]
        for a in experiment["method"]
        if a["type"] == "probe" and a["provider"].get("func") == "traffic_impacted"
    }


@pytest.mark.parametrize("name", TOXIPROXY_ONLY)
def test_a_toxiproxy_only_experiment_gives_its_recorded_verdict_against_the_real_toxiproxy(
    name, toxiproxy_url, tmp_path
):
    for plan in plans(name):
        if plan.skip_reason:
            continue
        result, journal = run_plan(plan, tmp_path, toxiproxy_url=toxiproxy_url)
        assert result.verdict == plan.recorded, f"{plan.label} against Toxiproxy: {result.detail}"
        expectations = extension(journal)["expectations"]
        unmet = sorted(e["activity"] for e in expectations if not e["met"])
        experiment = json.loads(plan.path.read_text())
        recorded = (extension(experiment).get("deviations") or {}).get(plan.transport)
        if recorded is not None:  # the same expectations deviate as against our proxy
            assert unmet == sorted(n for n in recorded if not n.startswith("steady-state:")), plan.label
        # whatever deviates, it is never the evidence: the clients saw the fault through Toxiproxy
        assert not evidence_probes(experiment) & set(unmet), f"{plan.label}: no evidence ({unmet})"
        assert_nothing_left_behind(journal)


def test_a_fault_the_real_toxiproxy_cannot_inject_fails_the_run(toxiproxy_url, tmp_path, monkeypatch):
    """A frame toxic (ours only) against Toxiproxy: the run ends "failed" with the reason, not "deviated"."""
    from chaoslib.experiment import run_experiment

    monkeypatch.chdir(tmp_path)
    with socket.socket() as upstream:
        upstream.bind(("127.0.0.1", 0))
        upstream.listen()
        experiment = {
            "title": "a frame fault on a real Toxiproxy",
            "description": "the fault cannot be injected there",
            "controls": [
                {
                    "name": "chaosagenkit",
                    "provider": {
                        "type": "python",
                        "module": "chaosagenkit.control",
                        "arguments": {
                            "seed": 42,
                            "proxy": {"name": "proxy", "url": toxiproxy_url},
                            "proxies": [
                                {
                                    "name": "target_proxy",
                                    "upstream": f"127.0.0.1:{upstream.getsockname()[1]}",
                                }
                            ],
                        },
                    },
                }
            ],
            "method": [
                {
                    "type": "action",
                    "name": "corrupt-messages",
                    "provider": {
                        "type": "python",
                        "module": "chaosagenkit.network.actions",
                        "func": "inject_malformed_payload",
                        "arguments": {"proxy": "target_proxy"},
                    },
                }
            ],
        }
        journal = run_experiment(experiment, settings={})
    assert journal["status"] == "failed"
    assert not journal["deviated"]
    [reason] = extension(journal)["not_injected"]
    assert "needs chaosagenkit's proxy" in reason and "\n" not in reason
    assert_nothing_left_behind(journal)
