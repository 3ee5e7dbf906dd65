"""What every Chaos Toolkit activity of chaosagenkit shares.

Rule: an activity checks its arguments before it changes anything, then
calls one core function. Whatever goes wrong reaches the user as
``chaoslib.exceptions.ActivityFailed`` with ONE line that names the
activity, the argument, what was expected and what was received::

    inject_delay: 'delay_ms' must be >= 0, got -5

``@activity`` does the translation from chaosagenkit's own errors, so core
code never imports chaoslib and activities stay thin.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

from chaoslib.exceptions import ActivityFailed

from chaosagenkit.exceptions import ChaosAgenkitError, ConfigurationError

__all__ = [
    "activity",
    "invalid",
    "require",
    "require_choice",
    "require_name",
    "require_number",
    "seed_or_none",
]

F = TypeVar("F", bound=Callable[..., Any])

_LARGEST_FLOAT = 1.7976931348623157e308


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


def invalid(arg: str, expected: str, got: Any) -> ConfigurationError:
    """Build the error for argument ``arg`` that should be ``expected``."""
    return ConfigurationError(arg, f"must be {expected}, got {got!r}")


def require(ok: bool, arg: str, expected: str, got: Any) -> None:
    """Raise ``invalid(arg, expected, got)`` unless ``ok``."""
    if not ok:
        raise invalid(arg, expected, got)


def require_number(
    value: Any,
    arg: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    integer: bool = False,
    allow_none: bool = False,
) -> None:
    """Check that ``value`` is a finite number within the given bounds."""
    if value is None and allow_none:
        return
    kind = "an integer" if integer else "a number"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _LARGEST_FLOAT:
        # Too large for a float (math.isfinite would raise OverflowError), and for repr at 4300 digits.
        digits = int(value.bit_length() * math.log10(2)) + 1
        raise ConfigurationError(arg, f"must be {kind} below 1e308, got an integer of about {digits} digits")
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if integer:
        is_number = is_number and float(value).is_integer()
    if not is_number or not math.isfinite(value):
        raise invalid(arg, kind, value)
    if minimum is not None:
        if exclusive_minimum and value <= minimum:
            raise invalid(arg, f"> {minimum:g}", value)
        if not exclusive_minimum and value < minimum:
            raise invalid(arg, f">= {minimum:g}", value)
    if maximum is not None and value > maximum:
        if minimum is not None:
            raise invalid(arg, f"between {minimum:g} and {maximum:g}", value)
        raise invalid(arg, f"<= {maximum:g}", value)


def seed_or_none(value: Any, arg: str = "seed") -> int | None:
    """A seed as an experiment declares it: None when absent (None or ""), else an integer >= 0.

    Takes an integer, an integral float or a decimal string (``--var seed=7``
    gives a string); refuses booleans and fractions rather than truncating them.
    """
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise invalid(arg, "an integer", value) from None
    require_number(value, arg, minimum=0, integer=True)
    return int(value)


def require_name(value: Any, arg: str) -> None:
    """Check that ``value`` is a non-empty string."""
    require(isinstance(value, str) and value.strip() != "", arg, "a non-empty string", value)


def require_choice(value: Any, arg: str, choices: tuple[str, ...] | list[str]) -> None:
    """Check that ``value`` is one of ``choices``."""
    require(value in choices, arg, f"one of {', '.join(choices)}", value)
