"""The control and a chaos host it did not start: re-seeded with the run's seed, on the timeline."""

from __future__ import annotations

import pytest
from chaoslib.experiment import run_experiment

from chaosagenkit.control_client import ControlClient
from chaosagenkit.seeds import derive_seed
from tests.integration.test_service_hosts import elsewhere  # the host "running elsewhere"

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_service]


def test_an_external_host_gets_the_runs_derived_seed_recorded_on_the_timeline(elsewhere):
    url, configuration = elsewhere
    experiment = {
        "title": "an external host is re-seeded",
        "description": "its fault decisions replay from the run's seed like a started host's",
        "configuration": {**configuration, "target_control_url": url},
        "controls": [
            {
                "name": "chaosagenkit",
                "provider": {
                    "type": "python",
                    "module": "chaosagenkit.control",
                    "arguments": {
                        "seed": 5,
                        "servers": [{"name": "target", "control_url": "${target_control_url}"}],
                    },
                },
            }
        ],
        "steady-state-hypothesis": {
            "title": "up",
            "probes": [
                {
                    "type": "probe",
                    "name": "up",
                    "tolerance": True,
                    "provider": {
                        "type": "python",
                        "module": "chaosagenkit.service.probes",
                        "func": "server_is_up",
                        "arguments": {"server": "target"},
                    },
                }
            ],
        },
        "method": [],
    }
    journal = run_experiment(experiment)
    ext = next(e for e in journal["extensions"] if e["name"] == "chaosagenkit")
    expected = derive_seed(5, "server:target")
    (seed_event,) = [e for e in ext["timeline"] if e["event"] == "seed"]
    assert (seed_event["target"], seed_event["detail"]["seed"]) == ("target", expected)
    assert ext["agents"] == {"target": f"external {url}"}
    assert ControlClient(url, configuration["chaosagenkit_server_token"]).get("/health")["seed"] == expected
