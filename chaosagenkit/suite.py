"""``chaosagenkit run``: run a suite of experiments and tell apart what ``chaos run`` cannot.

Each experiment runs once per transport it declares (its ``chaosagenkit``
extension: ``"transports": ["tcp", "http"]``; a transport listed under
``"skip"`` with a reason is reported as skipped), through chaoslib exactly
as ``chaos run`` would, with ``transport`` set in its configuration. One
journal per run: ``<journals>/<experiment>.<transport>.json``. Verdicts come
from ``chaosagenkit.verdict``, the one engine every report uses too.

Exit codes (README's table):

- 0: every run held (or was skipped); with ``--against-recorded``: every
  verdict and every deviation set is the recorded one;
- 1: some run deviated; with ``--against-recorded``: some verdict or
  deviation set differs from the recorded one;
- 2: some run did not meet its baseline, failed, was aborted or interrupted
  (the system was not judged), a run left a process or registry entry behind
  (``left_behind``, checked after every run), or the command line or
  configuration is wrong (nothing ran).

The configuration is checked before the first run: an unknown ``--var`` key
(declared by none of the experiments), ``--var transport=...`` (use
``--transport``), a malformed value; ``--var K=V`` reads V as JSON when it
parses (``chaosagenkit.configuration``).

``--jobs N`` runs N experiments at once, each in its own process (forked
from the runner after it imported chaoslib and agenkit once; the run's
registry, ``chaosagenkit.sandbox``, is process-wide), with one progress
line per finished run. Ctrl-C stops the suite: serially, chaoslib catches the
KeyboardInterrupt itself and returns an "interrupted" journal, so a SIGINT
handler notes it and nothing runs after; in parallel, the runner forwards
one SIGINT to every running worker (they run in their own sessions, so a
terminal's Ctrl-C reaches the runner only), waits while each tears its
sandbox down, and starts nothing new. A worker whose runner dies interrupts
itself the same way. A ``*.json`` in a folder that is not valid JSON is an
error; valid JSON that is not an experiment is skipped.
"""

from __future__ import annotations

import difflib
import importlib
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from chaosagenkit import ACTIVITY_MODULES
from chaosagenkit import configuration as run_configuration
from chaosagenkit.builtin_suite import experiments_dir
from chaosagenkit.sandbox import SANDBOX
from chaosagenkit.supervisor import parent_is_gone
from chaosagenkit.verdict import Comparison, Judgement, Verdict, compare, exit_code, judge, not_run, skipped

__all__ = [
    "DEFAULT_JOBS",
    "EXTENSION",
    "TRANSPORTS",
    "RunPlan",
    "RunResult",
    "check_configuration",
    "experiment_extension",
    "experiment_paths",
    "left_behind",
    "plan_runs",
    "record_observed",
    "run",
    "run_one",
    "run_suite",
    "suite_exit_code",
]

EXTENSION = "chaosagenkit"
#: agenkit's transports, by their URL schemes
TRANSPORTS = ("tcp", "unix", "ws", "http", "h2c", "grpc")
#: Runs at once by default: one per core, at most 4. A run is not only timers: it uses
#: about as much CPU as it lasts (a chaos host, a proxy, the clients), and the latency
#: bounds the experiments check feel a crowded machine (benchmarks/results/suite.md:
#: on 2 cores, 3 at once took the suite from 313 s to 164 s with every verdict kept, and
#: 2 at once beside other work made two HTTP baselines miss their timeout: baseline not
#: met, exit 2, never a false verdict). Lower it on a busy machine.
DEFAULT_JOBS = max(1, min(4, os.cpu_count() or 1))
#: How long a worker may take to tear down after the runner forwarded Ctrl-C.
STOP_GRACE_S = 60.0
_NO_JOURNAL = 3  # a worker's exit status when its run could not start (its reason on stderr)


@dataclass(frozen=True)
class RunPlan:
    """One experiment on one transport, with what the experiment records for it."""

    path: Path
    transport: str
    skip_reason: str | None = None
    recorded: str | None = None  # the verdict recorded in the experiment, if any
    recorded_deviations: tuple[str, ...] | None = None  # None: not recorded
    finding: str | None = None
    #: expectations recorded as unstable on this transport, with why (``verdict.compare``)
    unstable: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return f"{self.path.stem} [{self.transport}]"

    @property
    def id(self) -> str:
        """Stable across runs and titles: ``retry.tcp``."""
        return f"{self.path.stem}.{self.transport}"


