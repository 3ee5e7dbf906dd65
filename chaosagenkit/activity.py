"""What every Chaos Toolkit activity of chaosagenkit shares.

Rule: an activity checks its arguments before it changes anything, then
calls one core function. Whatever goes wrong reaches the user as
``chaoslib.exceptions.ActivityFailed`` with ONE line that names the
activity, the argument, what was expected and what was received::

    inject_delay: 'delay_ms' must be >= 0, got -5

``@activity`` does the translation from chaosagenkit's own errors, so core
code never imports chaoslib and activities stay thin. The checks themselves
are ``chaosagenkit.validation``'s (the one validator, also used by the
control APIs and the fault modules), re-exported here for activity modules.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from chaoslib.exceptions import ActivityFailed

from chaosagenkit.exceptions import ChaosAgenkitError
from chaosagenkit.validation import (
    invalid,
    require,
    require_choice,
    require_number,
    require_probability,
    require_seed,
    require_text,
    require_ttl,
    seed_or_none,
)

__all__ = [
    "activity",
    "invalid",
    "require",
    "require_choice",
    "require_number",
    "require_probability",
    "require_seed",
    "require_text",
    "require_ttl",
    "seed_or_none",
]

F = TypeVar("F", bound=Callable[..., Any])


def activity[F: Callable[..., Any]](func: F) -> F:
    """Turn chaosagenkit errors raised by ``func`` into a one-line ``ActivityFailed``.

    ``functools.wraps`` keeps the signature and docstring, so Chaos Toolkit's
    argument validation and ``chaos discover`` see the real function.
    """
    name = func.__name__

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ActivityFailed as e:
            message = str(e)
            if message.startswith(f"{name}: "):
                raise
            raise ActivityFailed(f"{name}: {message}") from e
        except ChaosAgenkitError as e:
            raise ActivityFailed(f"{name}: {e}") from e

    return wrapper  # type: ignore[return-value]
