"""Command-line options every chaosagenkit command spells the same way.

``--seed`` takes the same range everywhere (``limits.MAX_SEED``), and the
daemons (``serve``, ``proxy``, ``llm-proxy``) take ``--exit-with-parent``
(``chaosagenkit.supervisor`` passes it). Only click is imported here, so a
daemon's command line is parsed before anything slow loads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from chaosagenkit.limits import MAX_SEED

__all__ = ["exit_with_parent_option", "seed_option"]


def seed_option(help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--seed N``: 0 .. 2**64 - 1, default None (the command draws one and reports it)."""
    return click.option("--seed", type=click.IntRange(min=0, max=MAX_SEED), default=None, help=help)


exit_with_parent_option = click.option(
    "--exit-with-parent", is_flag=True, default=False, help="Exit when the parent process dies."
)
