"""One journal read into what every report shows: the experiment's result.

Any Chaos Toolkit journal can be read, not only ours. The rule, stated
once: the report shows what the journal records and marks the rest as
missing; it never fills a gap. A probe the experiment declares but the
journal never ran is "not run"; a run entry without a status "did not
finish"; a tolerance nobody checked is "not checked" (Chaos Toolkit does
not check the tolerance of method probes: chaosagenkit's control does, and
marks the entry ``tolerance_met``).

The verdict follows the precedence Chaos Toolkit itself uses for
``chaos run --output agent``, from the least to the most trustworthy
result: interrupted, aborted, failed (a steady-state probe raised), unknown
(no status), baseline not met, deviated, held. "completed" is a run that
judged nothing (no hypothesis probe and no method expectation).

A method expectation whose probe raised is not met, as chaosagenkit's
control records it (``tolerance_met`` false, the run deviated): the run
deviated, it never held. Chaos Toolkit's own status rules stay as they
are (a raising method probe does not fail a chaoslib run). The held
sentence says every expectation was met only when each one's
``tolerance_met`` is true; it counts those nobody checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from chaosagenkit.faults.toxics.base import finite_float
from chaosagenkit.report.outcomes import ClientOutcomes, OutcomeStats, parse_client
from chaosagenkit.report.windows import FaultWindow, fault_windows, usable_events

__all__ = [
    "EXTENSION_NAME",
    "ExperimentResult",
    "PlanRecord",
    "RunEntry",
    "RunRecord",
    "Verdict",
    "read_result",
    "result_without_journal",
]

EXTENSION_NAME = "chaosagenkit"


class Verdict(StrEnum):
    HELD = "held"
    COMPLETED = "completed"  # nothing was judged
    DEVIATED = "deviated"
    BASELINE_NOT_MET = "baseline not met"
    FAILED = "failed"
    ABORTED = "aborted"
    INTERRUPTED = "interrupted"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"  # not run on purpose (no journal): see result_without_journal
    NO_JOURNAL = "no journal"  # the run could not start or left no journal

    @property
    def severity(self) -> int:
        """0: fine, 1: the system did not hold, 2: the run itself went wrong."""
        if self in (Verdict.HELD, Verdict.COMPLETED, Verdict.SKIPPED):
            return 0
        if self in (Verdict.DEVIATED, Verdict.BASELINE_NOT_MET):
            return 1
        return 2


@dataclass
class RunEntry:
    """One declared or executed activity of a phase (before, after, method, rollback)."""

    phase: str
    name: str
    kind: str  # probe | action | "" when the journal does not say
    ran: bool = True  # False: declared by the experiment, absent from the journal
    status: str | None = None  # succeeded | failed | None (started, never finished)
    output: Any = None
    tolerance: Any = None
    has_tolerance: bool = False
    tolerance_met: bool | None = None  # None: not checked
    #: the tolerance as the experiment declares it, when the checked one differs (${...} resolved)
    declared_tolerance: Any = None
    start: datetime | None = None
    duration_s: float | None = None
    error: str | None = None  # last line of the exception
    traceback: str | None = None
    background: bool = False

    @property
    def outcome(self) -> str:
        """not run | did not finish | error | not met | met | not checked | succeeded."""
        if not self.ran:
            return "not run"
        if self.status is None:
            return "did not finish"
        if self.status != "succeeded":
            return "error"
        if self.has_tolerance:
            return {True: "met", False: "not met", None: "not checked"}[self.tolerance_met]
        return "succeeded"

    @property
    def is_expectation(self) -> bool:
        return self.phase == "method" and self.kind == "probe" and self.has_tolerance


@dataclass
class PlanRecord:
    """What the experiment file records about itself: plan section, recorded verdicts."""

    plan: str | None = None
    verdicts: dict[str, str] = field(default_factory=dict)
    findings: dict[str, str] = field(default_factory=dict)


@dataclass
class RunRecord:
    """The chaosagenkit extension of a journal: seed, timeline, clients."""

    version: str | None = None
    seed: int | None = None
    configuration: dict[str, Any] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    unplaced_events: int = 0
    clients: list[ClientOutcomes] = field(default_factory=list)
    expectations_met: bool | None = None
    topology: dict[str, Any] = field(default_factory=dict)  # chaosagenkit.topology's journal section


@dataclass
class ExperimentResult:
    source: str
    title: str
    description: str | None
    tags: list[str]
    status: str | None
    deviated: bool
    start: datetime | None
    end: datetime | None
    duration_s: float | None
    hypothesis_title: str | None
    before: list[RunEntry]
    after: list[RunEntry]
    during_iterations: int
    during_not_met: int
    method: list[RunEntry]
    rollbacks: list[RunEntry]
    transport: str | None
    plan: PlanRecord | None
    run: RunRecord | None
    windows: list[FaultWindow]
    node: str | None
    interruption: str | None
    dry: str | None
    verdict: Verdict = Verdict.UNKNOWN
    #: why there is no journal (skipped, could not start); None for a real journal
    no_journal_reason: str | None = None
    _stats: dict[str, OutcomeStats] = field(default_factory=dict, repr=False, compare=False)

    def client_stats(self, client: ClientOutcomes) -> OutcomeStats:
        """The client's summary against this run's fault windows (computed once)."""
        if client.name not in self._stats:
            self._stats[client.name] = client.stats(self.windows)
        return self._stats[client.name]

    @property
    def name(self) -> str:
        """The experiment's title with the transport, as CI lists it."""
        return f"{self.title} [{self.transport}]" if self.transport else self.title

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") or "experiment"

    @property
    def expectations(self) -> list[RunEntry]:
        return [e for e in self.method if e.is_expectation]

    @property
    def entries(self) -> list[RunEntry]:
        return [*self.before, *self.method, *self.after, *self.rollbacks]

    @property
    def t_ref(self) -> float | None:
        """Epoch seconds every offset in the reports counts from (the run's start)."""
        if self.start is not None:
            return self.start.timestamp()
        candidates = [c.t0 for c in (self.run.clients if self.run else []) if c.t0 is not None]
        candidates += [e["t"] for e in (self.run.timeline if self.run else [])]
        return min(candidates, default=None)

    @property
    def recorded_verdict(self) -> str | None:
        """The verdict the experiment file records for this transport, if any."""
        return self._for_transport(self.plan.verdicts) if self.plan else None

    @property
    def recorded_finding(self) -> str | None:
        return self._for_transport(self.plan.findings) if self.plan else None

    def _for_transport(self, recorded: dict[str, str]) -> str | None:
        """The entry for this run's transport; the only entry when there is one."""
        if self.transport and self.transport in recorded:
            return recorded[self.transport]
        return next(iter(recorded.values())) if len(recorded) == 1 else None

    @property
    def observed_verdict(self) -> str:
        """This run's verdict in the words experiment files record: holds | deviates | ..."""
        return {Verdict.HELD: "holds", Verdict.DEVIATED: "deviates"}.get(self.verdict, self.verdict.value)

    @property
    def verdict_sentence(self) -> str:
        return _sentence(self)

    @property
    def has_journal(self) -> bool:
        return self.no_journal_reason is None

    @property
    def warnings(self) -> list[str]:
        """What weakens the verdict: dry runs, failed actions, unplayed rollbacks."""
        found: list[str] = []
        if not self.has_journal:
            return found
        if self.dry:
            found.append(f"dry run ({self.dry}): activities were not executed")
        if not self.before and not self.after and not self.expectations:
            found.append("no steady-state probe and no method expectation: nothing was judged")
        failed = [e.name for e in self.method if e.ran and e.status == "failed"]
        if failed:
            found.append(f"method activities failed, the fault may not be in place: {', '.join(failed)}")
        failed = [e.name for e in self.rollbacks if e.ran and e.status == "failed"]
        if failed:
            found.append(f"rollbacks failed: {', '.join(failed)}")
        unplayed = [e.name for e in self.rollbacks if not e.ran]
        if unplayed:
            found.append(f"rollbacks not played: {', '.join(unplayed)}")
        if self.run and self.run.unplaced_events:
            found.append(f"{self.run.unplaced_events} timeline entries have no usable time")
        unchecked = [e.name for e in self.expectations if e.outcome in ("not checked", "not run")]
        if unchecked:
            found.append(f"method expectations not checked: {', '.join(unchecked)}")
        return found

    def decisive(self, limit: int = 3) -> list[RunEntry]:
        """The entries that decided the verdict, most telling first."""
        picked = [e for e in self.entries if e.outcome in ("error", "not met", "did not finish")]
        if not picked:
            picked = self.expectations or self.after or self.before
        return picked[:limit]


