"""One journal read into what every report shows: the experiment's result.

Any Chaos Toolkit journal can be read, not only ours. The rule, stated
once: the report shows what the journal records and marks the rest as
missing; it never fills a gap. A probe the experiment declares but the
journal never ran is "not run"; a run entry without a status "did not
finish"; a tolerance nobody checked is "not checked" (Chaos Toolkit does
not check the tolerance of method probes: chaosagenkit's control does, and
marks the entry ``tolerance_met``).

The verdict is ``chaosagenkit.verdict.judge``'s, the one engine every
part of chaosagenkit uses (holds | deviates | baseline_not_met | failed |
aborted | interrupted | skipped); this module only reads what the reports
show around it. Against the experiment's record (``--against-recorded``) a
run compares by ``chaosagenkit.verdict.compare``: its verdict and its set of
deviations.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaosagenkit import configuration as run_configuration
from chaosagenkit.report.outcomes import ClientOutcomes, OutcomeStats, parse_client
from chaosagenkit.report.windows import FaultWindow, fault_windows, usable_events
from chaosagenkit.validation import finite_float
from chaosagenkit.verdict import (
    Comparison,
    Judgement,
    Verdict,
    compare,
    exception_line,
    judge,
    not_run,
    skipped,
)

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
    deviations: dict[str, list[str]] = field(default_factory=dict)
    unstable: dict[str, dict[str, str]] = field(default_factory=dict)


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
    #: what was tested with (see chaosagenkit.control): versions, agents, answer checks, overrides
    versions: dict[str, Any] = field(default_factory=dict)
    agents: dict[str, Any] = field(default_factory=dict)
    answer_checks: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    #: steady-state probe name -> its tolerance with ${...} resolved
    tolerances: dict[str, Any] = field(default_factory=dict)
    #: the ``chaosagenkit run`` invocation that wrote the journal, if any
    suite_id: str | None = None


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
    judgement: Judgement = field(default_factory=lambda: not_run("not judged"))
    #: ``retry`` for experiments/retry.json; with the transport, the stable id ``retry.tcp``
    experiment_id: str | None = None
    #: why there is no journal (skipped, could not start); None for a real journal
    no_journal_reason: str | None = None
    _stats: dict[str, OutcomeStats] = field(default_factory=dict, repr=False, compare=False)

    def client_stats(self, client: ClientOutcomes) -> OutcomeStats:
        """The client's summary against this run's fault windows (computed once)."""
        if client.name not in self._stats:
            self._stats[client.name] = client.stats(self.windows)
        return self._stats[client.name]

    @property
    def verdict(self) -> Verdict:
        return self.judgement.verdict

    @property
    def name(self) -> str:
        """The experiment's title with the transport, as people read it."""
        return f"{self.title} [{self.transport}]" if self.transport else self.title

    @property
    def test_id(self) -> str:
        """Stable across runs and title changes, as CI tracks it: ``retry.tcp``."""
        base = self.experiment_id or re.sub(r"[^a-z0-9]+", "_", self.title.lower()).strip("_") or "experiment"
        return f"{base}.{self.transport}" if self.transport else base

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
    def recorded_deviations(self) -> list[str] | None:
        """The deviations the experiment file records for this transport (None: not recorded)."""
        if not self.plan:
            return None
        if self.transport and self.transport in self.plan.deviations:
            return self.plan.deviations[self.transport]
        return None

    @property
    def comparison(self) -> Comparison:
        """This run against the experiment's record (verdict and deviations)."""
        unstable = (self.plan.unstable.get(self.transport) if self.plan and self.transport else None) or {}
        return compare(
            self.judgement, self.recorded_verdict, self.recorded_deviations, self.recorded_finding, unstable
        )

    @property
    def observed_verdict(self) -> str:
        """This run's verdict in the words experiment files record: holds | deviates | ..."""
        return self.verdict.value

    @property
    def verdict_sentence(self) -> str:
        """The engine's one line on what decided the verdict, as a sentence."""
        reason = self.judgement.reason
        return (reason[:1].upper() + reason[1:]).rstrip(".") + "."

    @property
    def tested_with(self) -> list[tuple[str, str]]:
        """What was tested: agent, answer check, transport, overrides, versions (as recorded)."""
        facts: list[tuple[str, str]] = []
        run = self.run
        if run is not None and run.agents:
            facts.append(("agent", ", ".join(f"{k}: {v}" for k, v in run.agents.items())))
        if run is not None and run.answer_checks:
            checks = set(map(str, run.answer_checks.values()))
            text = (
                checks.pop()
                if len(checks) == 1
                else ", ".join(f"{k}: {v}" for k, v in run.answer_checks.items())
            )
            facts.append(("answer check", text))
        if self.transport:
            facts.append(("transport", self.transport))
        if run is not None and run.overrides:
            overridden = run_configuration.public(run.overrides)
            facts.append(("overridden", ", ".join(f"{k}={_compact(v)}" for k, v in overridden.items())))
        if run is not None and run.versions:
            facts.append(("versions", ", ".join(f"{k} {v}" for k, v in run.versions.items() if v)))
        return facts

    @property
    def has_journal(self) -> bool:
        return self.no_journal_reason is None

    @property
    def warnings(self) -> list[str]:
        """What weakens the verdict: dry runs, unplayed rollbacks, unchecked expectations."""
        found: list[str] = []
        if not self.has_journal:
            return found
        if self.dry:
            found.append(f"dry run ({self.dry}): activities were not executed")
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
    ext = _extension(journal) or {}
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
    result.experiment_id = _experiment_id(ext, source, result.transport)
    if run is not None:
        _fill_expectations_from_extension(result.method, _dict(ext))
        _resolve_steady_state_tolerances([*result.before, *result.after], run.tolerances)
        run_end = end.timestamp() if end else _last_instant(run)
        result.windows = fault_windows(run.timeline, run_end)
    result.judgement = judge(journal)
    return result


