"""``chaosagenkit run``: run a suite of experiments and tell apart what ``chaos run`` cannot.

Each experiment runs once per transport it declares (its ``chaosagenkit``
extension: ``"transports": ["tcp", "http"]``; a transport listed under
``"skip"`` with a reason is reported as skipped), in this process, through
chaoslib exactly as ``chaos run`` would, with ``--var transport=...`` set.
One journal per run: ``<journals>/<experiment>.<transport>.json``.

Verdicts: ``holds`` (completed, not deviated), ``deviates`` (the steady
state or a method expectation did not hold), ``error`` (failed, aborted or
interrupted: the experiment could not say). Exit codes: 0 every hypothesis
held, 1 some deviated, 2 some errored or the run was interrupted. With
``--against-recorded``, each observed verdict is compared with the verdict
recorded in the experiment (``"verdicts": {"tcp": "holds", ...}``) and the
exit code is 1 only when one differs (2 still means an error).

Ctrl-C stops the suite: chaoslib catches the KeyboardInterrupt itself and
returns an "interrupted" journal, so the runner notes SIGINT with a handler
of its own (which then raises as Python's default one does) and runs
nothing after the interrupted experiment. A ``*.json`` in a folder that is
not valid JSON is an error; valid JSON that is not an experiment is skipped.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

__all__ = ["EXTENSION", "RunPlan", "RunResult", "plan_runs", "run", "run_suite", "verdict_of"]

EXTENSION = "chaosagenkit"
VERDICTS = ("holds", "deviates", "skipped")
TRANSPORTS = ("tcp", "http", "unix", "ws", "h2c", "grpc")


@dataclass(frozen=True)
class RunPlan:
    """One experiment on one transport."""

    path: Path
    transport: str
    skip_reason: str | None = None
    recorded: str | None = None  # the verdict recorded in the experiment, if any

    @property
    def label(self) -> str:
        return f"{self.path.stem} [{self.transport}]"


@dataclass
class RunResult:
    plan: RunPlan
    verdict: str  # holds | deviates | error | skipped
    status: str | None = None
    duration_s: float = 0.0
    journal_path: Path | None = None
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def matches_recorded(self) -> bool | None:
        if self.plan.recorded is None:
            return None
        return self.verdict == self.plan.recorded


def experiment_extension(experiment: dict[str, Any]) -> dict[str, Any]:
    """The experiment's own ``chaosagenkit`` extension (recorded verdicts, transports)."""
    for extension in experiment.get("extensions") or []:
        if isinstance(extension, dict) and extension.get("name") == EXTENSION:
            return extension
    return {}


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
        skip = extension.get("skip") or {}
        recorded = extension.get("verdicts") or {}
        if not isinstance(declared, list) or not all(t in TRANSPORTS for t in declared):
            _bad_extension(path, "transports", f"a list of {', '.join(TRANSPORTS)}", declared)
        for key, value in (("skip", skip), ("verdicts", recorded)):
            if not isinstance(value, dict):
                _bad_extension(path, key, "an object of TRANSPORT: ...", value)
        unmet = _unmet_requirement(extension.get("requires") or [])
        for transport in declared:
            if transports and transport not in transports:
                continue
            plans.append(RunPlan(path, transport, skip.get(transport) or unmet, recorded.get(transport)))
    return plans


def _unmet_requirement(requires: list[str]) -> str | None:
    """Why this machine cannot run an experiment that ``requires`` ["kernel"], or None."""
    if "kernel" in requires:
        from chaosagenkit.kernel.system import unavailable_reason

        return unavailable_reason()
    return None


def verdict_of(journal: dict[str, Any]) -> str:
    """holds | deviates | error, from a Chaos Toolkit journal."""
    # A probe that raised after the method leaves chaoslib's journal "failed" AND
    # "deviated": the hypothesis could not be checked, so that is an error, not a
    # deviation (as chaostoolkit's own agent output and our reports say).
    if journal.get("status") == "completed":
        return "deviates" if journal.get("deviated") else "holds"
    return "error"


def run_one(
    plan: RunPlan,
    journals: Path,
    config_vars: dict[str, Any],
    secret_vars: dict[str, Any],
) -> RunResult:
    """Run one experiment through chaoslib; write its journal; return its verdict."""
    if plan.skip_reason:
        return RunResult(plan, "skipped", detail=plan.skip_reason)

    from chaoslib.experiment import ensure_experiment_is_valid, run_experiment
    from chaoslib.loader import load_experiment
    from chaoslib.log import encoder

    started = time.monotonic()
    experiment = load_experiment(str(plan.path), {})
    ensure_experiment_is_valid(experiment)
    configuration = {**config_vars, "transport": plan.transport}
    # Same settings as a plain `chaos run`: default strategies, no settings file.
    journal = run_experiment(experiment, settings={}, experiment_vars=(configuration, secret_vars))
    journal_path = journals / f"{plan.path.stem}.{plan.transport}.json"
    journal_path.write_text(json.dumps(journal, indent=2, ensure_ascii=False, default=encoder))
    return RunResult(
        plan,
        verdict_of(journal),
        status=journal.get("status"),
        duration_s=time.monotonic() - started,
        journal_path=journal_path,
        detail=_why(journal),
    )


