"""How a child process of a chaos run (`chaosagenkit serve`, `chaosagenkit proxy`) dies with it.

Rule: a child started with ``--exit-with-parent`` must never outlive the
chaos process, not even when that process dies while the child is still
starting (importing agenkit alone takes a second). So the starter passes its
own pid in ``$CHAOSAGENKIT_PARENT_PID``; the child reads it FIRST, before
anything slow, exits at once if its parent is already someone else, and
later watches ``os.getppid()`` (a child whose parent died is re-parented).
"""

from __future__ import annotations

import os

__all__ = ["PARENT_PID_ENV", "child_environment", "expected_parent", "parent_is_gone"]

#: Set by whoever starts a child with --exit-with-parent: the pid whose death stops it.
PARENT_PID_ENV = "CHAOSAGENKIT_PARENT_PID"


def child_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` plus this process's pid as the parent a child must die with."""
    return {**env, PARENT_PID_ENV: str(os.getpid())}


def expected_parent() -> int:
    """The pid in ``$CHAOSAGENKIT_PARENT_PID`` (removed from the environment), else our parent's now."""
    value = os.environ.pop(PARENT_PID_ENV, "")
    return int(value) if value.isdigit() else os.getppid()


def parent_is_gone(parent: int) -> bool:
    """True once this process is no longer the child of ``parent``."""
    return os.getppid() != parent
