"""The pytest plugin: a team's pytest runs its experiments; off unless enabled.

Tiny experiments with chaosagenkit's control and a local probe module (no
server: the verdict logic is what is tested here), run by a real pytest
through ``pytester``.
"""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

PROBES = "def value(v):\n    return v\n"


def experiment(
    name: str, verdicts: dict, *, opens: str = "open", deviations=None, skip=None, tags=()
) -> dict:
    extension = {"name": "chaosagenkit", "transports": list(verdicts) + list(skip or {}), "verdicts": verdicts,
                 "findings": {t: f"{name}: agenkit does X" for t in verdicts}}  # fmt: skip
    if deviations is not None:
        extension["deviations"] = deviations
    if skip:
        extension["skip"] = skip

    def probe(probe_name: str, v, tolerance) -> dict:
        return {
            "type": "probe",
            "name": probe_name,
            "tolerance": tolerance,
            "provider": {"type": "python", "module": "team_probes", "func": "value", "arguments": {"v": v}},
        }

    return {
        "title": name,
        "description": "plugin test",
        "tags": list(tags),
        "configuration": {"transport": "tcp", "state": opens},
        "controls": [
            {"name": "chaosagenkit", "provider": {"type": "python", "module": "chaosagenkit.control"}}
        ],
        "steady-state-hypothesis": {"title": "up", "probes": [probe("up", 1, 1)]},
        "method": [probe("opens", "${state}", "open")],
        "extensions": [extension],
    }


@pytest.fixture
def team(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(team_probes=PROBES, test_ordinary="def test_ordinary():\n    assert True\n")
    pytester.syspathinsert()
    folder = pytester.mkdir("experiments")
    files = {
        "holds": experiment("holds", {"tcp": "holds"}, skip={"http": "no meaning over http"}, tags=["middleware"]),
        "known": experiment("known", {"tcp": "deviates"}, opens="closed", deviations={"tcp": ["opens"]}),
        "unrecorded": experiment("unrecorded", {"tcp": "deviates"}, opens="closed"),
        "new_deviation": experiment("new_deviation", {"tcp": "deviates"}, opens="closed", deviations={"tcp": ["x"]}),
        "fixed": experiment("fixed", {"tcp": "deviates"}, deviations={"tcp": ["opens"]}),
        "regressed": experiment("regressed", {"tcp": "holds"}, opens="closed", tags=["network"]),
    }  # fmt: skip
    for name, content in files.items():
        (folder / f"{name}.json").write_text(json.dumps(content))
    (folder / "notes.json").write_text('{"not": "an experiment"}')
    return pytester


def test_off_unless_enabled_an_ordinary_run_is_unchanged(team):
    result = team.runpytest_subprocess("-p", "no:cacheprovider", "experiments", "test_ordinary.py")
    result.assert_outcomes(passed=1)


def test_one_item_per_experiment_and_transport_judged_against_the_record(team):
    result = team.runpytest_subprocess(
        "-p", "no:cacheprovider", "--chaos-experiments", "experiments", "-rxXs", "-v"
    )
    result.assert_outcomes(passed=2, skipped=1, xfailed=2, failed=3)
    result.stdout.fnmatch_lines_random(
        [
            "*experiments/holds.json::tcp PASSED*",
            "*experiments/holds.json::http SKIPPED*",
            "*experiments/known.json::tcp XFAIL*",
            "*experiments/unrecorded.json::tcp XFAIL*",
            "*experiments/new_deviation.json::tcp FAILED*",
            "*experiments/fixed.json::tcp FAILED*",
            "*experiments/regressed.json::tcp FAILED*",
            "*XFAIL experiments/known.json::tcp - known: agenkit does X*",
            "*SKIPPED*no meaning over http*",
            "*fixed [[]tcp[]]: recorded deviates, observed holds*",
            "*new_deviation [[]tcp[]]: deviates, but not as recorded (new: opens; no longer: x)*",
            "*regressed [[]tcp[]]: recorded holds, observed deviates*",
        ]
    )


def test_items_are_marked_so_a_team_can_select_them(team):
    result = team.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--strict-markers",
        "--chaos-experiments",
        "experiments",
        "-m",
        "chaos_middleware",
    )
    result.assert_outcomes(passed=1, skipped=1)
    result = team.runpytest_subprocess(
        "-p", "no:cacheprovider", "--chaos-experiments", "experiments", "-m", "not slow"
    )
    assert "7 deselected" in result.stdout.str()


def test_the_ini_option_collects_when_pytest_visits_the_folder(team):
    team.makeini("[pytest]\nchaos_experiments = experiments\n")
    team.runpytest_subprocess("-p", "no:cacheprovider", "test_ordinary.py").assert_outcomes(passed=1)
    result = team.runpytest_subprocess(
        "-p", "no:cacheprovider", "experiments/holds.json", "--chaos-journals", "journals"
    )
    result.assert_outcomes(passed=1, skipped=1)
    journal = json.loads((team.path / "journals" / "holds.tcp.json").read_text())
    assert next(e for e in journal["extensions"] if e["name"] == "chaosagenkit")["verdict"] == "holds"


def test_chaos_vars_reach_the_experiments_and_unknown_keys_are_refused(team):
    result = team.runpytest_subprocess(
        "-p", "no:cacheprovider", "experiments/known.json", "--chaos-experiments", "experiments",
        "--chaos-var", "state=open",
    )  # fmt: skip
    result.stdout.fnmatch_lines(["*known [[]tcp[]]: recorded deviates, observed holds*"])  # state=open
    result = team.runpytest_subprocess(
        "-p", "no:cacheprovider", "experiments/holds.json", "--chaos-experiments", "experiments",
        "--chaos-var", "stat=open",
    )  # fmt: skip
    assert "--var stat: no experiment run declares this configuration key" in result.stdout.str()
