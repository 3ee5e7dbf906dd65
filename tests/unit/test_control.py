"""chaosagenkit.control without any server: expectations, journal extension, seed."""

from __future__ import annotations

import json

import pytest
from chaoslib.experiment import run_experiment

from chaosagenkit.control import EXTENSION_NAME, evaluate_expectations


def answer(value):
    """A probe for these tests: returns what it is given."""
    return value


def probe(name: str, value, tolerance) -> dict:
    return {
        "type": "probe",
        "name": name,
        "tolerance": tolerance,
        "provider": {"type": "python", "module": __name__, "func": "answer", "arguments": {"value": value}},
    }


def experiment(method: list[dict], seed="7") -> dict:
    return {
        "title": "control test",
        "description": "method expectations decide the verdict",
        "controls": [
            {
                "name": "chaosagenkit",
                "provider": {"type": "python", "module": "chaosagenkit.control", "arguments": {"seed": seed}},
            }
        ],
        "steady-state-hypothesis": {"title": "always", "probes": [probe("steady", 1, 1)]},
        "method": method,
    }


def extension(journal: dict) -> dict:
    return next(e for e in journal["extensions"] if e["name"] == EXTENSION_NAME)


@pytest.mark.parametrize(
    "runs,met",
    [
        (
            [
                {
                    "activity": {"type": "probe", "name": "p", "tolerance": [1, 3]},
                    "status": "succeeded",
                    "output": 2,
                }
            ],
            [True],
        ),
        (
            [
                {
                    "activity": {"type": "probe", "name": "p", "tolerance": [1, 3]},
                    "status": "succeeded",
                    "output": 4,
                }
            ],
            [False],
        ),
        (
            [
                {
                    "activity": {"type": "probe", "name": "p", "tolerance": "open"},
                    "status": "failed",
                    "output": None,
                }
            ],
            [False],
        ),
        ([{"activity": {"type": "probe", "name": "p"}, "status": "succeeded", "output": 4}], []),
        (
            [
                {
                    "activity": {"type": "action", "name": "a", "tolerance": 1},
                    "status": "succeeded",
                    "output": 4,
                }
            ],
            [],
        ),
        (
            [
                {
                    "activity": {
                        "type": "probe",
                        "name": "p",
                        "tolerance": {"type": "range", "target": "x", "range": [0, 1]},
                    },
                    "status": "succeeded",
                    "output": {"x": 0.5},
                }
            ],
            [True],
        ),
    ],
)
def test_evaluate_expectations_marks_run_entries(runs, met):
    results = evaluate_expectations(runs)
    assert [r["met"] for r in results] == met
    assert [r.get("tolerance_met") for r in runs if "tolerance_met" in r] == met


def test_unmet_method_expectation_makes_the_run_deviate_and_is_recorded():
    journal = run_experiment(experiment([probe("opens", "closed", "open")]))
    assert journal["status"] == "completed"
    assert journal["deviated"] is True
    ext = extension(journal)
    assert ext["seed"] == 7
    assert ext["expectations_met"] is False
    assert ext["expectations"][0]["output"] == "closed"
    assert journal["run"][0]["tolerance_met"] is False


def test_met_method_expectations_leave_the_run_holding():
    journal = run_experiment(experiment([probe("opens", "open", "open"), probe("fast", 2.5, [0, 5])]))
    assert journal["status"] == "completed"
    assert journal["deviated"] is False
    assert extension(journal)["expectations_met"] is True


def test_bad_seed_stops_the_run_before_the_hypothesis():
    journal = run_experiment(experiment([probe("x", 1, 1)], seed="not-a-number"))
    assert journal["status"] == "interrupted"
    assert journal["steady_states"]["before"] is None


def test_missing_seed_is_drawn_and_recorded():
    journal = run_experiment(experiment([probe("x", 1, 1)], seed=""))
    assert isinstance(extension(journal)["seed"], int)