def read_result(journal: dict[str, Any], source: str) -> ExperimentResult:
    """Read a journal (already known to be one) into an ``ExperimentResult``."""
    experiment = _dict(journal.get("experiment"))
    hypothesis = _dict(experiment.get("steady-state-hypothesis"))
    steady = _dict(journal.get("steady_states"))
    declared_probes = _list(hypothesis.get("probes"))
    run = _run_record(journal)
    start, end = _time(journal.get("start")), _time(journal.get("end"))
    duration = journal.get("duration")
    result = ExperimentResult(
        source=source,
        title=str(experiment.get("title") or "(untitled experiment)"),
        description=experiment.get("description") if isinstance(experiment.get("description"), str) else None,
        tags=[str(t) for t in _list(experiment.get("tags"))],
        status=journal.get("status") if isinstance(journal.get("status"), str) else None,
        deviated=journal.get("deviated") is True,
        start=start,
        end=end,
        duration_s=finite_float(duration),
        hypothesis_title=hypothesis.get("title") if isinstance(hypothesis.get("title"), str) else None,
        before=_phase("before", declared_probes, steady.get("before")),
        after=_phase("after", declared_probes, steady.get("after")),
        during_iterations=len([s for s in _list(steady.get("during")) if isinstance(s, dict)]),
        during_not_met=len(
            [
                s
                for s in _list(steady.get("during"))
                if isinstance(s, dict) and s.get("steady_state_met") is False
            ]
        ),
        method=_entries("method", _list(experiment.get("method")), _list(journal.get("run"))),
        rollbacks=_entries("rollback", _list(experiment.get("rollbacks")), _list(journal.get("rollbacks"))),
        transport=_transport(run, experiment),
        plan=_plan(experiment),
        run=run,
        windows=[],
        node=journal.get("node") if isinstance(journal.get("node"), str) else None,
        interruption=_interruption(journal),
        dry=str(experiment["dry"]) if experiment.get("dry") else None,
    )
    if run is not None:
        _fill_expectations_from_extension(result.method, _dict(_extension(journal)))
        run_end = end.timestamp() if end else _last_instant(run)
        result.windows = fault_windows(run.timeline, run_end)
    result.verdict = _classify(result, steady)
    return result


