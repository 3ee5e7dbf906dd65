"""Import ``MODULE:ATTRIBUTE`` references the way ``python -m`` would.

A team's agent (``target_agent``) and its answer check (``answer_check``)
live in the team's own code, usually a package in the directory the team
runs ``chaos run`` or ``chaosagenkit run`` from. ``python -m chaosagenkit
serve`` (how the sandbox starts a served agent) puts the current directory
first on ``sys.path``; console scripts such as ``chaos`` and
``chaosagenkit`` do not. Rule: every reference is imported through
``import_reference``, which puts the current directory on the path as
``python -m`` does, so a reference that works for the served agent works
for the answer check, in every entry point.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from chaosagenkit.exceptions import ConfigurationError

__all__ = ["import_reference"]


def import_reference(reference: Any, key: str, what: str = "MODULE:ATTRIBUTE") -> Any:
    """The object named by ``reference`` ("package.module:attribute").

    ``key`` names the configuration input in errors. Raises
    ``ConfigurationError`` when the reference is malformed, the module cannot
    be imported (its own error is quoted) or has no such attribute.
    """
    if not isinstance(reference, str):
        raise ConfigurationError(key, f"must be {what}, got {reference!r}")
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute or ":" in attribute:
        raise ConfigurationError(key, f"must be {what}, got {reference!r}")
    _current_directory_on_path()
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # ".relative" raises TypeError; a broken module anything
        raise ConfigurationError(
            key, f"module {module_name!r} cannot be imported: {type(e).__name__}: {e}"
        ) from e
    try:
        return getattr(module, attribute)
    except AttributeError as e:
        raise ConfigurationError(key, f"{reference!r}: module {module_name} has no {attribute!r}") from e


def _current_directory_on_path() -> None:
    """Search the current directory first, as ``python -m`` does (once per directory)."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
        importlib.invalidate_caches()
