"""Running experiments through chaoslib in tests, and proving nothing is left behind."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from chaosagenkit.sandbox import SANDBOX
from chaosagenkit.suite import RunPlan, experiment_extension, plan_runs, run_one
from tests.ports import assert_released

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
LOOPBACK = ("127.0.0.1", "::1", "localhost")
GROUP_MARKS = {"network": "chaos_network", "service": "chaos_service", "middleware": "chaos_middleware"}


def experiment_plans() -> list[Any]:
    """One pytest param per experiment and transport, marked by its group."""
    params = []
    for plan in plan_runs([EXPERIMENTS]):
        extension = experiment_extension(json.loads(plan.path.read_text()))
        marks = [pytest.mark.chaos, pytest.mark.slow]
        group = extension.get("group")
        if group in GROUP_MARKS:
            marks.append(getattr(pytest.mark, GROUP_MARKS[group]))
        if '"namespace"' in plan.path.read_text():  # a topology in its own namespace needs root
            from chaosagenkit.topology.netns import unavailable_reason

            if reason := unavailable_reason():
                marks.append(pytest.mark.skip(reason=f"{plan.path.stem}: {reason}"))
        params.append(pytest.param(plan, id=f"{plan.path.stem}-{plan.transport}", marks=marks))
    return params


def run_plan(plan: RunPlan, journals: Path, **config: Any):
    """Run one experiment plan through chaoslib; return the result and its journal."""
    result = run_one(plan, journals, config, {})
    journal = json.loads(result.journal_path.read_text()) if result.journal_path else None
    return result, journal


def observed_deviations(journal: dict[str, Any]) -> list[str]:
    """The sorted names of what deviated in a journal (the experiments' ``deviations`` format).

    A method expectation whose tolerance was not met appears under its own
    name; a steady-state probe (before or after the method) as
    ``steady-state:<name>``. A stand-in until the verdict engine reads it.
    """
    names = set()
    for phase in ("before", "after"):
        state = (journal.get("steady_states") or {}).get(phase) or {}
        for probe in state.get("probes") or []:
            if probe.get("tolerance_met") is False:
                names.add(f"steady-state:{probe['activity']['name']}")
    for run in journal.get("run") or []:
        if run.get("tolerance_met") is False:
            names.add(run["activity"]["name"])
    return sorted(names)


def recorded_deviations(plan: RunPlan) -> list[str]:
    """The deviations recorded in the experiment for the plan's transport ([] when it holds)."""
    extension = experiment_extension(json.loads(plan.path.read_text()))
    return sorted((extension.get("deviations") or {}).get(plan.transport) or [])


def addresses_used(journal: dict[str, Any]) -> list[tuple[str, int]]:
    """Every loopback host:port the run's sandbox bound, from its recorded timeline."""
    found = set()
    for extension in journal.get("extensions") or []:
        if extension.get("name") != "chaosagenkit":
            continue
        for event in extension.get("timeline") or []:
            for value in (event.get("detail") or {}).values():
                if isinstance(value, str) and "://" in value:
                    parts = urlsplit(value)
                    # Loopback only: an address inside a run's network namespace (kernel faults)
                    # is gone with the namespace, and probing it from here would leave the machine.
                    if parts.hostname in LOOPBACK and parts.port:
                        found.add((parts.hostname, parts.port))
    return sorted(found)


def assert_nothing_left_behind(journal: dict[str, Any]) -> None:
    """No sandbox entry, no listening port of the run (child processes: autouse fixture)."""
    assert not SANDBOX.servers and not SANDBOX.proxies and not SANDBOX.proxy_daemons
    assert not SANDBOX.clients
    assert_released(addresses_used(journal))
