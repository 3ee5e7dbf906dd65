"""How a control plane (the chaos host's control API, the proxy's API) is exposed.

``ControlOptions`` says who may call it and how long it waits for them;
``control_plane_options`` gives both daemons the same command-line options
for it. Kept apart from ``chaosagenkit.api`` so a daemon's command line is
parsed without importing aiohttp (start-up time: a parent may die meanwhile).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.limits import (
    CONTROL_BODY_TIMEOUT_S,
    CONTROL_HEADER_TIMEOUT_S,
    CONTROL_IDLE_TIMEOUT_S,
    CONTROL_MAX_BODY_BYTES,
    CONTROL_MAX_CONNECTIONS,
    DEFAULT_TTL_S,
    MAX_TTL_S,
)
from chaosagenkit.validation import require_ttl

__all__ = ["ControlOptions", "control_plane_options"]


@dataclass(frozen=True)
class ControlOptions:
    """Who may call a control API, and how long it waits for them (defaults: ``chaosagenkit.limits``)."""

    token: str | None = None
    #: Host names accepted besides the bind address (``--allowed-host``), e.g. behind a reverse proxy.
    allowed_hosts: tuple[str, ...] = ()
    #: Serve browser user agents (``--allow-browsers``); Host and Origin are still checked.
    allow_browsers: bool = False
    header_timeout_s: float = CONTROL_HEADER_TIMEOUT_S
    idle_timeout_s: float = CONTROL_IDLE_TIMEOUT_S
    body_timeout_s: float = CONTROL_BODY_TIMEOUT_S
    max_connections: int = CONTROL_MAX_CONNECTIONS
    max_body_bytes: int = CONTROL_MAX_BODY_BYTES


def control_plane_options[F: Callable[..., Any]](command: F) -> F:
    """The options both daemons take: ``--default-ttl``, ``--allowed-host``, ``--allow-browsers``.

    They arrive as ``default_ttl_s`` (float), ``allowed_hosts`` (tuple) and ``allow_browsers`` (bool).
    """

    def ttl(ctx: click.Context, param: click.Parameter, value: float) -> float:
        try:
            return require_ttl(value, "--default-ttl")
        except ConfigurationError as e:
            raise click.BadParameter(e.message) from None

    options = [
        click.option(
            "--default-ttl",
            "default_ttl_s",
            type=float,
            default=DEFAULT_TTL_S,
            show_default=True,
            callback=ttl,
            help=f"Seconds until a fault given without duration_s expires (at most {MAX_TTL_S:g}).",
        ),
        click.option(
            "--allowed-host",
            "allowed_hosts",
            multiple=True,
            metavar="NAME",
            help="A Host name the control API answers to besides its address (repeatable).",
        ),
        click.option(
            "--allow-browsers",
            is_flag=True,
            help="Serve browser user agents on the control API (refused by default, as Toxiproxy does).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command
