"""The exploration loop: draw a schedule, run it for real, shrink what it breaks, confirm, write it down.

One trial = one schedule run as a Chaos Toolkit experiment (``experiment``),
in this process through chaoslib exactly as ``chaos run`` runs it (the
suite runner's ``run_one``): a fresh sandbox, the steady state, the
schedule's traffic and faults, every invariant as a method probe. Its
journal says which invariants were violated.

For each invariant a trial violates (those with no finding yet first):

1. skip it if a finding of that invariant already exists with the same
   kinds of violation (the innermost errors, "wrong_answer", ...) and the same
   stack: most likely the same defect, reached another way (counted as
   ``also_seen``, with the fault kinds that reached it). For
   ``recovers_after_faults`` and ``no_errors_without_faults`` the trigger
   matters too (an oversized answer from the host and a timeout in the
   network both leave a connection failing with MalformedPayloadError; they
   are different defects): there the finding's fault sources (service,
   network, frame) and traffic event kinds must also be in this schedule;
2. shrink (``shrink``), starting from the simplest schedule seen so far that
   violates it, with the property "a real run of the candidate violates
   it". Every run's violations are remembered for every invariant, so
   shrinking one invariant can hand another a simpler starting point;
3. confirm: run the minimal schedule ``confirm_runs`` more times (k of n).
   If it reproduces less than half the time, try the schedule the shrinker
   accepted before it (at most ``WALK_BACK`` times): a finding must replay;
4. de-duplicate by invariant and minimal signature (fault kinds, traffic
   event kinds, stack); write the experiment for the finding.

The budget covers all of it: a run starts only if its estimated duration
(the slowest sandbox so far plus the schedule's length) fits. Every
decision comes from one ``random.Random(seed)``; each trial's sandbox seed
is drawn from it and recorded (``trials.json``).
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosagenkit.explore.catalogue import kinds_for
from chaosagenkit.explore.experiment import build_experiment, invariant_probe_name
from chaosagenkit.explore.findings import write_findings
from chaosagenkit.explore.generate import GeneratorSettings, draw_schedule
from chaosagenkit.explore.invariants import INVARIANTS, TOLERANCES, recovery_s
from chaosagenkit.explore.recording import RECOVERY_TAIL_S
from chaosagenkit.explore.schedule import Schedule
from chaosagenkit.explore.shrink import complexity, shape, shrink

__all__ = ["ExploreOptions", "Explorer", "Trial"]

#: Before any trial has been timed: what building and tearing down a sandbox may take (s).
INITIAL_OVERHEAD_S = 20.0
#: Stop exploring after this many trials in a row that could not run.
MAX_CONSECUTIVE_ERRORS = 3
#: How many less-shrunk schedules to confirm when the minimal one does not reproduce.
WALK_BACK = 2
#: Invariants whose violations are told apart by what triggered them, not only by their kinds.
TRIGGER_MATTERS = ("recovers_after_faults", "no_errors_without_faults")


class BudgetExhausted(Exception):
    """The next run would not fit in the budget."""


@dataclass(frozen=True)
class ExploreOptions:
    """Everything ``chaosagenkit explore`` was asked (see cli.py for each one's meaning)."""

    out: Path
    stacks: tuple[tuple[dict[str, Any], ...], ...]
    seed: int
    budget_s: float = 600.0
    transport: str = "tcp"
    agent: str = "chaosagenkit.targets:echo"
    answer_check: str = "echo"
    remote_timeout_ms: int = 2000
    confirm_runs: int = 3
    max_faults: int = 3
    max_shrink_runs: int = 8
    idle_gap_s: float = 62.0  # 0: never draw idle gaps
    sources: tuple[str, ...] | None = None


@dataclass
class Trial:
    """One real run of a schedule."""

    number: int
    purpose: str  # explore | shrink | confirm
    schedule: Schedule
    at_s: float  # when it started, s since the exploration began
    duration_s: float = 0.0
    status: str = ""  # the journal's status, or "error"
    baseline_met: bool | None = None
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    experiment: str = ""
    journal: str = ""

    @property
    def valid(self) -> bool:
        """Completed, baseline met, every invariant probe ran."""
        return self.status == "completed" and self.baseline_met is True and not self.problems

    @property
    def violated(self) -> list[str]:
        if not self.valid:
            return []
        return [name for name, verdict in self.verdicts.items() if verdict.get("violations", 0) > 0]

    def to_json(self) -> dict[str, Any]:
        return {
            "trial": self.number,
            "purpose": self.purpose,
            "seed": self.schedule.seed,
            "at_s": round(self.at_s, 1),
            "duration_s": round(self.duration_s, 1),
            "status": self.status,
            "baseline_met": self.baseline_met,
            "violated": self.violated,
            "problems": self.problems,
            "schedule": self.schedule.to_json(),
            "experiment": self.experiment,
            "journal": self.journal,
        }


class Explorer:
    """Runs one exploration (``run``) and returns its exit code."""

    def __init__(self, options: ExploreOptions, out: Any = None, clock: Any = time.monotonic) -> None:
        self.options = options
        self.out = out or sys.stdout
        self.clock = clock
        self.rng = random.Random(options.seed)
        self.started = 0.0
        self.trials: list[Trial] = []
        self.findings: list[dict[str, Any]] = []
        self.seen: dict[str, list[Trial]] = {}  # schedule key -> its valid runs
        self.first_violation_s: dict[str, float] = {}
        self.faults_tried = 0
        self.shrink_steps = 0
        self.overhead_s = INITIAL_OVERHEAD_S
        self.stopped_by = ""
        self.idle_drawn = False
        kinds = tuple(kinds_for(options.transport, options.sources))
        self.settings = GeneratorSettings(
            stacks=options.stacks,
            kinds=kinds,
            remote_timeout_ms=options.remote_timeout_ms,
            max_faults=options.max_faults,
            idle_gap_s=options.idle_gap_s or 62.0,
        )

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> int:
        self.started = self.clock()
        self.options.out.mkdir(parents=True, exist_ok=True)
        (self.options.out / "trials").mkdir(exist_ok=True)
        self._configure_logging()
        o = self.options
        self._say(
            f"explore: seed {o.seed}, budget {o.budget_s:g} s, transport {o.transport}, agent {o.agent}, "
            f"{len(o.stacks)} stack(s), {len(self.settings.kinds)} fault kinds"
        )
        consecutive_errors = 0
        try:
            while True:
                schedule = draw_schedule(self.rng, self.settings, allow_idle=self._idle_fits())
                self.idle_drawn = self.idle_drawn or "idle" in schedule.event_kinds
                trial = self._run(schedule, "explore")
                self.faults_tried += len(schedule.faults)
                if not trial.valid:
                    consecutive_errors += 1
                    if len(self.trials) == 1 or consecutive_errors >= MAX_CONSECUTIVE_ERRORS:
                        self.stopped_by = f"trials cannot run: {self._why(trial)}"
                        break
                    continue
                consecutive_errors = 0
                self._pursue(trial)
        except BudgetExhausted:
            self.stopped_by = self.stopped_by or "budget"
        except KeyboardInterrupt:
            self.stopped_by = "interrupted (Ctrl-C)"
        return self._finish()

    def _pursue(self, trial: Trial) -> None:
        """Shrink, confirm and record each invariant ``trial`` violated (unfound ones first).

        Then the same for invariants that only the shrinking and confirmation
        runs it caused violated, and that no finding has yet (found on the way).
        """
        first_run = len(self.trials)
        self._pursue_violations(trial)
        pursued: set[str] = set(trial.violated)
        while True:
            found = {f["invariant"] for f in self.findings}
            later = [
                (name, t)
                for t in self.trials[first_run:]
                for name in t.violated
                if name not in found and name not in pursued
            ]
            if not later:
                return
            name, run = later[0]
            pursued.add(name)
            self._say(f"    {name}: violated on the way (run {run.number})")
            self._pursue_violations(run, only=name)

    def _pursue_violations(self, trial: Trial, only: str | None = None) -> None:
        found = {f["invariant"] for f in self.findings}
        violated = [only] if only else trial.violated
        for invariant in sorted(violated, key=lambda name: (name in found, name)):
            self.first_violation_s.setdefault(invariant, trial.at_s + trial.duration_s)
            kinds = trial.verdicts[invariant].get("kinds") or []
            covered = self._covering_finding(invariant, kinds, trial.schedule)
            if covered is not None:
                covered["also_seen"] += 1
                covered["also_seen_with"] = sorted(
                    set(covered["also_seen_with"]) | set(trial.schedule.fault_kinds)
                )
                self._say(
                    f"    {invariant}: like finding {covered['id']} ({', '.join(kinds)}), not shrunk again"
                )
                continue
            self._make_finding(invariant, trial)

    def _make_finding(self, invariant: str, trial: Trial) -> None:
        start = self._simplest_violating(invariant, trial)
        self._say(f"    shrinking {invariant} from: {start.schedule.describe()}")

        def keep_going(candidate: Schedule) -> bool:
            return self._fits(self._estimate_s(candidate))

        def still_fails(candidate: Schedule) -> bool:
            return invariant in self._violations_of(candidate, "shrink")

        def on_step(candidate: Schedule, failed: bool) -> None:
            self.shrink_steps += 1
            verdict = "still violates" if failed else "holds"
            known = "" if self.trials[-1].schedule is candidate else " (known from an earlier run)"
            self._say(f"      shrinking step {self.shrink_steps}: {candidate.describe()} -> {verdict}{known}")

        first_at = start.verdicts.get(invariant, {}).get("first_at_s")
        # runs of the same lineage (sandbox seed and stack) that did not violate it
        held = {
            shape(t.schedule)
            for runs in self.seen.values()
            for t in runs
            if t.schedule.seed == start.schedule.seed
            and t.schedule.stack == start.schedule.stack
            and invariant not in t.violated
        }
        result = shrink(
            start.schedule,
            still_fails,
            keep_going=keep_going,
            max_runs=self.options.max_shrink_runs,
            first_violation_s=first_at,
            on_step=on_step,
            held_shapes=held,
        )
        minimal, reproduced, runs = self._confirm(invariant, list(result.chain) or [result.schedule])
        evidence_trial = next(
            (t for t in reversed(self.seen.get(minimal.key(), [])) if invariant in t.violated), start
        )
        kinds = evidence_trial.verdicts.get(invariant, {}).get("kinds") or []
        signature = self._signature(invariant, minimal, kinds)
        for finding in self.findings:
            if finding["signature"] == signature:
                finding["also_seen"] += 1
                self._say(f"    {invariant}: shrank to finding {finding['id']} again")
                return
        finding = {
            "id": len(self.findings) + 1,
            "invariant": invariant,
            "title": INVARIANTS[invariant].title,
            "signature": signature,
            "minimal_schedule": minimal.to_json(),
            "summary": minimal.describe(),
            "experiment": "",
            "reproduction": {
                "reproduced": reproduced,
                "runs": runs,
                "rate": round(reproduced / runs, 3) if runs else None,
                "confirmed": runs > 0 and 2 * reproduced >= runs,
            },
            "time_to_first_violation_s": round(trial.at_s + trial.duration_s, 1),
            "found_in_trial": trial.number,
            "trial_seed": trial.schedule.seed,
            "shrinking": {
                "steps": result.steps,
                "runs": result.runs,
                "stopped_by_budget": result.exhausted,
                "from": start.schedule.to_json(),
            },
            "evidence": evidence_trial.verdicts.get(invariant, {}).get("examples", []),
            "also_seen": 0,
            "also_seen_with": [],
        }
        finding["experiment"] = self._write_finding_experiment(finding, minimal)
        self.findings.append(finding)
        self._say(
            f"    finding {finding['id']}: {invariant}: {minimal.describe()}  "
            f"(reproduced {reproduced}/{runs}) -> {finding['experiment']}"
        )

    def _confirm(self, invariant: str, chain: list[Schedule]) -> tuple[Schedule, int, int]:
        """(schedule, reproduced, runs): the most shrunk schedule of ``chain`` that reproduces.

        Runs ``confirm_runs`` times from the minimal schedule back (at most
        ``WALK_BACK`` steps) until one reproduces at least half the time; else
        the best rate seen (the simpler one on a tie). Fewer runs when the
        budget is short.
        """
        tried: list[tuple[float, int, Schedule, int, int]] = []
        for back, schedule in enumerate(reversed(chain[-(WALK_BACK + 1) :])):
            # confirmation runs check every invariant: those of another finding count here too
            confirmations = [t for t in self.seen.get(schedule.key(), []) if t.purpose == "confirm"]
            attempts = 0
            spent = 0.0
            while (
                len(confirmations) < self.options.confirm_runs
                and attempts < self.options.confirm_runs + 2
                and self._fits(self._estimate_s(schedule))
                # a long schedule (an idle gap) gets fewer confirmations than the budget's quarter
                and (attempts == 0 or spent + self._estimate_s(schedule) <= self.options.budget_s / 4)
            ):
                attempts += 1
                trial = self._run(schedule, "confirm")
                spent += trial.duration_s
                if trial.valid:
                    confirmations.append(trial)
            confirmations = confirmations[: self.options.confirm_runs]
            runs = len(confirmations)
            reproduced = sum(invariant in t.violated for t in confirmations)
            if runs == 0:
                break
            tried.append((reproduced / runs, -back, schedule, reproduced, runs))
            if 2 * reproduced >= runs:
                return schedule, reproduced, runs
            self._say(f"    {invariant}: reproduced {reproduced}/{runs}; trying the schedule before it")
        if not tried:
            return chain[-1], 0, 0
        _, _, schedule, reproduced, runs = max(tried, key=lambda t: (t[0], t[1]))
        return schedule, reproduced, runs

    # -- runs ------------------------------------------------------------------------------

    def _violations_of(self, schedule: Schedule, purpose: str) -> list[str]:
        """What ``schedule`` violated in any valid run so far (running it once if it never ran)."""
        known = self.seen.get(schedule.key())
        if not known:
            known = [self._run(schedule, purpose)]
        return sorted({name for trial in known for name in trial.violated})

    def _run(self, schedule: Schedule, purpose: str) -> Trial:
        """Run ``schedule`` for real, if it fits the budget; record the trial."""
        if not self._fits(self._estimate_s(schedule)):
            raise BudgetExhausted
        trial = Trial(len(self.trials) + 1, purpose, schedule, at_s=self._elapsed())
        self.trials.append(trial)
        started = self.clock()
        self._execute(trial)
        trial.duration_s = self.clock() - started
        if trial.valid:
            self.seen.setdefault(schedule.key(), []).append(trial)
            span = schedule.busy_until_s + recovery_s(schedule.stack, self.options.remote_timeout_ms)
            overhead = max(trial.duration_s - span - RECOVERY_TAIL_S, 0.0)
            # the first measured sandbox replaces the guess; after that, the slowest one counts
            first = not any(t.valid for t in self.trials[:-1])
            self.overhead_s = overhead if first else max(self.overhead_s, overhead)
        self._say(self._trial_line(trial))
        self._save_trials()
        if trial.status == "interrupted":
            raise KeyboardInterrupt
        return trial

    def _execute(self, trial: Trial) -> None:
        """Write the trial's experiment, run it through chaoslib as ``chaos run`` would, read its journal."""
        # Imported on use: ~60 ms of imports only this path needs.
        from chaosagenkit.suite import RunPlan, run_one

        trials_dir = self.options.out / "trials"
        path = trials_dir / f"trial-{trial.number:04d}.json"
        experiment = build_experiment(
            trial.schedule,
            transport=self.options.transport,
            agent=self.options.agent,
            answer_check=self.options.answer_check,
            remote_timeout_ms=self.options.remote_timeout_ms,
            extension={"trial": trial.number, "purpose": trial.purpose, "explore_seed": self.options.seed},
        )
        path.write_text(json.dumps(experiment, indent=2))
        trial.experiment = str(path.relative_to(self.options.out))
        try:
            result = run_one(RunPlan(path, self.options.transport), trials_dir, {}, {})
        except Exception as e:  # the experiment could not run at all
            trial.status = "error"
            trial.problems.append(f"{type(e).__name__}: {e}")
            return
        journal = json.loads(result.journal_path.read_text()) if result.journal_path else {}
        if result.journal_path:
            trial.journal = str(result.journal_path.relative_to(self.options.out))
        self._read_journal(trial, journal)

    def _read_journal(self, trial: Trial, journal: dict[str, Any]) -> None:
        trial.status = str(journal.get("status") or "error")
        before = (journal.get("steady_states") or {}).get("before") or {}
        trial.baseline_met = before.get("steady_state_met")
        probe_names = {invariant_probe_name(name): name for name in INVARIANTS}
        for run in journal.get("run") or []:
            activity = run.get("activity") or {}
            name = activity.get("name", "")
            if run.get("status") != "succeeded":
                trial.problems.append(f"{name}: {_last_line(run.get('exception'))}")
                continue
            if name in probe_names and isinstance(run.get("output"), dict):
                trial.verdicts[probe_names[name]] = run["output"]
        missing = [n for n in INVARIANTS if n not in trial.verdicts]
        if trial.status == "completed" and trial.baseline_met and missing and not trial.problems:
            trial.problems.append(f"no verdict for {', '.join(missing)}")
        if trial.baseline_met is False:
            trial.problems.append("the steady state before the method was not met")

    # -- bookkeeping --------------------------------------------------------------------------

    def _simplest_violating(self, invariant: str, trial: Trial) -> Trial:
        """The simplest run so far that violated ``invariant`` with nothing ``trial``'s schedule lacks."""
        candidates = [
            t
            for runs in self.seen.values()
            for t in runs
            if invariant in t.violated and _within(t.schedule, trial.schedule)
        ]
        return min(candidates or [trial], key=lambda t: complexity(t.schedule))

    def _covering_finding(
        self, invariant: str, kinds: list[str], schedule: Schedule
    ) -> dict[str, Any] | None:
        """An existing finding this violation most likely repeats (see the module docstring), or None."""
        for finding in self.findings:
            signature = finding["signature"]
            if (
                finding["invariant"] != invariant
                or not set(kinds) <= set(signature["kinds"])
                or signature["stack"] != self._stack_index(schedule)
            ):
                continue
            if invariant in TRIGGER_MATTERS and not (
                {kind.split(".", 1)[0] for kind in signature["faults"]} <= {f.source for f in schedule.faults}
                and set(signature["traffic"]) <= set(schedule.event_kinds)
            ):
                continue
            return finding
        return None

    def _signature(self, invariant: str, schedule: Schedule, kinds: list[str]) -> dict[str, Any]:
        return {
            "invariant": invariant,
            "kinds": sorted(kinds),
            "faults": list(schedule.fault_kinds),
            "traffic": list(schedule.event_kinds),
            "stack": self._stack_index(schedule),
        }

    def _stack_index(self, schedule: Schedule) -> int:
        for index, stack in enumerate(self.options.stacks):
            if tuple(stack) == tuple(schedule.stack):
                return index
        return -1

    def _estimate_s(self, schedule: Schedule) -> float:
        span = (
            schedule.busy_until_s
            + recovery_s(schedule.stack, self.options.remote_timeout_ms)
            + RECOVERY_TAIL_S
        )
        return self.overhead_s + span + TOLERANCES.leak_settle_s

    def _fits(self, estimate_s: float) -> bool:
        return self._elapsed() + estimate_s <= self.options.budget_s

    def _idle_fits(self) -> bool:
        """One idle-gap trial per exploration, while its shrinking and confirmation still fit."""
        if self.options.idle_gap_s <= 0 or self.idle_drawn:
            return False
        return self.options.budget_s - self._elapsed() > 6 * (self.options.idle_gap_s + self.overhead_s)

    def _elapsed(self) -> float:
        return self.clock() - self.started

    # -- output --------------------------------------------------------------------------------

    def _finish(self) -> int:

        self._save_trials()
        errors = [t for t in self.trials if not t.valid]
        write_findings(self.options.out, self.findings, self._summary(errors))
        self._say(
            f"done ({self.stopped_by or 'budget'}) after {self._elapsed():.0f} s: {len(self.trials)} runs "
            f"({sum(t.purpose == 'explore' for t in self.trials)} trials, {self.faults_tried} faults tried), "
            f"{len(self.findings)} finding(s) over {len({f['invariant'] for f in self.findings})} invariant(s), "
            f"{self.shrink_steps} shrinking steps, {len(errors)} run(s) that could not be judged"
        )
        self._say(f"findings: {self.options.out / 'findings.md'}")
        if self.findings:
            return 1
        if errors or self.stopped_by.startswith(("trials cannot run", "interrupted")) or not self.trials:
            return 2
        return 0

    def _summary(self, errors: list[Trial]) -> dict[str, Any]:
        o = self.options
        return {
            "seed": o.seed,
            "budget_s": o.budget_s,
            "elapsed_s": round(self._elapsed(), 1),
            "stopped_by": self.stopped_by or "budget",
            "transport": o.transport,
            "agent": o.agent,
            "stacks": [list(s) for s in o.stacks],
            "remote_timeout_ms": o.remote_timeout_ms,
            "runs": len(self.trials),
            "trials": sum(t.purpose == "explore" for t in self.trials),
            "faults_tried": self.faults_tried,
            "shrink_steps": self.shrink_steps,
            "first_violation_s": {k: round(v, 1) for k, v in sorted(self.first_violation_s.items())},
            "unjudged_runs": [{"trial": t.number, "why": self._why(t)} for t in errors],
            "tolerances": {k: v for k, v in vars(TOLERANCES).items()},
        }

    def _save_trials(self) -> None:
        data = {"seed": self.options.seed, "trials": [t.to_json() for t in self.trials]}
        (self.options.out / "trials.json").write_text(json.dumps(data, indent=2))

    def _write_finding_experiment(self, finding: dict[str, Any], schedule: Schedule) -> str:
        invariant = finding["invariant"]
        kinds = "-".join(k.split(".", 1)[1] for k in schedule.fault_kinds) or "no-fault"
        name = f"{finding['id']:02d}-{invariant.replace('_', '-')}-{kinds.replace('_', '-')}.json"[:120]
        transport = self.options.transport
        rate = finding["reproduction"]
        line = (
            f"{INVARIANTS[invariant].title}: violated by {schedule.describe()} "
            f"(reproduced {rate['reproduced']}/{rate['runs']} by chaosagenkit explore --seed {self.options.seed})"
        )
        experiment = build_experiment(
            schedule,
            transport=transport,
            agent=self.options.agent,
            answer_check=self.options.answer_check,
            remote_timeout_ms=self.options.remote_timeout_ms,
            invariants=[invariant],
            title=f"Explored: {INVARIANTS[invariant].title} (violated by {schedule.describe()})",
            description=(
                f"Minimal schedule found by `chaosagenkit explore --seed {self.options.seed}` "
                f"(trial {finding['found_in_trial']}, shrunk in {finding['shrinking']['steps']} steps). "
                f"Expected: {INVARIANTS[invariant].title}. Replay: chaos run {name}"
            ),
            extension={
                "verdicts": {transport: "deviates"},
                "deviations": {transport: [invariant_probe_name(invariant)]},
                "findings": {transport: line},
                "finding": {k: v for k, v in finding.items() if k not in ("experiment",)},
            },
        )
        (self.options.out / name).write_text(json.dumps(experiment, indent=2))
        return name

    def _trial_line(self, trial: Trial) -> str:
        what = ", ".join(trial.violated) if trial.violated else ("holds" if trial.valid else self._why(trial))
        return (
            f"[{trial.at_s:5.0f}s] run {trial.number} ({trial.purpose}, seed {trial.schedule.seed}, "
            f"{trial.duration_s:.0f} s): {trial.schedule.describe()} -> {what}"
        )

    @staticmethod
    def _why(trial: Trial) -> str:
        if trial.problems:
            return "; ".join(trial.problems)[:200]
        return f"status {trial.status or 'unknown'}"

    def _say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def _configure_logging(self) -> None:
        import logging

        # Imported on use: ~60 ms of imports only this path needs.
        from chaosagenkit.suite import _configure_logging

        log_file = self.options.out / "explore.log"
        _configure_logging(log_file)
        # asyncio's own warnings (a client writing to a connection agenkit never reopens, F1)
        # belong in the log, not on the console between the progress lines
        asyncio_logger = logging.getLogger("asyncio")
        asyncio_logger.addHandler(logging.FileHandler(log_file))
        asyncio_logger.propagate = False


def _within(inner: Schedule, outer: Schedule) -> bool:
    """True when ``inner`` uses no fault or traffic kind, and no stack, that ``outer`` lacks."""
    return (
        set(inner.fault_kinds) <= set(outer.fault_kinds)
        and set(inner.event_kinds) <= set(outer.event_kinds)
        and inner.stack == outer.stack
    )


def _last_line(text: Any) -> str:
    if isinstance(text, list):
        text = "".join(text)
    lines = [line for line in str(text or "").strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "failed"
