"""Errors chaosagenkit raises on purpose.

Two families, because a user must know at once whose fault it is:

- ``ConfigurationError``: the user asked for something invalid (a rate of
  1.5, an unknown fault kind, a malformed endpoint). Nothing was changed.
- ``TargetError``: the system under test, or a process chaosagenkit runs,
  did not behave (unreachable, crashed, answered with an error).

Chaos Toolkit activities turn both into ``chaoslib.exceptions.ActivityFailed``
with one line that names the activity (see ``chaosagenkit.activity``).
"""

from __future__ import annotations

__all__ = [
    "ChaosAgenkitError",
    "ConfigurationError",
    "ControlAPIError",
    "FaultNotFound",
    "ProcessStartError",
    "TargetError",
]


class ChaosAgenkitError(Exception):
    """Base class of every error chaosagenkit raises on purpose."""


class ConfigurationError(ChaosAgenkitError, ValueError):
    """The user's input is invalid; ``field`` names the offending input.

    The message reads as one line: ``'rate' must be between 0 and 1, got 1.5``.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"'{field}' {message}")


class FaultNotFound(ChaosAgenkitError):
    """No active fault has that id (it may have expired)."""


class TargetError(ChaosAgenkitError):
    """The system under test or a chaosagenkit process did not behave."""


class ControlAPIError(TargetError):
    """A control API (chaos host or fault proxy) answered with an error status."""

    def __init__(self, url: str, status: int, error: str) -> None:
        self.url = url
        self.status = status
        self.error = error
        super().__init__(f"{url} answered {status}: {error}")


class ProcessStartError(TargetError):
    """A child process (chaos host, fault proxy) did not come up."""
