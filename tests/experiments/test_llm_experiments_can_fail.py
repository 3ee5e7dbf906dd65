"""Each LLM experiment's expectations can fail: a weakened setup makes a chosen one unmet.

The recorded verdicts (tests/experiments/test_experiments.py) show which
expectations deviate with agenkit as it is; here, for each experiment, an
expectation that HOLDS is made to fail on purpose, through the
experiment's own configuration (as a user would with --var), and the test
checks that exactly that expectation is reported unmet, with its tolerance.
"""

from __future__ import annotations

import pytest

from chaosagenkit.suite import RunPlan
from tests.experiments.conftest import EXPERIMENTS, assert_nothing_left_behind, run_plan

WEAKENED = {
    # experiment: (what is weakened, configuration overrides, the expectation that must fail)
    "llm_rate_limit": (
        "a Retry-After of 0, which the SDK ignores for its own backoff",
        {"retry_after_s": 0},
        "each-retry-waits-retry-after",
    ),
    "llm_server_error": (
        "no retry in the SDK nor in the caller",
        {"sdk_max_retries": 0, "client_middleware": []},
        "intermittent-errors-are-invisible",
    ),
    "llm_stream_cut": (
        "faults after more events than a stream has",
        {"cut_after_events": 100},
        "a-reset-stream-is-an-error",
    ),
    "llm_slow_first_token": (
        "an SDK timeout and a delay both longer than the caller's deadline",
        {"sdk_timeout_ms": 10000, "delay_ms": 5000},
        "the-agent-gives-up-before-its-caller",
    ),
    "llm_malformed_tool_call": (
        "no retry middleware",
        {"client_middleware": []},
        "a-broken-tool-call-is-retried-to-the-answer",
    ),
}


def unmet_expectations(journal) -> dict[str, dict]:
    extension = next(
        e for e in journal["extensions"] if e.get("name") == "chaosagenkit" and "expectations" in e
    )
    return {e["activity"]: e for e in extension["expectations"] if not e["met"]}


def test_every_llm_experiment_has_a_weakened_setup():
    assert sorted(WEAKENED) == sorted(p.stem for p in EXPERIMENTS.glob("llm_*.json"))


@pytest.mark.chaos
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(WEAKENED))
def test_a_weakened_setup_fails_the_chosen_expectation(name, tmp_path):
    weakened, overrides, expectation = WEAKENED[name]
    result, journal = run_plan(RunPlan(EXPERIMENTS / f"{name}.json", "tcp"), tmp_path, **overrides)
    assert result.verdict == "deviates", f"{name} with {weakened}: {result.verdict} {result.detail}"
    unmet = unmet_expectations(journal)
    assert expectation in unmet, f"{name} with {weakened}: {expectation!r} was met; unmet: {sorted(unmet)}"
    assert unmet[expectation]["tolerance"] is not None
    assert_nothing_left_behind(journal)


#: For an LLM experiment that holds, every expectation is made to miss (issue 9's falsifiability
#: per expectation): (experiment, what is weakened, overrides, the expectations that must miss).
#: The chosen expectation of WEAKENED above counts too.
PER_EXPECTATION = [
    ("llm_malformed_tool_call", "a model asked without tools (no tool call to break)", {"llm_mode": "complete"},
     ["one-broken-call-reached-the-agent", "persistently-broken-calls-are-an-error"]),
    ("llm_malformed_tool_call", "an agent that answers empty when a tool call does not parse",
     {"target_agent": "tests.experiments.weak_targets:lenient_tool_agent"},
     ["the-answer-is-its-own", "never-a-wrong-answer"]),
]  # fmt: skip


def holding_llm_expectations() -> set[tuple[str, str]]:
    import json

    found = set()
    for path in sorted(EXPERIMENTS.glob("llm_*.json")):
        experiment = json.loads(path.read_text())
        extension = next(e for e in experiment["extensions"] if e["name"] == "chaosagenkit")
        if "holds" in extension["verdicts"].values():
            found |= {(path.stem, a["name"]) for a in experiment["method"] if "tolerance" in a}
    return found


def test_every_expectation_of_a_holding_llm_experiment_has_a_weakening():
    covered = {(name, WEAKENED[name][2]) for name in WEAKENED}
    covered |= {(name, miss) for name, _, _, misses in PER_EXPECTATION for miss in misses}
    assert holding_llm_expectations() <= covered, sorted(holding_llm_expectations() - covered)


@pytest.mark.chaos
@pytest.mark.slow
@pytest.mark.parametrize(
    "name,weakened,overrides,misses", PER_EXPECTATION, ids=[w[1].replace(" ", "_") for w in PER_EXPECTATION]
)
def test_a_weakened_setup_makes_each_named_expectation_miss_with_a_value(
    name, weakened, overrides, misses, tmp_path
):
    result, journal = run_plan(RunPlan(EXPERIMENTS / f"{name}.json", "tcp"), tmp_path, **overrides)
    assert result.verdict == "deviates", f"{name} with {weakened}: {result.verdict} {result.detail}"
    unmet = unmet_expectations(journal)
    for expectation in misses:
        assert expectation in unmet, (
            f"{name} with {weakened}: {expectation!r} was met; unmet: {sorted(unmet)}"
        )
        missed = unmet[expectation]
        assert missed["status"] == "succeeded", f"{expectation}: its probe raised, it did not return a value"
        assert missed["output"] is not None and missed["tolerance"] is not None
    assert_nothing_left_behind(journal)
