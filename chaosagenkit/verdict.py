"""The one verdict engine: a Chaos Toolkit journal in, a verdict with its reason out.

Everything that states a verdict uses this module: ``chaosagenkit run`` and
``--against-recorded``, the control (which writes the verdict into the
journal and marks the journal so plain ``chaos run`` exits non-zero), every
report (JUnit, Markdown, HTML), the pytest plugin and the tests.

A verdict is a promise. The rule, stated once, from the least to the most
trustworthy result (the first that applies wins):

| verdict            | when                                                                 | exit |
|--------------------|----------------------------------------------------------------------|------|
| ``interrupted``    | chaoslib's ``status`` is interrupted (Ctrl-C, a signal, a control)    | 2    |
| ``aborted``        | ``status`` aborted (the method hit an unexpected error)               | 2    |
| ``failed``         | a steady-state probe before the method raised                        | 2    |
| ``baseline_not_met`` | the steady state did not hold BEFORE the method: nothing was tested | 2    |
| ``failed``         | a method activity raised (a fault that could not be injected, a probe that could not measure), a probe after the method raised, the journal has no final status, or nothing was checked at all | 2 |
| ``deviates``       | a steady-state probe after (or during) the method, or a method expectation (a method probe with a ``tolerance``), was outside its tolerance | 1 |
| ``holds``          | the steady state held before and after, and every method expectation was met | 0 |
| ``skipped``        | not run on purpose (a transport the experiment does not apply to)    | 0    |

``deviations`` are the sorted names of what was outside its tolerance: a
method expectation by its name, a steady-state probe as
``steady-state:<name>``. They are what an experiment records as its golden
master (``"deviations": {"http": [...]}`` in its ``chaosagenkit``
extension) beside its verdict, so a new deviation inside an experiment
already recorded as deviating is caught (``compare``). An expectation whose
outcome on a transport was traced to a race the run cannot control is
recorded as ``"unstable": {"http": {"<name>": "<why>"}}``: the verdict of
each run still says what happened, and the comparison accepts that
expectation met or missed, and nothing else.

Method expectations are checked by chaosagenkit's control (Chaos Toolkit
records method probes but never checks their tolerance) and marked
``tolerance_met`` on their run entry; the engine reads that mark, or the
control's ``expectations`` list, and never evaluates a tolerance itself. An
expectation nobody checked (a journal written without the control) decides
nothing: the reports list it as not checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "EXIT_CODES",
    "EXTENSION_NAME",
    "NOTHING_CHECKED",
    "STEADY_STATE_PREFIX",
    "Comparison",
    "Judgement",
    "Verdict",
    "compare",
    "exception_line",
    "exit_code",
    "judge",
    "not_run",
    "skipped",
]

EXTENSION_NAME = "chaosagenkit"
#: how a steady-state probe is named among the deviations
STEADY_STATE_PREFIX = "steady-state:"
#: the reason of a run that checked nothing (chaoslib's "just exploring"): failed, never holds
NOTHING_CHECKED = "nothing was checked: no steady-state probe and no method expectation"


class Verdict(StrEnum):
    HOLDS = "holds"
    DEVIATES = "deviates"
    BASELINE_NOT_MET = "baseline_not_met"
    FAILED = "failed"
    ABORTED = "aborted"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"

    @property
    def exit_code(self) -> int:
        """0: held or skipped; 1: deviated; 2: the run could not judge the system."""
        return EXIT_CODES[self]

    @property
    def label(self) -> str:
        """The verdict in words: ``baseline not met``."""
        return self.value.replace("_", " ")


EXIT_CODES = {
    Verdict.HOLDS: 0,
    Verdict.SKIPPED: 0,
    Verdict.DEVIATES: 1,
    Verdict.BASELINE_NOT_MET: 2,
    Verdict.FAILED: 2,
    Verdict.ABORTED: 2,
    Verdict.INTERRUPTED: 2,
}


@dataclass(frozen=True)
class Judgement:
    """A verdict, the one line that says why, and what deviated."""

    verdict: Verdict
    reason: str
    deviations: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "reason": self.reason, "deviations": list(self.deviations)}


def judge(journal: dict[str, Any]) -> Judgement:
    """The verdict of a Chaos Toolkit journal (any journal, not only chaosagenkit's)."""
    status = journal.get("status")
    steady = _dict(journal.get("steady_states"))
    before = _probes(steady.get("before"))
    after = _probes(steady.get("after"))
    method = [r for r in _list(journal.get("run")) if isinstance(r, dict)]

    if status == "interrupted":
        return Judgement(Verdict.INTERRUPTED, _interruption(journal))
    if status == "aborted":
        raised = _first_raised(method)
        why = f"method: {_raised(raised)}" if raised else "the method hit an unexpected error"
        return Judgement(Verdict.ABORTED, f"aborted: {why}")
    raised = _first_raised(before)
    if raised is not None:
        return Judgement(Verdict.FAILED, f"steady state before: {_raised(raised)}")
    unmet = [p for p in before if p.get("tolerance_met") is False]
    if unmet or _dict(steady.get("before")).get("steady_state_met") is False:
        what = _outside(unmet[0]) if unmet else "the steady state was not met"
        return Judgement(
            Verdict.BASELINE_NOT_MET,
            f"baseline not met, nothing was injected: steady state before: {what}",
            tuple(sorted({_steady_name(p) for p in unmet})),
        )
    raised = _first_raised(method)
    if raised is not None:
        kind = "action" if _activity(raised).get("type") == "action" else "probe"
        consequence = "; the fault may not be in place" if kind == "action" else ""
        return Judgement(Verdict.FAILED, f"method {kind}: {_raised(raised)}{consequence}")
    raised = _first_raised(after)
    if raised is not None:
        return Judgement(Verdict.FAILED, f"steady state after: {_raised(raised)}")
    if status not in ("completed", "failed"):
        return Judgement(Verdict.FAILED, "the journal has no final status: the run did not finish")

    expectations = _expectations(journal, method)
    outside: list[tuple[str, str]] = []  # (deviation name, what it was)
    for probe in after:
        if probe.get("tolerance_met") is False:
            outside.append((_steady_name(probe), f"steady state after: {_outside(probe)}"))
    for iteration in _list(steady.get("during")):
        unmet_during = [p for p in _probes(iteration) if p.get("tolerance_met") is False]
        for probe in unmet_during:
            outside.append((_steady_name(probe), f"steady state during the method: {_outside(probe)}"))
        if not unmet_during and _dict(iteration).get("steady_state_met") is False:
            outside.append((STEADY_STATE_PREFIX + "during", "the steady state was not met during the method"))
    for run, met in expectations:
        if met is False:
            outside.append((_name(run), f"method: {_outside(run)}"))
    if outside:
        names = tuple(sorted({name for name, _ in outside}))
        more = f" (+{len(names) - 1} more)" if len(names) > 1 else ""
        return Judgement(Verdict.DEVIATES, outside[0][1] + more, names)
    if journal.get("deviated") is True or _dict(steady.get("after")).get("steady_state_met") is False:
        return Judgement(Verdict.DEVIATES, "the journal says the run deviated")
    if status == "failed":
        return Judgement(Verdict.FAILED, "the run failed (chaoslib's status is failed)")
    checked = [met for _, met in expectations if met is not None]
    if not before and not after and not checked:
        return Judgement(
            Verdict.FAILED, "nothing was checked: no steady-state probe and no method expectation"
        )
    return Judgement(Verdict.HOLDS, _held(before, after, checked, len(expectations)))


def skipped(reason: str) -> Judgement:
    """A run not made on purpose (e.g. a transport the experiment does not apply to)."""
    return Judgement(Verdict.SKIPPED, reason or "skipped")


def not_run(reason: str) -> Judgement:
    """A run that could not start or left no journal: failed, with why."""
    return Judgement(Verdict.FAILED, f"could not run: {reason or 'no reason given'}")


# -- the golden master --------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """An observed judgement against what the experiment records for that transport.

    ``outcome``: ``same`` (holds as recorded), ``expected`` (deviates exactly
    as recorded: a known finding), ``unstable`` (differs from the record only
    in expectations recorded as unstable on this transport), ``differs``
    (another verdict, or another set of deviations), ``unchecked`` (the run could not judge: failed,
    baseline not met, ...), ``not recorded`` (no recorded verdict, or a
    deviation whose recorded set is missing: said, not failed).
    """

    outcome: str
    message: str
    recorded_verdict: str | None = None
    recorded_deviations: tuple[str, ...] | None = None

    @property
    def ok(self) -> bool:
        """True unless the run differs from its record or could not judge."""
        return self.outcome in ("same", "expected", "unstable", "not recorded", "skipped")


def compare(
    judgement: Judgement,
    recorded_verdict: str | None,
    recorded_deviations: Iterable[str] | None,
    finding: str | None = None,
    unstable: Mapping[str, str] | None = None,
) -> Comparison:
    """Compare an observed judgement with the recorded verdict and deviation set.

    ``unstable``: expectation names this transport records as unstable, each
    with why; a difference made of those alone is ``unstable``, not ``differs``.
    """
    deviations = None if recorded_deviations is None else tuple(sorted(set(recorded_deviations)))
    verdict = judgement.verdict
    if verdict == Verdict.SKIPPED:
        return Comparison("skipped", judgement.reason, recorded_verdict, deviations)
    if verdict.exit_code == 2:
        return Comparison("unchecked", f"{verdict.label}: {judgement.reason}", recorded_verdict, deviations)
    if recorded_verdict is None:
        return Comparison("not recorded", f"no recorded verdict; observed {verdict}", None, deviations)
    flipped = _unstable_difference(judgement, recorded_verdict, deviations, unstable or {})
    if flipped:
        name = flipped[0]
        state = "missed" if name in judgement.deviations else "met"
        more = f" (+{len(flipped) - 1} more)" if len(flipped) > 1 else ""
        return Comparison(
            "unstable",
            f"as recorded but for {name}, {state} this time, recorded as unstable{more}: {(unstable or {})[name]}",
            recorded_verdict,
            deviations,
        )
    if verdict.value != recorded_verdict:
        return Comparison(
            "differs",
            f"recorded {recorded_verdict}, observed {verdict}: {judgement.reason}",
            recorded_verdict,
            deviations,
        )
    observed = tuple(judgement.deviations)
    if verdict == Verdict.HOLDS:
        return Comparison("same", "holds as recorded", recorded_verdict, deviations)
    if deviations is None:
        return Comparison(
            "not recorded",
            f"deviates as recorded; its deviations are not recorded (observed: {_names(observed)})",
            recorded_verdict,
            None,
        )
    if observed != deviations:
        new = sorted(set(observed) - set(deviations))
        gone = sorted(set(deviations) - set(observed))
        parts = ([f"new: {_names(new)}"] if new else []) + ([f"no longer: {_names(gone)}"] if gone else [])
        return Comparison(
            "differs",
            f"deviates, but not as recorded ({'; '.join(parts)})",
            recorded_verdict,
            deviations,
        )
    return Comparison(
        "expected",
        f"known finding: {finding}" if finding else f"deviates as recorded ({_names(observed)})",
        recorded_verdict,
        deviations,
    )


def _unstable_difference(
    judgement: Judgement,
    recorded_verdict: str,
    deviations: tuple[str, ...] | None,
    unstable: Mapping[str, str],
) -> tuple[str, ...]:
    """The unstable expectations that alone make this run differ from its record (empty: not so)."""
    if not unstable or judgement.verdict not in (Verdict.HOLDS, Verdict.DEVIATES):
        return ()
    if recorded_verdict == Verdict.HOLDS.value:
        recorded: set[str] = set()
    elif recorded_verdict == Verdict.DEVIATES.value and deviations is not None:
        recorded = set(deviations)
    else:
        return ()
    difference = set(judgement.deviations) ^ recorded
    if not difference or not difference <= set(unstable):
        return ()
    return tuple(sorted(difference))


def exit_code(judgements: Iterable[Judgement], comparisons: Iterable[Comparison] | None = None) -> int:
    """The suite's exit status (README's table).

    Without comparisons: 0 every run held or was skipped, 1 some deviated,
    2 some did not meet its baseline, failed, was aborted or interrupted.
    With comparisons (``--against-recorded``): 2 as before, else 1 when a
    verdict or a deviation set differs from the recorded one, else 0.
    """
    worst = max((j.verdict.exit_code for j in judgements), default=0)
    if worst == 2 or comparisons is None:
        return worst
    return 0 if all(c.ok for c in comparisons) else 1


# -- reading a journal --------------------------------------------------------------------


def _expectations(journal: dict[str, Any], method: list[dict[str, Any]]) -> list[tuple[dict, bool | None]]:
    """Each method expectation's run entry with its ``tolerance_met`` (None: nobody checked)."""
    recorded = [e for e in _list(_dict(_extension(journal)).get("expectations")) if isinstance(e, dict)]
    found = []
    for run in method:
        activity = _activity(run)
        if activity.get("type") != "probe" or "tolerance" not in activity:
            continue
        met = run.get("tolerance_met")
        if not isinstance(met, bool):
            match = next(
                (i for i, e in enumerate(recorded) if e.get("activity") == activity.get("name")), None
            )
            met = recorded.pop(match).get("met") if match is not None else None
        found.append((run, met if isinstance(met, bool) else None))
    return found


