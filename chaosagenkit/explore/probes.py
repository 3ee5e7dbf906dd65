"""Chaos Toolkit probes of the explorer: an invariant, evaluated over the run's recorded history.

The first such probe of a run ends the schedule's traffic (once the
recovery time after the last fault has passed), closes the explorer's
clients and measures the host; every probe then judges the same frozen
history. Use a tolerance on ``violations``::

    {"type": "probe", "name": "every-answer-belongs-to-its-request",
     "tolerance": {"type": "range", "target": "violations", "range": [0, 0]},
     "provider": {"type": "python", "module": "chaosagenkit.explore.probes",
                  "func": "check_invariant",
                  "arguments": {"invariant": "answers_belong_to_requests"}}}
"""

import logging
from typing import Any

from chaosagenkit.activity import activity, require_choice
from chaosagenkit.explore import recording
from chaosagenkit.explore.invariants import INVARIANTS, TOLERANCES

__all__ = ["check_invariant"]

logger = logging.getLogger("chaostoolkit")


@activity
def check_invariant(invariant: str, configuration: dict = None, secrets: dict = None) -> dict[str, Any]:
    """Check one invariant over everything the run's exploration traffic recorded.

    ``invariant`` is one of: answers_belong_to_requests,
    requests_end_by_deadline, recovers_after_faults, no_errors_without_faults,
    errors_are_agenkit_types, open_circuit_fails_fast,
    half_open_admits_limited_trials, non_transient_errors_not_retried,
    host_leaks_nothing (docs/explore.md says what each means and tolerates).

    Returns {invariant, violations (count), checked (items checked),
    examples (the first violations, one line each), not_checked (why nothing
    could be checked, if so), history (calls, failures, wrong answers, fault
    windows)}. Fails when no exploration traffic was started in the run.
    """
    require_choice(invariant, "invariant", tuple(INVARIANTS))
    history = recording.finish(recording.current())
    verdict = INVARIANTS[invariant].check(history, TOLERANCES)
    if not verdict.holds:
        logger.warning(f"chaosagenkit: invariant {invariant} violated: {verdict.violations[0]}")
    return {**verdict.to_json(), "history": history.summary()}