def run_suite(
    plans: list[RunPlan],
    journals: Path,
    config_vars: dict[str, Any] | None = None,
    secret_vars: dict[str, Any] | None = None,
    out: Any = None,
) -> list[RunResult]:
    """Run every plan in order, showing progress on ``out``; stop early on Ctrl-C."""
    out = out or sys.stdout
    journals.mkdir(parents=True, exist_ok=True)
    results: list[RunResult] = []
    suite_started = time.monotonic()
    with _SigintWatch() as sigint:
        for index, plan in enumerate(plans, 1):
            prefix = f"[{index}/{len(plans)}] {plan.label}"
            with _Progress(out, prefix, suite_started, results):
                try:
                    result = run_one(plan, journals, config_vars or {}, secret_vars or {})
                except KeyboardInterrupt:
                    results.append(RunResult(plan, "error", detail="interrupted (Ctrl-C)"))
                    _write_line(out, f"{prefix}  interrupted: stopping the suite")
                    break
                except Exception as e:  # the experiment could not run at all
                    result = RunResult(plan, "error", detail=f"{type(e).__name__}: {e}")
            if sigint.seen:  # chaoslib swallowed the Ctrl-C and returned an interrupted journal
                result.verdict = "error"
                result.detail = "interrupted (Ctrl-C)"
            results.append(result)
            _write_line(out, f"{prefix}  {result.verdict:<8} {result.duration_s:5.1f}s  {result.detail}")
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
        row = [r.plan.path.stem, r.plan.transport, r.verdict, f"{r.duration_s:.1f}s"]
        if against_recorded:
            match = r.matches_recorded
            row += [r.plan.recorded or "-", "-" if match is None else ("yes" if match else "NO")]
        rows.append(row)
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def exit_code(results: list[RunResult], against_recorded: bool = False) -> int:
    if any(r.verdict == "error" for r in results):
        return 2
    if against_recorded:
        return 1 if any(r.matches_recorded is False for r in results) else 0
    return 1 if any(r.verdict == "deviates" for r in results) else 0


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
@click.option("--var", "var", multiple=True, help="Configuration override KEY[:TYPE]=VALUE (as chaos run).")
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
    help="Compare verdicts with those recorded in each experiment; exit 1 only on a difference.",
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
    report_dir: Path | None,
) -> None:
    """Run experiments (a folder means all of it), write journals, summarise verdicts.

    Exit status: 0 every hypothesis held, 1 some deviated (with --against-recorded:
    some verdict differs from the recorded one), 2 some experiment failed, was
    aborted or interrupted.
    """
    plans = plan_runs(list(paths) or [Path("experiments")], transports)
    if not plans:
        raise click.UsageError("no experiments found")
    journals.mkdir(parents=True, exist_ok=True)
    _configure_logging(journals / "chaostoolkit.log")

    from chaoslib import convert_vars, merge_vars

    try:
        config_vars, secret_vars = merge_vars(convert_vars(list(var)), list(var_file))
    except Exception as e:
        raise click.BadParameter(str(e), param_hint="--var/--var-file") from e

    click.echo(f"chaosagenkit: {len(plans)} runs, journals in {journals}/")
    started = time.monotonic()
    results = run_suite(plans, journals, config_vars, secret_vars)
    click.echo("")
    click.echo(summary_table(results, against_recorded))
    click.echo(f"\n{len(results)} runs in {time.monotonic() - started:.1f}s; journals in {journals}/")

    if report_dir is not None:
        from chaosagenkit.report import write_reports

        not_run = [
            {
                "title": r.plan.path.stem,
                "transport": r.plan.transport,
                "verdict": "skipped" if r.verdict == "skipped" else "error",
                "reason": r.detail,
            }
            for r in results
            if r.journal_path is None
        ]
        written = write_reports(
            [r.journal_path for r in results if r.journal_path], report_dir, not_run=not_run
        )
        for kind, path in written.items():
            click.echo(f"{kind}: {path}")

    code = exit_code(results, against_recorded)
    if against_recorded:
        different = [r for r in results if r.matches_recorded is False]
        for r in different:
            click.echo(f"DIFFERENT: {r.plan.label}: recorded {r.plan.recorded}, observed {r.verdict}")
    sys.exit(code)


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
    """Note a Ctrl-C (SIGINT) while installed, then raise KeyboardInterrupt as Python would.

    Installed only in the main thread and only over Python's own handler (a
    SIGINT the caller ignores stays ignored); the previous handler comes back
    on exit.
    """

    def __init__(self) -> None:
        self.seen = False
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
        signal.default_int_handler(signum, frame)


def _why(journal: dict[str, Any]) -> str:
    """One line on what decided the verdict."""
    status = journal.get("status")
    if status != "completed":
        for entry in journal.get("run") or []:
            if entry.get("status") == "failed":
                return f"{status}: {entry['activity'].get('name')}: {str(entry.get('exception', [''])[-1]).strip()}"
        return str(status)
    for phase in ("before", "after"):
        state = (journal.get("steady_states") or {}).get(phase) or {}
        for probe in state.get("probes") or []:
            if probe.get("tolerance_met") is False:
                return (
                    f"steady state {phase}: {probe['activity'].get('name')} = {_short(probe.get('output'))}"
                )
    for ext in journal.get("extensions") or []:
        if ext.get("name") == EXTENSION:
            unmet = [e for e in ext.get("expectations") or [] if not e.get("met")]
            if unmet:
                first = unmet[0]
                more = f" (+{len(unmet) - 1} more)" if len(unmet) > 1 else ""
                return f"expectation {first['activity']} = {_short(first.get('output'))}{more}"
    return ""


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _configure_logging(log_file: Path) -> None:
    """Full Chaos Toolkit log to a file; the console shows progress and errors only."""
    from chaoslib.log import configure_logger

    configure_logger(verbose=False, log_file=str(log_file))
    ctk = logging.getLogger("chaostoolkit")
    for handler in ctk.handlers:
        if type(handler) is logging.StreamHandler:
            handler.setLevel(logging.CRITICAL + 1)  # silence: each run's verdict line says it


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
        totals[r.verdict] = totals.get(r.verdict, 0) + 1
    return ", ".join(f"{n} {v}" for v, n in sorted(totals.items())) or "none yet"