def _held(before: list, after: list, checked: list, declared: int) -> str:
    steady = "the steady state held before and after" if before or after else "no steady-state probe"
    if not declared:
        return f"{steady}; the method has no expectation"
    if len(checked) == declared:
        return f"{steady}, and every method expectation was met ({declared})"
    return f"{steady}; {len(checked)} of {declared} method expectations were checked and met"


def _interruption(journal: dict[str, Any]) -> str:
    interruption = _dict(journal.get("interruption"))
    if interruption.get("reason"):
        by = interruption.get("name")
        return (
            f"interrupted by {by}: {interruption['reason']}"
            if by
            else f"interrupted: {interruption['reason']}"
        )
    triggered = _dict(journal.get("safeguards")).get("triggered_by")
    if triggered:
        return f"interrupted by safeguard {triggered}"
    return "interrupted (Ctrl-C, a termination signal, a control or a safeguard)"


def _first_raised(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((r for r in runs if r.get("status") not in ("succeeded", None)), None)


def _raised(run: dict[str, Any]) -> str:
    return f"{_name(run)} raised: {exception_line(run.get('exception')) or 'no exception recorded'}"


def _outside(run: dict[str, Any]) -> str:
    """``name = value, outside tolerance T`` for a probe that missed its tolerance."""
    tolerance = _activity(run).get("tolerance")
    output = run.get("output")
    label = _name(run)
    if isinstance(tolerance, dict) and isinstance(output, dict):
        target = tolerance.get("target")
        if isinstance(target, str) and target in output:
            label, output = f"{label}.{target}", output[target]
    return f"{label} = {_short(output)}, outside tolerance {_short(tolerance)}"


def _steady_name(run: dict[str, Any]) -> str:
    return STEADY_STATE_PREFIX + _name(run)


def _name(run: dict[str, Any]) -> str:
    activity = _activity(run)
    return str(activity.get("name") or activity.get("ref") or "(unnamed)")


def _activity(run: dict[str, Any]) -> dict[str, Any]:
    return _dict(run.get("activity"))


def _probes(state: Any) -> list[dict[str, Any]]:
    return [p for p in _list(_dict(state).get("probes")) if isinstance(p, dict)]


def _extension(journal: dict[str, Any]) -> dict[str, Any] | None:
    for ext in _list(journal.get("extensions")):
        if isinstance(ext, dict) and ext.get("name") == EXTENSION_NAME:
            return ext
    return None


def exception_line(exception: Any) -> str | None:
    """The exception's own last line, without chaoslib's ``ActivityFailed`` wrappers (None: none)."""
    chunks = exception if isinstance(exception, list) else [exception] if isinstance(exception, str) else []
    lines = [line.strip() for chunk in chunks for line in str(chunk).splitlines() if line.strip()]
    if not lines:
        return None
    last = lines[-1]
    wrapper = "chaoslib.exceptions.ActivityFailed: "
    while last.startswith(wrapper) and len(last) > len(wrapper):  # chaoslib may wrap twice
        last = last[len(wrapper) :]
    return last


def _short(value: Any, limit: int = 100) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _names(names: Iterable[str]) -> str:
    listed = ", ".join(names)
    return listed or "none"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