def result_without_journal(
    title: str, verdict: str, reason: str, transport: str | None = None, source: str = ""
) -> ExperimentResult:
    """A run the reports must list although it left no journal.

    ``verdict`` is "skipped" (not run on purpose, e.g. a transport the
    experiment skips) or "error" (it could not start). ``reason`` is shown.
    """
    result = ExperimentResult(
        source=source, title=title, description=None, tags=[], status=None, deviated=False,
        start=None, end=None, duration_s=None, hypothesis_title=None, before=[], after=[],
        during_iterations=0, during_not_met=0, method=[], rollbacks=[], transport=transport,
        plan=None, run=None, windows=[], node=None, interruption=None, dry=None,
    )  # fmt: skip
    result.verdict = Verdict.SKIPPED if verdict == "skipped" else Verdict.NO_JOURNAL
    result.no_journal_reason = reason or "no reason given"
    return result


# -- verdict -------------------------------------------------------------------------------


def _classify(r: ExperimentResult, steady: dict[str, Any]) -> Verdict:
    if r.status == "interrupted":
        return Verdict.INTERRUPTED
    if r.status == "aborted":
        return Verdict.ABORTED
    if r.status == "failed" or any(e.ran and e.status != "succeeded" for e in [*r.before, *r.after]):
        return Verdict.FAILED
    if r.status != "completed":
        return Verdict.UNKNOWN
    if _dict(steady.get("before")).get("steady_state_met") is False:
        return Verdict.BASELINE_NOT_MET
    if (
        r.deviated
        or r.during_not_met
        or _dict(steady.get("after")).get("steady_state_met") is False
        or any(e.tolerance_met is False or e.outcome == "error" for e in r.expectations)
    ):
        return Verdict.DEVIATED
    if not r.before and not r.after and not r.expectations:
        return Verdict.COMPLETED
    return Verdict.HELD


