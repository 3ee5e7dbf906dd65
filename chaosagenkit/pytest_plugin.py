"""A pytest plugin: a team's own pytest runs its chaos experiments, one item per experiment x transport.

Off unless enabled, so it never changes an ordinary test run (pytest loads it
for every project that installs chaosagenkit, through the ``pytest11`` entry
point; it imports nothing heavy until an experiment runs):

- ``pytest --chaos-experiments experiments``: the folder's experiments are
  collected (added to what pytest collects if it is not already);
- or ``chaos_experiments = experiments`` in the ini file: its experiments
  become items whenever pytest visits the folder (``pytest experiments`` or
  ``testpaths``).

Each item is ``experiments/retry.json::tcp``, runs the experiment through
chaoslib exactly as ``chaosagenkit run`` does (``chaosagenkit.suite.run_one``)
and compares the verdict and the set of deviations with those the experiment
records (``chaosagenkit.verdict.compare``). Marks: ``chaos``, ``slow`` and
``chaos_network`` / ``chaos_service`` / ``chaos_middleware`` from the
experiment's tags (or its extension's ``group``). A transport the experiment
skips is skipped with its reason; a recorded deviation is a strict xfail with
the recorded finding as reason; a deviation other than the recorded one, or
a recorded deviation that now holds, fails with one line saying how. ``--chaos-var
KEY=VALUE`` sets configuration as ``chaosagenkit run --var`` does;
``--chaos-journals DIR`` keeps the journals (default: pytest's temporary
folder).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaosagenkit.configuration import parse_vars

__all__ = ["ChaosVerdictError", "ExpectedDeviation", "ExperimentFile", "ExperimentItem"]

MARKERS = {
    "chaos": "a chaos test (faults injected into real processes)",
    "chaos_network": "network-level chaos (the fault proxy)",
    "chaos_service": "service-level chaos (the chaos host)",
    "chaos_middleware": "agenkit middleware validated under chaos",
    "slow": "takes more than a few seconds",
}
_GROUP_MARKS = {"network": "chaos_network", "service": "chaos_service", "middleware": "chaos_middleware"}


class ExpectedDeviation(Exception):
    """The experiment deviated exactly as it records: a known finding (a strict xfail)."""


class ChaosVerdictError(AssertionError):
    """The verdict or the deviations differ from what the experiment records."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaosagenkit", "chaos experiments (chaosagenkit)")
    group.addoption(
        "--chaos-experiments",
        dest="chaos_experiments",
        metavar="DIR",
        default=None,
        help="Run the chaos experiments in DIR, one test per experiment and transport.",
    )
    group.addoption(
        "--chaos-var",
        dest="chaos_vars",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Configuration for every experiment (VALUE read as JSON when it parses).",
    )
    group.addoption(
        "--chaos-journals",
        dest="chaos_journals",
        metavar="DIR",
        default=None,
        help="Keep the experiments' journals in DIR (default: pytest's temporary folder).",
    )
    parser.addini("chaos_experiments", "Folder of chaos experiments collected when pytest visits it.")


def pytest_configure(config: pytest.Config) -> None:
    folder = _folder(config)
    if folder is None:
        return
    for name, meaning in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {meaning}")
    explicit = config.getoption("chaos_experiments")
    given = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    if explicit and not any(_related(folder, arg) for arg in given):  # not already (partly) collected
        config.args.append(str(folder))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    folder = _folder(parent.config)
    if folder is None or file_path.suffix != ".json" or file_path.resolve().parent != folder:
        return None
    experiment = _read(file_path)
    if not (isinstance(experiment, dict) and "method" in experiment and "title" in experiment):
        return None  # a JSON file that is not an experiment
    return ExperimentFile.from_parent(parent, path=file_path)


class ExperimentFile(pytest.File):
    """One experiment file: an item per transport it declares."""

    def collect(self) -> Any:
        # Imported on use: ~60 ms of imports only this path needs.
        from chaosagenkit.suite import experiment_extension, plan_runs

        experiment = _read(self.path)
        extension = experiment_extension(experiment)
        groups = {str(t) for t in experiment.get("tags") or []} | {str(extension.get("group"))}
        marks = ["chaos", "slow", *sorted(_GROUP_MARKS[g] for g in groups if g in _GROUP_MARKS)]
        for plan in plan_runs([self.path]):
            item = ExperimentItem.from_parent(self, name=plan.transport, plan=plan)
            for mark in marks:
                item.add_marker(getattr(pytest.mark, mark))
            if plan.skip_reason:
                item.add_marker(pytest.mark.skip(reason=plan.skip_reason))
            elif plan.recorded == "deviates":
                reason = plan.finding or "the experiment records a deviation"
                item.add_marker(pytest.mark.xfail(reason=reason, strict=True, raises=ExpectedDeviation))
            yield item


class ExperimentItem(pytest.Item):
    """One experiment on one transport, judged against what the experiment records."""

    def __init__(self, *, plan: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan

    def runtest(self) -> None:
        # Imported on use: ~60 ms of imports only this path needs.
        from chaosagenkit.suite import check_configuration, run_one
        from chaosagenkit.verdict import Verdict

        config_vars = _vars(self.config)
        problems, _ = check_configuration([self.plan], config_vars)
        if problems:
            raise pytest.UsageError("; ".join(problems))
        result = run_one(self.plan, _journals(self.config), config_vars, {})
        self.user_properties.append(("verdict", str(result.verdict)))
        if result.journal_path is not None:
            self.user_properties.append(("journal", str(result.journal_path)))
        comparison = result.comparison
        known = result.verdict == Verdict.DEVIATES and self.plan.recorded == "deviates"
        if known and comparison.outcome in ("expected", "not recorded"):
            raise ExpectedDeviation(comparison.message)
        if comparison.outcome in ("same", "not recorded", "skipped"):
            return
        where = f" (journal {result.journal_path})" if result.journal_path else ""
        raise ChaosVerdictError(f"{self.plan.label}: {comparison.message}{where}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, (ChaosVerdictError, ExpectedDeviation)):
            return str(excinfo.value)  # one line says it all; the journal has the rest
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, self.plan.label  # pytest needs a line for skip reports


def _folder(config: pytest.Config) -> Path | None:
    value = config.getoption("chaos_experiments", default=None)
    base = Path.cwd()
    if not value:
        value = config.getini("chaos_experiments")
        base = config.rootpath
    if not value:
        return None
    folder = Path(value)
    return (folder if folder.is_absolute() else base / folder).resolve()


def _related(folder: Path, arg: Path) -> bool:
    """``arg`` is the folder, inside it, or holds it."""
    return folder == arg or arg in folder.parents or folder in arg.parents


def _vars(config: pytest.Config) -> dict[str, Any]:

    try:
        return parse_vars(config.getoption("chaos_vars") or [])
    except ValueError as e:
        raise pytest.UsageError(str(e)) from e


def _journals(config: pytest.Config) -> Path:
    given = config.getoption("chaos_journals")
    if given:
        path = Path(given)
    else:
        factory = getattr(config, "_tmp_path_factory", None)
        if factory is None:
            import tempfile

            return Path(tempfile.mkdtemp(prefix="chaos-journals-"))
        path = factory.getbasetemp() / "chaos-journals"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise pytest.UsageError(f"{path}: not a JSON experiment: {e}") from e