def test_method_tolerances_take_values_from_configuration():
    runs = [
        {
            "activity": {
                "type": "probe",
                "name": "p",
                "tolerance": {"type": "range", "target": "x", "range": "${bounds}"},
            },
            "status": "succeeded",
            "output": {"x": 5},
        }
    ]
    assert [r["met"] for r in evaluate_expectations(runs, {"bounds": [0, 4]})] == [False]
    assert [r["met"] for r in evaluate_expectations(runs, {"bounds": [0, 5]})] == [True]


def test_an_interruption_by_the_control_says_why_in_the_journal():
    journal = run_experiment(experiment([probe("x", 1, 1)], seed="-3"))
    assert journal["status"] == "interrupted"
    assert journal["interruption"]["name"] == "chaosagenkit"
    assert "'seed' must be >= 0" in journal["interruption"]["reason"]


def test_credentials_in_the_configuration_stay_out_of_the_extension():
    run = experiment([probe("x", 1, 1)])
    run["configuration"] = {
        "chaosagenkit_server_token": "tok-1",
        "toxiproxy_token": "tok-2",
        "API_KEY": "key-3",
        "db_Password": "pw-4",
        "client_secret": "sec-5",
        "transport": "tcp",
        "count": 3,
    }
    ext = extension(run_experiment(run))
    assert ext["configuration"] == {"transport": "tcp", "count": 3}
    for value in ("tok-1", "tok-2", "key-3", "pw-4", "sec-5"):
        assert value not in json.dumps(ext)


@pytest.mark.parametrize(
    "seed,reason",
    [
        (1.9, "'seed' must be an integer, got 1.9"),
        (True, "'seed' must be an integer, got True"),
        ("1.9", "'seed' must be an integer, got '1.9'"),
        (10**400, "'seed' must be an integer between 0 and 2**64 - 1, got an integer of 401 digits"),
    ],
)
def test_a_seed_that_is_not_an_integer_is_refused_not_truncated(seed, reason):
    journal = run_experiment(experiment([probe("x", 1, 1)], seed=seed))
    assert journal["status"] == "interrupted"
    assert reason in journal["interruption"]["reason"]


@pytest.mark.parametrize("seed,recorded", [(12, 12), ("12", 12), (3.0, 3)])
def test_integer_seeds_are_taken_as_given(seed, recorded):
    assert extension(run_experiment(experiment([probe("x", 1, 1)], seed=seed)))["seed"] == recorded


# -- verdicts in the journal -------------------------------------------------------------


def test_a_baseline_not_met_is_marked_failed_so_plain_chaos_run_exits_non_zero():
    run = experiment([probe("x", 1, 1)])
    run["steady-state-hypothesis"]["probes"] = [probe("steady", 0.5, [1, 1])]
    journal = run_experiment(run)
    assert journal["status"] == "failed"  # chaoslib alone writes "completed", not deviated
    ext = extension(journal)
    assert ext["verdict"] == "baseline_not_met"
    assert ext["reason"].startswith(
        "baseline not met, nothing was injected: steady state before: steady = 0.5"
    )
    assert ext["deviations"] == ["steady-state:steady"]


def test_a_method_action_that_raised_fails_the_run():
    run = experiment([probe("x", 1, 1)])
    run["method"].insert(
        0,
        {
            "type": "action",
            "name": "inject",
            "provider": {"type": "python", "module": "chaosagenkit.service.actions", "func": "inject_delay",
                         "arguments": {"server": "nowhere", "delay_ms": 5}},
        },
    )  # fmt: skip
    journal = run_experiment(run)
    assert journal["status"] == "failed"
    ext = extension(journal)
    assert ext["verdict"] == "failed"
    assert ext["reason"].startswith("method action: inject raised: inject_delay:")
    assert ext["reason"].endswith("the fault may not be in place")


