"""The one verdict engine: journal shapes in, verdicts, reasons and deviations out."""

from __future__ import annotations

import pytest

from chaosagenkit.verdict import Judgement, Verdict, compare, exit_code, judge, not_run, skipped


def probe(name: str, *, met: bool | None = True, status: str = "succeeded", output=1, tolerance=1) -> dict:
    run = {
        "activity": {"type": "probe", "name": name, "tolerance": tolerance},
        "status": status,
        "output": output,
    }
    if status != "succeeded":
        run["exception"] = ["Traceback ...\n", f"chaoslib.exceptions.ActivityFailed: {name} broke\n"]
    if met is not None:
        run["tolerance_met"] = met
    return run


def action(name: str, status: str = "succeeded") -> dict:
    run = {"activity": {"type": "action", "name": name}, "status": status, "output": None}
    if status != "succeeded":
        run["exception"] = ["chaoslib.exceptions.ActivityFailed: inject_delay: host unreachable\n"]
    return run


HEALTHY = (probe("answers"),)
METHOD = (action("inject"), probe("opens", tolerance="open", output="open"))


def journal(
    status="completed", deviated=False, before=HEALTHY, after=HEALTHY, method=METHOD, **extra
) -> dict:
    steady = {
        "before": {
            "steady_state_met": all(p.get("tolerance_met", True) for p in before),
            "probes": list(before),
        }
        if before is not None
        else None,
        "after": {"steady_state_met": all(p.get("tolerance_met", True) for p in after), "probes": list(after)}
        if after is not None
        else None,
        "during": [],
    }
    return {"status": status, "deviated": deviated, "steady_states": steady, "run": list(method), **extra}