def result_without_journal(
    title: str,
    verdict: str,
    reason: str,
    transport: str | None = None,
    source: str = "",
    experiment_id: str | None = None,
) -> ExperimentResult:
    """A run the reports must list although it left no journal.

    ``verdict`` is "skipped" (not run on purpose, e.g. a transport the
    experiment skips) or anything else: it could not start (failed, with
    ``reason``). ``experiment_id`` is the experiment file's name (``retry``).
    """
    result = ExperimentResult(
        source=source, title=title, description=None, tags=[], status=None, deviated=False,
        start=None, end=None, duration_s=None, hypothesis_title=None, before=[], after=[],
        during_iterations=0, during_not_met=0, method=[], rollbacks=[], transport=transport,
        plan=None, run=None, windows=[], node=None, interruption=None, dry=None,
    )  # fmt: skip
    reason = reason or "no reason given"
    result.judgement = skipped(reason) if verdict == "skipped" else not_run(reason)
    result.no_journal_reason = reason
    result.experiment_id = experiment_id
    return result


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
        error=exception_line(lines),
        traceback="".join(lines) if lines else None,
        background=activity.get("background") is True,
    )


def _resolve_steady_state_tolerances(entries: list[RunEntry], resolved: dict[str, Any]) -> None:
    """Show a steady-state probe's tolerance as checked (``${name}`` resolved by the control)."""
    for entry in entries:
        if entry.has_tolerance and entry.name in resolved and resolved[entry.name] != entry.tolerance:
            entry.declared_tolerance, entry.tolerance = entry.tolerance, resolved[entry.name]


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
    if ext is None or not any(key in ext for key in ("timeline", "clients", "seed")):
        return None  # no control ran: at most chaosagenkit run's label
    timeline = _list(ext.get("timeline"))
    usable = usable_events(timeline)
    clients = _dict(ext.get("clients"))
    seed = ext.get("seed")
    suite = _dict(ext.get("suite"))
    return RunRecord(
        version=str(ext["version"]) if ext.get("version") is not None else None,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        configuration=run_configuration.public(_dict(ext.get("configuration"))),
        timeline=usable,
        unplaced_events=len(timeline) - len(usable),
        clients=[parse_client(str(name), rec) for name, rec in clients.items()],
        expectations_met=ext.get("expectations_met")
        if isinstance(ext.get("expectations_met"), bool)
        else None,
        topology=_dict(ext.get("topology")),
        versions=_dict(ext.get("versions")),
        agents=_dict(ext.get("agents")),
        answer_checks=_dict(ext.get("answer_checks")),
        overrides=run_configuration.public(_dict(ext.get("overrides"))),
        tolerances=_dict(ext.get("tolerances")),
        suite_id=str(suite["id"]) if suite.get("id") else None,
    )


def _experiment_id(ext: dict[str, Any], source: str, transport: str | None) -> str | None:
    """The experiment file's name: as ``chaosagenkit run`` labelled the journal, else its file name."""
    if isinstance(ext.get("experiment"), str) and ext["experiment"]:
        return ext["experiment"]
    name = Path(source).name
    if transport and name.endswith(f".{transport}.json"):  # chaosagenkit run's <experiment>.<transport>.json
        return name[: -len(f".{transport}.json")] or None
    return None


def _plan(experiment: dict[str, Any]) -> PlanRecord | None:
    for ext in _list(experiment.get("extensions")):
        if isinstance(ext, dict) and ext.get("name") == EXTENSION_NAME:
            verdicts, findings = _dict(ext.get("verdicts")), _dict(ext.get("findings"))
            deviations = _dict(ext.get("deviations"))
            if ext.get("plan") is None and not verdicts and not findings:
                continue
            return PlanRecord(
                plan=str(ext["plan"]) if ext.get("plan") is not None else None,
                verdicts={str(k): str(v) for k, v in verdicts.items()},
                findings={str(k): str(v) for k, v in findings.items()},
                deviations={
                    str(k): [str(n) for n in v] for k, v in deviations.items() if isinstance(v, list)
                },
                unstable={
                    str(k): {str(n): str(r) for n, r in v.items()}
                    for k, v in _dict(ext.get("unstable")).items()
                    if isinstance(v, dict)
                },
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


def _compact(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:79] + "…"


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