def test_the_verdict_and_deviations_are_recorded_in_the_extension():
    ext = extension(run_experiment(experiment([probe("opens", "closed", "open"), probe("fast", 2, [0, 5])])))
    assert (ext["verdict"], ext["deviations"]) == ("deviates", ["opens"])
    assert ext["reason"] == 'method: opens = "closed", outside tolerance "open"'
    ext = extension(run_experiment(experiment([probe("fast", 2, [0, 5])])))
    assert (ext["verdict"], ext["deviations"]) == ("holds", [])


def test_the_extension_names_what_was_tested():
    run = experiment([probe("x", 1, 1)])
    run["configuration"] = {"bound": [0, 5], "count": 3, "api_key": "k"}
    run["steady-state-hypothesis"]["probes"] = [probe("steady", 1, "${bound}")]
    journal = run_experiment(run, experiment_vars=({"count": 4}, {}))
    ext = extension(journal)
    assert ext["versions"]["chaosagenkit"] and ext["versions"]["agenkit"].startswith("0.92")
    assert ext["versions"]["python"].count(".") == 2 and ext["versions"]["chaostoolkit-lib"]
    assert ext["overrides"] == {"count": 4}
    assert ext["configuration"] == {"bound": [0, 5], "count": 4}
    assert ext["tolerances"] == {"steady": [0, 5]}  # resolved, the journal keeps "${bound}"
    assert journal["steady_states"]["before"]["probes"][0]["activity"]["tolerance"] == "${bound}"


# -- configuration checked before anything starts -----------------------------------------


def test_string_values_are_read_as_the_experiment_declares_them():
    """Plain `chaos run --var count=4` passes the string "4"; the activity gets the number."""
    run = experiment([probe("x", "${count}", 4), probe("y", "${flags}", [[1, 2], [1, 2]])])
    run["configuration"] = {"count": 3, "flags": [0]}
    journal = run_experiment(run, experiment_vars=({"count": "4", "flags": "[1, 2]"}, {}))
    assert journal["run"][0]["output"] == 4 and journal["run"][1]["output"] == [1, 2]
    assert extension(journal)["verdict"] == "holds"


def test_a_value_of_the_wrong_kind_stops_the_run_naming_the_key():
    run = experiment([probe("x", 1, 1)])
    run["configuration"] = {"count": 3, "bound": [0, 5]}
    journal = run_experiment(run, experiment_vars=({"count": "many", "bound": "7"}, {}))
    assert journal["status"] == "interrupted" and journal["steady_states"]["before"] is None
    reason = journal["interruption"]["reason"]
    assert "configuration 'count': expected a number like the experiment's 3, got 'many'" in reason
    assert "configuration 'bound': expected a list like the experiment's [0, 5], got '7'" in reason


def test_a_fixed_endpoint_without_the_host_serving_it_is_refused_before_anything_starts():
    run = experiment([probe("x", 1, 1)])
    run["configuration"] = {"target_endpoint": "tcp://10.0.0.5:9000", "target_control_url": ""}
    run["controls"][0]["provider"]["arguments"].update(
        servers=[{"name": "target", "control_url": "${target_control_url}"}],
        clients=[{"name": "caller", "server": "target", "endpoint": "${target_endpoint}"}],
    )
    journal = run_experiment(run)
    assert journal["status"] == "interrupted"
    assert journal["interruption"]["reason"].startswith(
        "configuration 'target_endpoint' (tcp://10.0.0.5:9000) is set but 'target_control_url' is not"
    )
    assert extension(journal)["timeline"] == []  # nothing was started


def test_a_run_that_checks_nothing_is_failed_but_stays_completed_for_chaos_toolkit():
    run = experiment([probe("x", 1, None)])
    del run["steady-state-hypothesis"]
    run["method"][0].pop("tolerance")
    journal = run_experiment(run)
    assert journal["status"] == "completed"  # Chaos Toolkit's "just exploring"
    assert extension(journal)["verdict"] == "failed"
    assert extension(journal)["reason"].startswith("nothing was checked")