def _sentence(r: ExperimentResult) -> str:
    match r.verdict:
        case Verdict.HELD:
            return _held_sentence(r)
        case Verdict.COMPLETED:
            return "The run completed without judging anything (no steady-state probe, no expectation)."
        case Verdict.DEVIATED:
            unmet = [e.name for e in r.entries if e.outcome == "not met"]
            raised = [e.name for e in r.expectations if e.outcome == "error"]
            found = [f"{', '.join(unmet)} outside tolerance"] if unmet else []
            found += [f"{', '.join(raised)} raised, so not met"] if raised else []
            where = f": {'; '.join(found)}" if found else ""
            if r.during_not_met:
                where += f"; the steady state failed {r.during_not_met} of {r.during_iterations} checks during the method"
            return f"The system deviated from its steady state or expectations{where}."
        case Verdict.BASELINE_NOT_MET:
            return "The steady state did not hold before the method: nothing was injected."
        case Verdict.FAILED:
            broken = [e.name for e in r.entries if e.outcome == "error"]
            names = f" ({', '.join(broken)})" if broken else ""
            return f"A steady-state probe raised{names}, so its tolerance could not be checked."
        case Verdict.ABORTED:
            return "The method ran into an unexpected error and the run was aborted."
        case Verdict.INTERRUPTED:
            reason = r.interruption or "the journal does not record why"
            return f"The run was interrupted before it completed ({reason})."
        case Verdict.SKIPPED:
            return f"Not run: {r.no_journal_reason}."
        case Verdict.NO_JOURNAL:
            return f"The run left no journal: {r.no_journal_reason}."
    return f"The journal records no final status ({r.status!r}): the run may not have finished."


def _held_sentence(r: ExperimentResult) -> str:
    """What held, saying "every expectation was met" only when each was checked and met."""
    steady = "The steady state held" if r.before or r.after else "There is no steady-state probe"
    expectations = r.expectations
    if not expectations:
        return f"{steady}; the method has no expectation."
    met = sum(1 for e in expectations if e.tolerance_met is True)
    if met == len(expectations):
        return f"{steady} and every method expectation was met."
    unchecked = len(expectations) - met
    were = "was" if unchecked == 1 else "were"
    return (
        f"{steady}, but {unchecked} of {len(expectations)} method expectations {were} not checked "
        "(Chaos Toolkit does not check method probes' tolerances; chaosagenkit's control does)."
    )


# -- phases --------------------------------------------------------------------------------


def _phase(phase: str, declared: list[Any], state: Any) -> list[RunEntry]:
    runs = _list(_dict(state).get("probes")) if isinstance(state, dict) else []
    return _entries(phase, declared, runs) if declared or runs else []


def _entries(phase: str, declared: list[Any], runs: list[Any]) -> list[RunEntry]:
    """Run entries in order, then what the experiment declares beyond them as 'not run'."""
    entries = [_entry(phase, r) for r in runs if isinstance(r, dict)]
    for activity in declared[len(entries) :]:
        activity = _dict(activity)
        name = activity.get("name") or activity.get("ref") or "(unnamed)"
        entries.append(
            RunEntry(
                phase=phase,
                name=str(name),
                kind=str(activity.get("type") or ""),
                ran=False,
                tolerance=activity.get("tolerance"),
                has_tolerance="tolerance" in activity,
            )
        )
    return entries


def _entry(phase: str, run: dict[str, Any]) -> RunEntry:
    activity = _dict(run.get("activity"))
    exception = run.get("exception")
    lines = [str(x) for x in exception] if isinstance(exception, list) else []
    if isinstance(exception, str):
        lines = [exception]
    met = run.get("tolerance_met")
    duration = run.get("duration")
    return RunEntry(
        phase=phase,
        name=str(activity.get("name") or activity.get("ref") or "(unnamed)"),
        kind=str(activity.get("type") or ""),
        status=run.get("status") if isinstance(run.get("status"), str) else None,
        output=run.get("output"),
        tolerance=activity.get("tolerance"),
        has_tolerance="tolerance" in activity,
        tolerance_met=met if isinstance(met, bool) else None,
        start=_time(run.get("start")),
        duration_s=finite_float(duration),
        error=_last_line(lines),
        traceback="".join(lines) if lines else None,
        background=activity.get("background") is True,
    )