CASES = [
    ("holds", journal(), Verdict.HOLDS, (), "every method expectation was met (1)"),
    (
        "baseline not met: nothing was injected",
        journal(
            before=[probe("answers", met=False, output={"success_ratio": 0.0}, tolerance={"type": "range", "target": "success_ratio", "range": [1, 1]})],
            after=None,
            method=[],
        ),
        Verdict.BASELINE_NOT_MET,
        ("steady-state:answers",),
        "baseline not met, nothing was injected: steady state before: answers.success_ratio = 0.0",
    ),
    (
        "baseline probe raised",
        journal(status="failed", before=[probe("answers", status="failed", met=None)], after=None, method=[]),
        Verdict.FAILED,
        (),
        "steady state before: answers raised: answers broke",
    ),
    (
        "a fault that could not be injected",
        journal(method=[action("inject", status="failed")]),
        Verdict.FAILED,
        (),
        "method action: inject raised: inject_delay: host unreachable; the fault may not be in place",
    ),
    (
        "a method probe that raised",
        journal(method=[action("inject"), probe("opens", status="failed", met=False)]),
        Verdict.FAILED,
        (),
        "method probe: opens raised: opens broke",
    ),
    (
        "an expectation outside its tolerance",
        journal(deviated=True, method=[action("inject"), probe("opens", met=False, output="closed", tolerance="open")]),
        Verdict.DEVIATES,
        ("opens",),
        'method: opens = "closed", outside tolerance "open"',
    ),
    (
        "the steady state after, and an expectation",
        journal(deviated=True, after=[probe("answers", met=False, output=0.5)], method=[probe("opens", met=False)]),
        Verdict.DEVIATES,
        ("opens", "steady-state:answers"),
        "steady state after: answers = 0.5, outside tolerance 1 (+1 more)",
    ),
    (
        "after probe raised",
        journal(status="failed", deviated=True, after=[probe("answers", status="failed", met=None)]),
        Verdict.FAILED,
        (),
        "steady state after: answers raised: answers broke",
    ),
    ("aborted", journal(status="aborted", method=[action("inject", status="failed")]), Verdict.ABORTED, (), "aborted: method: inject raised"),
    (
        "interrupted by the control, with its reason",
        journal(status="interrupted", before=None, after=None, method=[], interruption={"name": "chaosagenkit", "reason": "could not build the sandbox: boom"}),
        Verdict.INTERRUPTED,
        (),
        "interrupted by chaosagenkit: could not build the sandbox: boom",
    ),
    ("interrupted by Ctrl-C", journal(status="interrupted"), Verdict.INTERRUPTED, (), "interrupted (Ctrl-C"),
    ("no final status", journal(status=None), Verdict.FAILED, (), "the journal has no final status"),
    ("nothing checked", journal(before=None, after=None, method=[action("a")]), Verdict.FAILED, (), "nothing was checked"),
    (
        "unchecked expectations decide nothing",
        journal(method=[probe("opens", met=None)]),
        Verdict.HOLDS,
        (),
        "0 of 1 method expectations were checked and met",
    ),
    (
        "met recorded only in the extension",
        journal(
            method=[probe("opens", met=None)],
            extensions=[{"name": "chaosagenkit", "expectations": [{"activity": "opens", "met": False}]}],
        ),
        Verdict.DEVIATES,
        ("opens",),
        "method: opens",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("verdict", "deviations", "reason", "data"), [(*c[2:], c[1]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_judge(data, verdict, deviations, reason):
    judgement = judge(data)
    assert judgement.verdict == verdict
    assert judgement.deviations == deviations
    assert reason in judgement.reason
    assert "\n" not in judgement.reason


def test_a_baseline_not_met_is_never_holds_whatever_chaoslib_says():
    """chaoslib records a baseline not met as completed and not deviated."""
    data = journal(before=[probe("answers", met=False)], after=None, method=[])
    assert data["status"] == "completed" and data["deviated"] is False
    assert judge(data).verdict == Verdict.BASELINE_NOT_MET
    assert judge(data).verdict.exit_code == 2


@pytest.mark.parametrize(
    ("verdict", "code"),
    [(Verdict.HOLDS, 0), (Verdict.SKIPPED, 0), (Verdict.DEVIATES, 1)]
    + [(v, 2) for v in (Verdict.BASELINE_NOT_MET, Verdict.FAILED, Verdict.ABORTED, Verdict.INTERRUPTED)],
)
def test_exit_code_of_each_verdict(verdict, code):
    assert verdict.exit_code == code
    assert exit_code([Judgement(Verdict.HOLDS, ""), Judgement(verdict, "")]) == code


def deviates(*names: str) -> Judgement:
    return Judgement(Verdict.DEVIATES, "x", tuple(sorted(names)))


@pytest.mark.parametrize(
    ("judgement", "recorded", "recorded_deviations", "outcome"),
    [
        (Judgement(Verdict.HOLDS, "ok"), "holds", None, "same"),
        (deviates("a"), "deviates", ["a"], "expected"),
        (deviates("a", "b"), "deviates", ["a"], "differs"),  # a new deviation inside a known one
        (deviates("a"), "deviates", ["a", "b"], "differs"),
        (deviates("a"), "deviates", None, "not recorded"),  # said, not failed
        (deviates("a"), "holds", None, "differs"),
        (Judgement(Verdict.HOLDS, "ok"), "deviates", ["a"], "differs"),
        (Judgement(Verdict.BASELINE_NOT_MET, "x"), "holds", None, "unchecked"),
        (Judgement(Verdict.HOLDS, "ok"), None, None, "not recorded"),
        (skipped("no meaning"), None, None, "skipped"),
    ],
)
def test_compare_with_the_golden_master(judgement, recorded, recorded_deviations, outcome):
    comparison = compare(judgement, recorded, recorded_deviations, finding="agenkit does X")
    assert comparison.outcome == outcome
    assert comparison.ok == (outcome in ("same", "expected", "not recorded", "skipped"))


RACE = {"a": "a race traced to the server's shutdown"}


@pytest.mark.parametrize(
    ("judgement", "recorded", "recorded_deviations", "outcome"),
    [
        (deviates("a"), "holds", None, "unstable"),  # the unstable one missed this time
        (Judgement(Verdict.HOLDS, "ok"), "deviates", ["a"], "unstable"),  # met this time
        (deviates("a", "b"), "deviates", ["b"], "unstable"),
        (deviates("b"), "deviates", ["a", "b"], "unstable"),
        (deviates("a", "b"), "holds", None, "differs"),  # b is not unstable
        (deviates("a", "b"), "deviates", ["a"], "differs"),
        (deviates("a"), "deviates", None, "not recorded"),  # no record to differ from
        (Judgement(Verdict.HOLDS, "ok"), "holds", None, "same"),
        (deviates("a"), "deviates", ["a"], "expected"),
        (Judgement(Verdict.DEVIATES, "the journal says the run deviated"), "holds", None, "differs"),
        (Judgement(Verdict.FAILED, "x"), "holds", None, "unchecked"),
    ],
)
def test_an_unstable_expectation_may_go_either_way_and_nothing_else(
    judgement, recorded, recorded_deviations, outcome
):
    comparison = compare(judgement, recorded, recorded_deviations, unstable=RACE)
    assert comparison.outcome == outcome
    assert comparison.ok == (outcome != "differs" and outcome != "unchecked")


def test_an_unstable_difference_says_which_way_it_went_and_why():
    missed = compare(deviates("a"), "holds", None, unstable=RACE).message
    met = compare(Judgement(Verdict.HOLDS, "ok"), "deviates", ["a"], unstable=RACE).message
    assert "a, missed this time" in missed and RACE["a"] in missed
    assert "a, met this time" in met


def test_a_new_deviation_is_named_and_an_expected_one_carries_its_finding():
    assert "new: b" in compare(deviates("a", "b"), "deviates", ["a"]).message
    assert "no longer: b" in compare(deviates("a"), "deviates", ["a", "b"]).message
    assert (
        compare(deviates("a"), "deviates", ["a"], finding="agenkit does X").message
        == "known finding: agenkit does X"
    )


@pytest.mark.parametrize(
    ("judgements", "recorded", "code"),
    [
        ([deviates("a")], [("deviates", ["a"])], 0),
        ([deviates("a", "b")], [("deviates", ["a"])], 1),
        ([Judgement(Verdict.HOLDS, "")], [("deviates", ["a"])], 1),
        ([deviates("a"), Judgement(Verdict.FAILED, "")], [("deviates", ["a"]), ("holds", None)], 2),
    ],
)
def test_exit_code_against_recorded(judgements, recorded, code):
    comparisons = [compare(j, v, d) for j, (v, d) in zip(judgements, recorded, strict=True)]
    assert exit_code(judgements, comparisons) == code


def test_runs_without_a_journal():
    assert skipped("no meaning over http").verdict == Verdict.SKIPPED
    failed = not_run("InvalidExperiment: no method")
    assert failed.verdict == Verdict.FAILED and failed.reason == "could not run: InvalidExperiment: no method"
