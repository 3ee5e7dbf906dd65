"""The one validator: checks for configuration, control-API bodies and activity arguments.

Every value that enters chaosagenkit (a CLI option, an experiment key, a
field of a control API's JSON, an activity argument, a toxic attribute) is
checked by these functions against ``chaosagenkit.limits``, so it is
refused with the same words wherever it enters. Each check raises
``ConfigurationError(field, "must be EXPECTED, got VALUE")``, which reads
as one line::

    'delay_ms' must be >= 0, got -5

(the activities prefix the activity's name, the APIs answer it as
``{"error": ..., "status": 400}``), and returns the value it accepted, so a
caller checks and normalises in one step.

Pure (no chaoslib, no sockets, no event loop): the fault modules use it.
Not a schema library: pydantic and jsonschema are not in the dependency
tree, and what is needed (about ten checks whose messages name the field
in one line) would take a translation layer of the same size around them.

Numbers follow one rule: booleans are not numbers; NaN and infinities are
refused, and so is an integer no float can hold (JSON allows 400 digits),
with the bound it breaks when there is one (compared exactly, without
overflowing); a float with an integral value (``100.0``) is an integer
where one is asked for.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.limits import MAX_SEED, MAX_TTL_S, RANDOM_SEED_BELOW

__all__ = [
    "finite_float",
    "invalid",
    "random_seed",
    "read_json_file",
    "require",
    "require_choice",
    "require_known_keys",
    "require_number",
    "require_probability",
    "require_seed",
    "require_text",
    "require_ttl",
    "seed_or_none",
    "shown",
]


def shown(value: Any) -> str:
    """``repr(value)`` for an error message, a huge integer summarised by its size."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**18:
        digits = len(str(abs(value))) if value.bit_length() < 13_000 else None  # str() refuses > 4300 digits
        if digits is None:
            digits = int(value.bit_length() * math.log10(2)) + 1
            return f"an integer of about {digits} digits"
        return f"an integer of {digits} digits"
    return repr(value)


def finite_float(value: Any) -> float | None:
    """``value`` as a float when it is a number a float can hold, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def invalid(field: str, expected: str, got: Any) -> ConfigurationError:
    """The error for ``field``, which should be ``expected``: ``'field' must be EXPECTED, got GOT``."""
    return ConfigurationError(field, f"must be {expected}, got {shown(got)}")


def require(ok: bool, field: str, expected: str, got: Any) -> None:
    """Raise ``invalid(field, expected, got)`` unless ``ok``."""
    if not ok:
        raise invalid(field, expected, got)


def require_number(
    value: Any,
    field: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    integer: bool = False,
    allow_none: bool = False,
) -> Any:
    """Check that ``value`` is a number within the bounds; return it (an ``int`` if ``integer``).

    A number is returned as given otherwise, so later messages show what the
    user wrote. A value below the minimum is told the minimum (``must be >=
    0``), one above the maximum the whole range (``must be between 1 and
    256``, ``must be > 0 and <= 86400``).
    """
    if value is None and allow_none:
        return None
    kind = "an integer" if integer else "a number"
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if not is_int and not (isinstance(value, float) and math.isfinite(value)):
        raise invalid(field, kind, value)
    if integer and not is_int:
        if not value.is_integer():
            raise invalid(field, kind, value)
        value = int(value)
    # Python compares an int with a float exactly, so a 400-digit integer meets the bounds here.
    if minimum is not None and (value < minimum or (exclusive_minimum and value == minimum)):
        raise invalid(field, f"{'>' if exclusive_minimum else '>='} {_bound(minimum)}", value)
    if maximum is not None and value > maximum:
        raise invalid(field, _range(minimum, maximum, exclusive_minimum), value)
    if finite_float(value) is None:  # an integer no float can hold, within the bounds given
        raise invalid(field, f"{kind} below 1e308", value)
    return value


def require_probability(value: Any, field: str) -> float:
    """Check that ``value`` is a number between 0 and 1; return it as a float."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    require(is_number and not (isinstance(value, float) and math.isnan(value)), field, "a number", value)
    require(0 <= value <= 1, field, "between 0 and 1", value)
    return float(value)


def require_choice(value: Any, field: str, choices: tuple[str, ...] | list[str]) -> str:
    """Check that ``value`` is one of ``choices``; return it."""
    require(isinstance(value, str) and value in choices, field, f"one of {', '.join(choices)}", value)
    return value


def require_text(value: Any, field: str) -> str:
    """Check that ``value`` is a non-empty string; return it.

    For references that are not all names (a name of this run or a control URL,
    ``host:port``); the rule for a name itself is ``names.check_name``.
    """
    require(isinstance(value, str) and value.strip() != "", field, "a non-empty string", value)
    return value


def require_known_keys(mapping: dict[str, Any], known: Iterable[str], what: str, prefix: str = "") -> None:
    """Refuse the first key of ``mapping`` (sorted) not in ``known``: ``'KEY' is not WHAT (known: ...)``."""
    names = tuple(known)
    unknown = sorted(set(mapping) - set(names))
    if unknown:
        raise ConfigurationError(f"{prefix}{unknown[0]}", f"is not {what} (known: {', '.join(names)})")


def require_seed(value: Any, field: str = "seed") -> int:
    """Check that ``value`` is a seed: an integer 0 .. 2**64 - 1 (``limits.MAX_SEED``)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > MAX_SEED:
        raise invalid(field, "an integer between 0 and 2**64 - 1", value)
    return require_number(value, field, minimum=0, integer=True)


def seed_or_none(value: Any, field: str = "seed") -> int | None:
    """A seed as an experiment declares it: None when absent (None or ""), else a seed.

    Takes a decimal string as well (``--var seed=7`` gives a string);
    refuses booleans and fractions rather than truncating them.
    """
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise invalid(field, "an integer", value) from None
    return require_seed(value, field)


def require_ttl(value: Any, field: str = "duration_s", *, default: float | None = None) -> float:
    """A fault's TTL in seconds: > 0 and <= ``limits.MAX_TTL_S``; ``default`` when None is given."""
    if value is None and default is not None:
        return default
    return float(require_number(value, field, minimum=0, exclusive_minimum=True, maximum=MAX_TTL_S))


def read_json_file(path: Path, field: str) -> Any:
    """The JSON value in file ``path``; a file that cannot be read or is not JSON is refused as ``field``."""
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise ConfigurationError(field, f"cannot be read: {e.strerror or e}") from None
    except ValueError as e:
        raise ConfigurationError(field, f"is not valid JSON: {e}") from None


def random_seed() -> int:
    """A fresh seed for a run or a daemon given none (below ``limits.RANDOM_SEED_BELOW``)."""
    return secrets.randbelow(RANDOM_SEED_BELOW)


def _range(minimum: float | None, maximum: float, exclusive_minimum: bool) -> str:
    if minimum is None:
        return f"<= {_bound(maximum)}"
    if exclusive_minimum:
        return f"> {_bound(minimum)} and <= {_bound(maximum)}"
    return f"between {_bound(minimum)} and {_bound(maximum)}"


def _bound(x: float) -> str:
    """A bound as people write it: 86400000, not 8.64e+07; 0.5 as 0.5."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"