def _fill_expectations_from_extension(method: list[RunEntry], extension: dict[str, Any]) -> None:
    """Take what chaosagenkit's control checked: the resolved tolerance, and ``met`` if missing.

    The run entry keeps the tolerance as declared (``${name}`` unresolved);
    the control records the one it checked. Records pair with entries by
    name, in order.
    """
    recorded = [e for e in _list(extension.get("expectations")) if isinstance(e, dict)]
    for entry in (e for e in method if e.is_expectation and e.ran):
        found = next((i for i, exp in enumerate(recorded) if exp.get("activity") == entry.name), None)
        if found is None:
            continue
        exp = recorded.pop(found)
        if entry.tolerance_met is None and isinstance(exp.get("met"), bool):
            entry.tolerance_met = exp["met"]
        if "tolerance" in exp and exp["tolerance"] != entry.tolerance:
            entry.declared_tolerance, entry.tolerance = entry.tolerance, exp["tolerance"]


# -- extensions ----------------------------------------------------------------------------


def _extension(journal: dict[str, Any]) -> dict[str, Any] | None:
    for ext in _list(journal.get("extensions")):
        if isinstance(ext, dict) and ext.get("name") == EXTENSION_NAME:
            return ext
    return None


def _run_record(journal: dict[str, Any]) -> RunRecord | None:
    ext = _extension(journal)
    if ext is None:
        return None
    timeline = _list(ext.get("timeline"))
    usable = usable_events(timeline)
    clients = _dict(ext.get("clients"))
    seed = ext.get("seed")
    return RunRecord(
        version=str(ext["version"]) if ext.get("version") is not None else None,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        configuration=_dict(ext.get("configuration")),
        timeline=usable,
        unplaced_events=len(timeline) - len(usable),
        clients=[parse_client(str(name), rec) for name, rec in clients.items()],
        expectations_met=ext.get("expectations_met")
        if isinstance(ext.get("expectations_met"), bool)
        else None,
        topology=_dict(ext.get("topology")),
    )


def _plan(experiment: dict[str, Any]) -> PlanRecord | None:
    for ext in _list(experiment.get("extensions")):
        if isinstance(ext, dict) and ext.get("name") == EXTENSION_NAME:
            verdicts, findings = _dict(ext.get("verdicts")), _dict(ext.get("findings"))
            if ext.get("plan") is None and not verdicts and not findings:
                continue
            return PlanRecord(
                plan=str(ext["plan"]) if ext.get("plan") is not None else None,
                verdicts={str(k): str(v) for k, v in verdicts.items()},
                findings={str(k): str(v) for k, v in findings.items()},
            )
    return None


def _transport(run: RunRecord | None, experiment: dict[str, Any]) -> str | None:
    for configuration in (run.configuration if run else {}, _dict(experiment.get("configuration"))):
        value = configuration.get("transport")
        if isinstance(value, str) and value:
            return value
    return None


def _interruption(journal: dict[str, Any]) -> str | None:
    """Why the run was interrupted, when the journal says (chaostoolkit's conventions)."""
    interruption = journal.get("interruption")
    if isinstance(interruption, dict) and interruption.get("reason"):
        by = interruption.get("name")
        return f"{by}: {interruption['reason']}" if by else str(interruption["reason"])
    safeguards = _dict(journal.get("safeguards"))
    if safeguards.get("triggered_by"):
        return f"safeguard {safeguards['triggered_by']}"
    return None


def _last_instant(run: RunRecord) -> float | None:
    instants = [e["t"] for e in run.timeline]
    for c in run.clients:
        if c.t0 is not None and c.t:
            instants.append(c.t0 + c.t[-1])
    return max(instants, default=None)


# -- small readers -------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _last_line(lines: list[str]) -> str | None:
    """The exception's own line, without chaoslib's wrapper: ``RuntimeError: unreachable``."""
    text = [line.strip() for chunk in lines for line in chunk.splitlines() if line.strip()]
    if not text:
        return None
    last = text[-1]
    wrapper = "chaoslib.exceptions.ActivityFailed: "
    return last[len(wrapper) :] if last.startswith(wrapper) and len(last) > len(wrapper) else last
