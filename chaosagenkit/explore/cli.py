"""``chaosagenkit explore``: random fault schedules against real processes; minimal experiments out.

Exit codes: 0 no invariant was violated (and every run could be judged),
1 some invariant was violated (findings written), 2 exploring itself failed
(the sandbox could not run, a run could not be judged, Ctrl-C).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from chaosagenkit.cli_options import seed_option
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.validation import random_seed

__all__ = ["DEFAULT_STACKS", "explore", "parse_stacks"]

#: agenkit retry over circuit breaker over timeout, as a careful user would stack them
#: (time compressed like the experiments': 50 ms backoff, 500 ms recovery, 300 ms timeout) ...
DEFAULT_STACK = (
    {"type": "retry", "max_retries": 3, "initial_delay": 0.05},
    {"type": "circuit_breaker", "failure_threshold": 5, "recovery_timeout_ms": 500},
    {"type": "timeout", "timeout_ms": 300},
)
#: ... and the same with the remedies docs/FINDINGS.md recommends (F4, F6): retry told not
#: to retry malformed answers or an open circuit. Each trial draws one of the two.
HARDENED_STACK = (
    {
        "type": "retry",
        "max_retries": 3,
        "initial_delay": 0.05,
        "no_retry_on": ["MalformedPayloadError", "CircuitBreakerError"],
    },
    DEFAULT_STACK[1],
    DEFAULT_STACK[2],
)
DEFAULT_STACKS = (DEFAULT_STACK, HARDENED_STACK)
TRANSPORTS = ("tcp", "http", "ws", "unix")


def parse_stacks(text: str) -> tuple[tuple[dict[str, Any], ...], ...]:
    """``--middleware``: one stack (a JSON list of declarations) or several (a list of such lists)."""
    # Imported on use: it loads chaoslib; other paths here never need it.
    from chaosagenkit.client.stack import validate_middleware

    try:
        data = json.loads(text)
    except ValueError as e:
        raise ConfigurationError("--middleware", f"must be JSON: {e}") from e
    if not isinstance(data, list):
        raise ConfigurationError("--middleware", f"must be a JSON list, got {text!r:.80}")
    stacks = data if data and all(isinstance(item, list) for item in data) else [data]
    return tuple(
        tuple(validate_middleware(stack, f"--middleware[{i}]" if len(stacks) > 1 else "--middleware"))
        for i, stack in enumerate(stacks)
    )


@click.command("explore")
@click.option(
    "--agent",
    default="chaosagenkit.targets:echo",
    show_default=True,
    help="MODULE:FACTORY of the agent to serve (a zero-argument callable returning an agenkit Agent).",
)
@click.option(
    "--middleware",
    "middleware",
    default=None,
    help="The callers' agenkit middleware, outermost first, as JSON: one stack (a list of "
    "declarations) or several (a list of lists; each trial draws one). Default: retry + circuit "
    "breaker + timeout, and the same with retry told not to retry malformed answers or an open circuit.",
)
@click.option("--transport", type=click.Choice(TRANSPORTS), default="tcp", show_default=True)
@click.option(
    "--budget-s",
    type=click.FloatRange(min=1),
    default=600.0,
    show_default=True,
    help="Seconds for everything: trials, shrinking and confirmation runs.",
)
@seed_option("Seed of every random decision (default: drawn, printed).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("explore-results"),
    show_default=True,
    help="Folder for findings.json, findings.md, one experiment per finding, and every trial.",
)
@click.option(
    "--timeout-ms",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="The RemoteAgent's own timeout.",
)
@click.option(
    "--answer-check",
    default="echo",
    show_default=True,
    help="How a caller tells its own answer: echo, none, or MODULE:FUNCTION(request, answer) -> bool.",
)
@click.option(
    "--confirm-runs",
    type=click.IntRange(min=1, max=20),
    default=3,
    show_default=True,
    help="Runs of each minimal schedule that confirm it (k of n is recorded).",
)
@click.option(
    "--max-faults",
    type=click.IntRange(min=1, max=10),
    default=3,
    show_default=True,
    help="Most faults one schedule draws (they may overlap).",
)
@click.option(
    "--max-shrink-runs",
    type=click.IntRange(min=0, max=1000),
    default=8,
    show_default=True,
    help="Real runs the shrinker may spend on one finding.",
)
@click.option(
    "--idle-gap-s",
    type=click.FloatRange(min=0),
    default=62.0,
    show_default=True,
    help="Length of drawn idle gaps (agenkit's LocalAgent closes idle connections after 60 s); 0: none.",
)
@click.option(
    "--sources",
    default="",
    help="Comma-separated fault sources to draw from (service, network, frame; default: all that apply).",
)
def explore(
    agent: str,
    middleware: str | None,
    transport: str,
    budget_s: float,
    seed: int | None,
    out_dir: Path,
    timeout_ms: int,
    answer_check: str,
    confirm_runs: int,
    max_faults: int,
    max_shrink_runs: int,
    idle_gap_s: float,
    sources: str,
) -> None:
    """Draw random fault schedules, run them against real processes, shrink and write what breaks."""
    # Imported on use: it loads chaoslib and hpack; other paths here never need it.
    from chaosagenkit.client.harness import resolve_answer_check
    from chaosagenkit.explore.catalogue import SOURCES
    from chaosagenkit.explore.explorer import ExploreOptions, Explorer

    try:
        stacks = DEFAULT_STACKS if middleware is None else parse_stacks(middleware)
        resolve_answer_check(answer_check)
        chosen = tuple(s.strip() for s in sources.split(",") if s.strip()) or None
        for name in chosen or ():
            if name not in SOURCES:
                raise ConfigurationError(
                    "--sources", f"must name sources among {', '.join(SOURCES)}, got {name!r}"
                )
    except ConfigurationError as e:
        raise click.UsageError(str(e)) from e
    options = ExploreOptions(
        out=out_dir,
        stacks=stacks,
        seed=random_seed() if seed is None else seed,
        budget_s=budget_s,
        transport=transport,
        agent=agent,
        answer_check=answer_check,
        remote_timeout_ms=timeout_ms,
        confirm_runs=confirm_runs,
        max_faults=max_faults,
        max_shrink_runs=max_shrink_runs,
        idle_gap_s=idle_gap_s,
        sources=chosen,
    )
    sys.exit(Explorer(options).run())