@dataclass
class RunResult:
    plan: RunPlan
    judgement: Judgement
    duration_s: float = 0.0
    journal_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> Verdict:
        return self.judgement.verdict

    @property
    def detail(self) -> str:
        """One line on what decided the verdict."""
        return self.judgement.reason

    @property
    def comparison(self) -> Comparison:
        """This run against what its experiment records (the golden master)."""
        plan = self.plan
        return compare(
            self.judgement, plan.recorded, plan.recorded_deviations, plan.finding, dict(plan.unstable)
        )


def experiment_extension(experiment: dict[str, Any]) -> dict[str, Any]:
    """The experiment's own ``chaosagenkit`` extension (recorded verdicts, transports)."""
    for extension in experiment.get("extensions") or []:
        if isinstance(extension, dict) and extension.get("name") == EXTENSION:
            return extension
    return {}


def experiment_paths(paths: tuple[Path, ...] | list[Path]) -> list[Path]:
    """The paths given, or none: the built-in suite (``chaosagenkit.builtin_suite``)."""
    if paths:
        return list(paths)

    return [experiments_dir()]


def find_experiments(paths: list[Path]) -> list[Path]:
    """Experiment files among ``paths``; a folder means every ``*.json`` in it."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.glob("*.json") if _is_experiment(_read_json(p))))
        elif path.is_file():
            found.append(path)
        else:
            raise click.BadParameter(f"no such file or folder: {path}", param_hint="PATH")
    return found


def plan_runs(paths: list[Path], transports: tuple[str, ...] = ()) -> list[RunPlan]:
    """One ``RunPlan`` per experiment and transport, in file order."""
    plans = []
    for path in find_experiments(paths):
        experiment = _read_json(path)
        if not isinstance(experiment, dict):
            raise click.BadParameter(f"{path}: not a JSON experiment: not an object", param_hint="PATH")
        extension = experiment_extension(experiment)
        declared = extension.get("transports") or ["tcp"]
        if not isinstance(declared, list) or not all(t in TRANSPORTS for t in declared):
            _bad_extension(path, "transports", f"a list of {', '.join(TRANSPORTS)}", declared)
        tables = {}
        for key in ("skip", "verdicts", "deviations", "findings", "unstable"):
            tables[key] = extension.get(key) or {}
            if not isinstance(tables[key], dict):
                _bad_extension(path, key, "an object of TRANSPORT: ...", tables[key])
        for transport, names in tables["deviations"].items():
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                _bad_extension(path, f"deviations.{transport}", "a list of names", names)
        for transport, reasons in tables["unstable"].items():
            if not isinstance(reasons, dict) or not all(
                isinstance(n, str) and isinstance(r, str) and r for n, r in reasons.items()
            ):
                _bad_extension(path, f"unstable.{transport}", "an object of EXPECTATION: why", reasons)
        unmet = _unmet_requirement(extension.get("requires") or [])
        for transport in declared:
            if transports and transport not in transports:
                continue
            names = tables["deviations"].get(transport)
            plans.append(
                RunPlan(
                    path,
                    transport,
                    skip_reason=tables["skip"].get(transport) or unmet,
                    recorded=tables["verdicts"].get(transport),
                    recorded_deviations=None if names is None else tuple(sorted(set(names))),
                    finding=tables["findings"].get(transport),
                    unstable=tuple(sorted((tables["unstable"].get(transport) or {}).items())),
                )
            )
    return plans


def check_configuration(plans: list[RunPlan], config_vars: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Problems (one line each, naming the key) and notes about ``--var`` / ``--var-file`` values."""
    problems: list[str] = []
    notes: list[str] = []
    if "transport" in config_vars:
        problems.append(
            f"--var transport={config_vars['transport']}: use --transport "
            "(each experiment runs once per transport it declares)"
        )
    declared: dict[str, set[str]] = {}
    for path in dict.fromkeys(p.path for p in plans):
        configuration = _read_json(path).get("configuration")
        declared[path.stem] = set(configuration) if isinstance(configuration, dict) else set()
    everything = set().union(*declared.values()) if declared else set()
    for key in run_configuration.unknown_keys(set(config_vars) - {"transport"}, everything):
        close = difflib.get_close_matches(key, sorted(everything), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        problems.append(f"--var {key}: no experiment run declares this configuration key{hint}")
    for key in sorted(set(config_vars) & everything - {"transport"}):
        using = [name for name, keys in declared.items() if key in keys]
        if len(using) < len(declared):
            notes.append(
                f"--var {key} applies to {len(using)} of {len(declared)} experiments ({', '.join(using)})"
            )
    return problems, notes


def _unmet_requirement(requires: list[str]) -> str | None:
    """Why this machine cannot run an experiment that ``requires`` ["kernel"], or None."""
    if "kernel" in requires:
        # Imported on use: ~30 ms of imports only this path needs.
        from chaosagenkit.kernel.system import unavailable_reason

        return unavailable_reason()
    return None


def run_one(
    plan: RunPlan,
    journals: Path,
    config_vars: dict[str, Any],
    secret_vars: dict[str, Any],
    suite_id: str | None = None,
) -> RunResult:
    """Run one experiment through chaoslib; write its journal; return its verdict."""
    if plan.skip_reason:
        return RunResult(plan, skipped(plan.skip_reason))
    # this run's journal is its answer: one left by an earlier run must not outlive it
    (journals / f"{plan.id}.json").unlink(missing_ok=True)

    from chaoslib.experiment import ensure_experiment_is_valid, run_experiment
    from chaoslib.loader import load_experiment
    from chaoslib.log import encoder

    started = time.monotonic()
    try:
        experiment = load_experiment(str(plan.path), {})
        ensure_experiment_is_valid(experiment)
    except Exception as e:  # the experiment cannot run at all
        return RunResult(plan, not_run(f"{type(e).__name__}: {e}"), time.monotonic() - started)
    configuration = {**config_vars, "transport": plan.transport}
    # Same settings as a plain `chaos run`: default strategies, no settings file.
    journal = run_experiment(experiment, settings={}, experiment_vars=(configuration, secret_vars))
    _label_journal(journal, plan, suite_id, left_behind(journal))
    journal_path = journals / f"{plan.id}.json"
    journal_path.write_text(json.dumps(journal, indent=2, ensure_ascii=False, default=encoder))
    return _result(plan, journal, time.monotonic() - started, journal_path)


def left_behind(journal: dict[str, Any], wait_s: float = 10.0) -> list[str]:
    """What a finished run left behind: entries in its registry, processes its timeline started.

    Teardown has run when chaoslib returns; a process it stopped may take a
    moment to go, so each is given ``wait_s`` seconds. Empty when all is gone.
    """
    found = [
        f"the run's registry still holds {kind} {', '.join(sorted(names))}"
        for kind, names in (
            ("servers", SANDBOX.servers),
            ("proxies", SANDBOX.proxies),
            ("proxy daemons", SANDBOX.proxy_daemons),
            ("clients", SANDBOX.clients),
        )
        if names
    ]
    started = {}
    for extension in journal.get("extensions") or []:
        if isinstance(extension, dict) and extension.get("name") == EXTENSION:
            for event in extension.get("timeline") or []:
                pid = (event.get("detail") or {}).get("pid") if isinstance(event, dict) else None
                if isinstance(pid, int) and not isinstance(pid, bool):
                    started[pid] = str(event.get("target"))
    deadline = time.monotonic() + wait_s
    alive = [pid for pid in started if _running(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if _running(pid)]
    found += [f"process {pid} ({started[pid]}) still runs" for pid in alive]
    return found


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (Linux /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _result(plan: RunPlan, journal: dict[str, Any], duration_s: float, journal_path: Path) -> RunResult:
    """The verdict of a written journal, with what the run left behind (``extra["left_behind"]``)."""
    result = RunResult(plan, judge(journal), duration_s, journal_path)
    extension = next(
        (e for e in journal.get("extensions") or [] if isinstance(e, dict) and e.get("name") == EXTENSION), {}
    )
    if extension.get("left_behind"):
        result.extra["left_behind"] = list(extension["left_behind"])
    return result


def run_suite(
    plans: list[RunPlan],
    journals: Path,
    config_vars: dict[str, Any] | None = None,
    secret_vars: dict[str, Any] | None = None,
    out: Any = None,
    jobs: int = 1,
    suite_id: str | None = None,
) -> list[RunResult]:
    """Run every plan (``jobs`` at once), showing progress on ``out``; stop early on Ctrl-C."""
    out = out or sys.stdout
    journals.mkdir(parents=True, exist_ok=True)
    suite_id = suite_id or _new_suite_id()
    config_vars, secret_vars = config_vars or {}, secret_vars or {}
    if jobs > 1 and sum(1 for p in plans if not p.skip_reason) > 1:
        parallel = _Parallel(plans, journals, config_vars, secret_vars, out, jobs, suite_id).run()
        if parallel is not None:
            return parallel
        _write_line(out, "note: this process runs threads, so it cannot fork workers: one run at a time")
    results: list[RunResult] = []
    suite_started = time.monotonic()
    with _SigintWatch() as sigint:
        for index, plan in enumerate(plans, 1):
            prefix = f"[{index}/{len(plans)}] {plan.label}"
            with _Progress(out, prefix, suite_started, results):
                try:
                    result = run_one(plan, journals, config_vars, secret_vars, suite_id)
                except KeyboardInterrupt:
                    result = RunResult(plan, Judgement(Verdict.INTERRUPTED, "interrupted (Ctrl-C)"))
            if sigint.seen:  # chaoslib swallowed the Ctrl-C and returned an interrupted journal
                result.judgement = Judgement(Verdict.INTERRUPTED, "interrupted (Ctrl-C)")
            results.append(result)
            _write_line(out, _progress_line(prefix, result))
            if sigint.seen:
                _write_line(out, f"{prefix}  interrupted: stopping the suite")
                break
    return results


def summary_table(results: list[RunResult], against_recorded: bool = False) -> str:
    """A plain-text table of verdicts (and recorded verdicts when compared)."""
    headers = ["experiment", "transport", "verdict", "time"]
    if against_recorded:
        headers += ["recorded", "same"]
    rows = []
    for r in results:
        row = [r.plan.path.stem, r.plan.transport, str(r.verdict), f"{r.duration_s:.1f}s"]
        if against_recorded:
            outcome = r.comparison.outcome
            same = {
                "same": "yes",
                "expected": "yes (finding)",
                "unstable": "yes (unstable)",
                "differs": "NO",
                "unchecked": "NO",
            }
            row += [r.plan.recorded or "-", same.get(outcome, outcome)]
        rows.append(row)
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def suite_exit_code(results: list[RunResult], against_recorded: bool = False) -> int:
    """README's exit code for these results (``chaosagenkit.verdict.exit_code``); 2 if a run left anything behind."""
    comparisons = [r.comparison for r in results] if against_recorded else None
    code = exit_code([r.judgement for r in results], comparisons)
    return 2 if any(r.extra.get("left_behind") for r in results) else code


def record_observed(results: list[RunResult], out: Any = None) -> list[Path]:
    """Write each run's verdict and deviations into its experiment file (the golden master).

    Only runs that judged the system (holds or deviates) are recorded; an
    experiment with any other verdict is left as it is, and said so. The file
    keeps its format (JSON, two-space indent). Returns the files changed.
    """
    out = out or sys.stdout
    by_path: dict[Path, list[RunResult]] = {}
    for r in results:
        by_path.setdefault(r.plan.path, []).append(r)
    changed = []
    for path, runs in by_path.items():
        unjudged = [r for r in runs if r.verdict not in (Verdict.HOLDS, Verdict.DEVIATES, Verdict.SKIPPED)]
        if unjudged:
            _write_line(out, f"not recorded: {path}: {unjudged[0].plan.label} {unjudged[0].verdict}")
            continue
        text = path.read_text()
        experiment = json.loads(text)
        extension = experiment_extension(experiment)
        if not extension:
            extension = {"name": EXTENSION}
            experiment.setdefault("extensions", []).append(extension)
        verdicts = extension.setdefault("verdicts", {})
        deviations = extension.setdefault("deviations", {})
        for r in runs:
            if r.verdict == Verdict.SKIPPED:
                continue
            verdicts[r.plan.transport] = str(r.verdict)
            if r.verdict == Verdict.DEVIATES:
                deviations[r.plan.transport] = list(r.judgement.deviations)
            else:
                deviations.pop(r.plan.transport, None)
        if not deviations:
            extension.pop("deviations")
        new_text = json.dumps(experiment, indent=2) + "\n"
        if new_text != text:
            path.write_text(new_text)
            changed.append(path)
            _write_line(out, f"recorded: {path}")
    return changed


@click.command("run")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--journals",
    "journals",
    type=click.Path(path_type=Path),
    default=Path("journals"),
    show_default=True,
    help="Folder for one journal per experiment and transport.",
)
@click.option(
    "--var",
    "var",
    multiple=True,
    help="Configuration override KEY=VALUE (VALUE read as JSON when it parses, else a string).",
)
@click.option(
    "--var-file",
    "var_file",
    multiple=True,
    type=click.Path(exists=True),
    help="JSON/YAML/.env file of configuration and secrets (as chaos run).",
)
@click.option(
    "--transport",
    "transports",
    multiple=True,
    type=click.Choice(TRANSPORTS),
    help="Only run these transports (repeatable).",
)
@click.option(
    "--against-recorded",
    is_flag=True,
    help="Compare verdicts and deviations with those recorded in each experiment; exit 1 only on a difference.",
)
@click.option(
    "--record",
    is_flag=True,
    help="Write the observed verdicts and deviations into the experiment files.",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=DEFAULT_JOBS,
    show_default=True,
    help="Experiments run at once, each in its own process.",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write junit.xml, summary.md and report.html into this folder.",
)
def run(
    paths: tuple[Path, ...],
    journals: Path,
    var: tuple[str, ...],
    var_file: tuple[str, ...],
    transports: tuple[str, ...],
    against_recorded: bool,
    record: bool,
    jobs: int,
    report_dir: Path | None,
) -> None:
    """Run experiments (a folder means all of it; none: the built-in suite), summarise verdicts.

    Exit status: 0 every run held (with --against-recorded: every verdict and
    deviation set is the recorded one); 1 some deviated (with
    --against-recorded: some verdict or deviation set differs); 2 some run did
    not meet its baseline, failed, was aborted or interrupted, left a process
    behind, or the command line or configuration is wrong.
    """
    plans = plan_runs(experiment_paths(paths), transports)
    if not plans:
        raise click.UsageError("no experiments found")
    config_vars, secret_vars = _load_vars(var, var_file)
    problems, notes = check_configuration(plans, config_vars)
    if problems:
        for problem in problems:
            click.echo(f"chaosagenkit run: {problem}", err=True)
        sys.exit(2)
    journals.mkdir(parents=True, exist_ok=True)
    _configure_logging(journals / "chaostoolkit.log")
    for note in notes:
        click.echo(f"note: {note}")
    earlier = _earlier_journals(journals, plans)
    if earlier:
        click.echo(
            f"note: {journals}/ also holds {len(earlier)} journal(s) this run does not write "
            f"(e.g. {earlier[0].name}); reports of this run leave them out"
        )

    width = f", {jobs} at a time" if jobs > 1 else ""
    click.echo(f"chaosagenkit: {len(plans)} runs{width}, journals in {journals}/")
    started = time.monotonic()
    results = run_suite(plans, journals, config_vars, secret_vars, jobs=jobs)
    click.echo("")
    click.echo(summary_table(results, against_recorded))
    click.echo(f"\n{len(results)} runs in {time.monotonic() - started:.1f}s; journals in {journals}/")

    if report_dir is not None:
        # Imported on use: it loads hpack; other paths here never need it.
        from chaosagenkit.report import write_reports

        not_run = [
            {
                "experiment": r.plan.path.stem,
                "title": r.plan.path.stem,
                "transport": r.plan.transport,
                "verdict": "skipped" if r.verdict == Verdict.SKIPPED else "error",
                "reason": r.detail,
            }
            for r in results
            if r.journal_path is None
        ]
        written = write_reports(
            [r.journal_path for r in results if r.journal_path],
            report_dir,
            not_run=not_run,
            against_recorded=against_recorded,
        )
        for kind, path in written.items():
            click.echo(f"{kind}: {path}")

    for r in results:
        if r.verdict.exit_code == 2:
            click.echo(f"{str(r.verdict).upper()}: {r.plan.label}: {r.detail}")
        for leftover in r.extra.get("left_behind") or []:
            click.echo(f"LEFT BEHIND: {r.plan.label}: {leftover}")
    if against_recorded:
        for r in results:
            comparison = r.comparison
            if comparison.outcome == "differs":
                click.echo(f"DIFFERENT: {r.plan.label}: {comparison.message}")
            elif comparison.outcome in ("not recorded", "unstable"):
                click.echo(f"{comparison.outcome}: {r.plan.label}: {comparison.message}")
    if record:
        record_observed(results)
    sys.exit(suite_exit_code(results, against_recorded))


# -- parallel runs ------------------------------------------------------------------------


class _Parallel:
    """Run plans ``jobs`` at a time, each in a forked worker process; one line per finished run.

    The runner imports what a run needs (chaoslib, agenkit: ~2.7 s of CPU)
    once, then forks one worker per run, so a worker costs no import: on a
    small machine the imports of one process per run ate what parallelism
    gained (benchmarks/results/suite.md). Forking needs a single-threaded
    runner; one that runs threads runs the plans one at a time instead.
    """

    def __init__(
        self,
        plans: list[RunPlan],
        journals: Path,
        config_vars: dict[str, Any],
        secret_vars: dict[str, Any],
        out: Any,
        jobs: int,
        suite_id: str,
    ) -> None:
        self.plans = plans
        self.journals = journals
        self.vars = (config_vars, secret_vars)
        self.suite_id = suite_id
        self.out = out
        self.jobs = jobs
        self.results: dict[int, RunResult] = {}
        self.running: dict[int, _Worker] = {}
        self.interrupted_at: float | None = None

    def run(self) -> list[RunResult] | None:
        """The results in plan order; None when this process cannot fork safely (it runs threads)."""
        if threading.active_count() > 1:
            return None
        _preload()
        pending = list(enumerate(self.plans))
        with _SigintWatch(raise_interrupt=False, on_signal=self._interrupt) as sigint:
            try:
                while pending or self.running:
                    while pending and len(self.running) < self.jobs and not sigint.seen:
                        index, plan = pending.pop(0)
                        if plan.skip_reason:
                            self._finish(index, RunResult(plan, skipped(plan.skip_reason)))
                        else:
                            self._start(index, plan)
                    if sigint.seen and pending:
                        for index, plan in pending:
                            why = Judgement(Verdict.INTERRUPTED, "not started: the suite was interrupted")
                            self._finish(index, RunResult(plan, why))
                        pending = []
                    self._reap(timeout=0.1)
                    if self.interrupted_at and time.monotonic() - self.interrupted_at > STOP_GRACE_S:
                        break  # a worker that outstays the grace is killed below
            finally:
                self._stop_all()
        return [self.results[i] for i in sorted(self.results)]

    def _start(self, index: int, plan: RunPlan) -> None:
        # the worker's journal is its answer: one left by an earlier run must not be read as it
        (self.journals / f"{plan.id}.json").unlink(missing_ok=True)
        log = tempfile.TemporaryFile()  # noqa: SIM115  # closed when the worker is reaped
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker: never returns
            code = 2
            try:
                code = _run_forked(plan, self.journals, self.vars, self.suite_id, log.fileno())
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.running[index] = _Worker(pid, time.monotonic(), log)

    def _reap(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for index, worker in list(self.running.items()):
                if worker.poll() is not None:
                    del self.running[index]
                    self._finish(index, self._result(self.plans[index], worker))
            if time.monotonic() >= deadline or not self.running:
                return
            time.sleep(0.02)

    def _result(self, plan: RunPlan, worker: _Worker) -> RunResult:
        duration = time.monotonic() - worker.started
        journal_path = self.journals / f"{plan.id}.json"
        try:
            journal = json.loads(journal_path.read_text())
        except (OSError, ValueError):
            tail = worker.last_line()
            if self.interrupted_at is not None:
                judgement = Judgement(Verdict.INTERRUPTED, "interrupted (Ctrl-C) before it wrote a journal")
                return RunResult(plan, judgement, duration)
            if worker.returncode == _NO_JOURNAL:  # the worker said why (run_one's reason)
                return RunResult(plan, Judgement(Verdict.FAILED, tail), duration)
            return RunResult(plan, not_run(f"worker exited {worker.returncode}: {tail}"), duration)
        finally:
            worker.log.close()
        return _result(plan, journal, duration, journal_path)

    def _finish(self, index: int, result: RunResult) -> None:
        self.results[index] = result
        done = len(self.results)
        prefix = f"[{done}/{len(self.plans)}] {result.plan.label}"
        _write_line(self.out, _progress_line(prefix, result))

    def _interrupt(self) -> None:
        """First Ctrl-C: forward one SIGINT to every worker; they tear their sandboxes down."""
        if self.interrupted_at is not None:
            return
        self.interrupted_at = time.monotonic()
        _write_line(self.out, f"interrupted: stopping {len(self.running)} running experiment(s)")
        for worker in self.running.values():
            worker.signal(signal.SIGINT)

    def _stop_all(self) -> None:
        """Stop what still runs (Ctrl-C forwarded once); kill a worker that outstays the grace."""
        if not self.running:
            return
        if self.interrupted_at is None:  # the runner itself failed: stop the workers as Ctrl-C would
            self._interrupt()
        deadline = (self.interrupted_at or time.monotonic()) + STOP_GRACE_S
        while self.running and time.monotonic() < deadline:
            self._reap(timeout=0.2)
        for index, worker in list(self.running.items()):
            worker.kill()
            worker.log.close()
            del self.running[index]
            why = f"killed: still running {STOP_GRACE_S:g} s after Ctrl-C"
            duration = time.monotonic() - worker.started
            self._finish(index, RunResult(self.plans[index], Judgement(Verdict.INTERRUPTED, why), duration))


@dataclass
class _Worker:
    """A forked worker: its pid, when it started, its output (a temporary file)."""

    pid: int
    started: float
    log: Any
    returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def signal(self, signum: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])

    def last_line(self) -> str:
        self.log.seek(0)
        lines = self.log.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no output"


def _preload() -> None:
    """Import, before forking, what every run imports, so no worker pays for it again."""
    for module in (
        "chaoslib.experiment",
        "chaoslib.loader",
        "chaosagenkit.control",
        "chaosagenkit.client.harness",
        # agenkit imports each transport's client on first use: in every worker, inside a
        # timed request, unless imported here
        "agenkit.adapters.python.http_transport",
        "agenkit.adapters.python.websocket_transport",
        "agenkit.adapters.python.grpc_transport",
        "chaosagenkit.client.registry",
        "chaosagenkit.service.hosts",
        "chaosagenkit.network.daemons",
        *(name for name, _ in ACTIVITY_MODULES),
    ):
        try:
            importlib.import_module(module)
        except ImportError:  # the run that needs it will say so itself
            pass


def _run_forked(
    plan: RunPlan, journals: Path, variables: tuple[dict, dict], suite_id: str, log_fd: int
) -> int:
    """In a forked worker: its own session and output, a lifeline to the runner, one run."""
    parent = os.getppid()
    os.setsid()  # a terminal's Ctrl-C reaches the runner only; it forwards one
    signal.signal(signal.SIGINT, signal.default_int_handler)  # not the runner's handler
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    # the runner's sys.stdout/stderr may not be fds 1 and 2 (a caller capturing them): these are
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115  # the process's own
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    _interrupt_when_parent_dies(parent)
    result = run_one(plan, journals, variables[0], variables[1], suite_id)
    if result.journal_path is None:  # the runner reads the journal; without one, say why
        print(result.detail, file=sys.stderr)
        return _NO_JOURNAL
    return 0


def _interrupt_when_parent_dies(parent: int) -> None:
    """If the runner dies, stop this run as Ctrl-C would (its sandbox is torn down)."""

    def watch() -> None:
        while not parent_is_gone(parent):
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(STOP_GRACE_S)
        os._exit(2)

    if parent_is_gone(parent):
        os._exit(2)
    threading.Thread(target=watch, name="runner-lifeline", daemon=True).start()


# -- helpers ------------------------------------------------------------------------------


def _load_vars(var: tuple[str, ...], var_file: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    from chaoslib import merge_vars

    try:
        given = run_configuration.parse_vars(var)
        config_vars, secret_vars = merge_vars(None, list(var_file))
    except Exception as e:
        raise click.BadParameter(str(e), param_hint="--var/--var-file") from e
    return {**config_vars, **given}, secret_vars


def _label_journal(
    journal: dict[str, Any], plan: RunPlan, suite_id: str | None, leftovers: list[str]
) -> None:
    """Say in the journal which experiment file and suite run it belongs to, and what it left behind."""
    label: dict[str, Any] = {
        "experiment": plan.path.stem,
        "id": plan.id,
        "suite": {"id": suite_id, "started": datetime.now(UTC).isoformat()} if suite_id else None,
    }
    if leftovers:
        label["left_behind"] = leftovers
    extensions = journal.setdefault("extensions", [])
    extension = next((e for e in extensions if isinstance(e, dict) and e.get("name") == EXTENSION), None)
    if extension is None:
        extensions.append({"name": EXTENSION, **label})
    else:
        extension.update(label)


def _new_suite_id() -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"


def _earlier_journals(journals: Path, plans: list[RunPlan]) -> list[Path]:
    ours = {f"{p.id}.json" for p in plans}
    return sorted(p for p in journals.glob("*.json") if p.name not in ours)


def _progress_line(prefix: str, result: RunResult) -> str:
    detail = "" if result.verdict == Verdict.HOLDS else f"  {result.detail}"
    return f"{prefix}  {result.verdict!s:<16} {result.duration_s:5.1f}s{detail}"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise click.BadParameter(f"{path}: not a JSON experiment: {e}", param_hint="PATH") from e


def _is_experiment(data: Any) -> bool:
    return isinstance(data, dict) and "method" in data and "title" in data


def _bad_extension(path: Path, key: str, expected: str, got: Any) -> None:
    raise click.BadParameter(
        f"{path}: the chaosagenkit extension's '{key}' must be {expected}, got {json.dumps(got)}",
        param_hint="PATH",
    )


class _SigintWatch:
    """Note a Ctrl-C (SIGINT) while installed.

    By default it then raises KeyboardInterrupt as Python would (chaoslib
    catches it and records an interrupted run); with ``raise_interrupt=False``
    it only calls ``on_signal``. Installed only in the main thread and only
    over Python's own handler (a SIGINT the caller ignores stays ignored); the
    previous handler comes back on exit.
    """

    def __init__(self, raise_interrupt: bool = True, on_signal: Any = None) -> None:
        self.seen = False
        self.raise_interrupt = raise_interrupt
        self.on_signal = on_signal
        self._previous: Any = None

    def __enter__(self) -> _SigintWatch:
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: Any) -> None:
        self.seen = True
        if self.on_signal is not None:
            self.on_signal()
        if self.raise_interrupt:
            signal.default_int_handler(signum, frame)


def _configure_logging(log_file: Path) -> None:
    """Full Chaos Toolkit log to a file; the console shows progress and errors only."""
    from chaoslib.log import configure_logger

    configure_logger(verbose=False, log_file=str(log_file))
    ctk = logging.getLogger("chaostoolkit")
    for handler in ctk.handlers:
        if type(handler) is logging.StreamHandler:
            handler.setLevel(logging.CRITICAL + 1)  # silence: each run's verdict line says it
    # asyncio's own warnings from the clients' loops ("socket.send() raised exception.")
    # belong in the log file, not between the progress lines
    noisy = logging.getLogger("asyncio")
    for handler in ctk.handlers:
        if isinstance(handler, logging.FileHandler) and handler not in noisy.handlers:
            noisy.addHandler(handler)
    noisy.propagate = False


def _write_line(out: Any, text: str) -> None:
    if getattr(out, "isatty", lambda: False)():
        out.write("\r\033[K")
    out.write(text + "\n")
    out.flush()


class _Progress:
    """On a terminal, a live line: experiment, elapsed, verdicts so far."""

    def __init__(self, out: Any, prefix: str, suite_started: float, results: list[RunResult]) -> None:
        self.out = out
        self.prefix = prefix
        self.suite_started = suite_started
        self.results = results
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> _Progress:
        if getattr(self.out, "isatty", lambda: False)():
            self.thread = threading.Thread(target=self._tick, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread:
            self.thread.join()

    def _tick(self) -> None:
        started = time.monotonic()
        while not self.stop.wait(0.5):
            counts = _counts(self.results)
            self.out.write(
                f"\r\033[K{self.prefix}  running {time.monotonic() - started:4.0f}s"
                f"  (suite {time.monotonic() - self.suite_started:4.0f}s; {counts})"
            )
            self.out.flush()


def _counts(results: list[RunResult]) -> str:
    totals: dict[str, int] = {}
    for r in results:
        totals[str(r.verdict)] = totals.get(str(r.verdict), 0) + 1
    return ", ".join(f"{n} {v}" for v, n in sorted(totals.items())) or "none yet"
