"""The one rule for names: servers, proxy daemons, proxies, toxics and clients.

A name is data, never syntax. It travels in URL paths
(``/proxies/NAME/toxics/TOXIC``), journals and reports, so it is 1 to
``MAX_NAME_LENGTH`` ASCII letters, digits, ``.``, ``_`` or ``-``, starting
with a letter or a digit: no ``?``, ``#``, ``/`` or ``%`` that would change
what a URL addresses, no ``..`` that a server might resolve, nothing that
cannot be encoded. Activities check every name they take with
``check_name`` before anything changes; and every name that goes into a URL
is also percent-escaped there (``chaosagenkit.control_client.path``), so a
name another Toxiproxy server holds is still addressed exactly.
"""

from __future__ import annotations

import re
from typing import Any

from chaosagenkit.exceptions import ConfigurationError

__all__ = ["MAX_NAME_LENGTH", "NAME_RULE", "check_name", "is_name"]

MAX_NAME_LENGTH = 64
#: The rule in words, as error messages give it.
NAME_RULE = f"a name of 1 to {MAX_NAME_LENGTH} ASCII letters, digits, '.', '_' or '-', starting with a letter or digit"
_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME_LENGTH - 1}}}")
_SHOWN_CHARACTERS = 70


def is_name(value: Any) -> bool:
    """True when ``value`` is a valid name."""
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def check_name(value: Any, field: str) -> str:
    """Return ``value`` if it is a valid name; else raise a one-line ``ConfigurationError`` for ``field``."""
    if is_name(value):
        return value
    raise ConfigurationError(field, f"must be {NAME_RULE}, got {_shown(value)}")


def _shown(value: Any) -> str:
    """``value`` for a one-line message: repr, cut when long (a 10 MB name stays one short line)."""
    try:
        shown = repr(value)
    except ValueError:  # an integer too large for repr
        return "an integer too large to show"
    if len(shown) <= _SHOWN_CHARACTERS:
        return shown
    size = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return f"{shown[:_SHOWN_CHARACTERS]}...{size}"
