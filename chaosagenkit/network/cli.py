"""``chaosagenkit proxy``: run the fault proxy as a standalone daemon.

Prints one JSON line on stdout when the API is listening::

    {"event": "ready", "api": "http://127.0.0.1:8474", "pid": 4242, "seed": 7, "proxies": {...},
     "loop": "uvloop", "open_files_limit": 1048576}

and stops cleanly (every proxy closed) on SIGINT/SIGTERM, or when its
parent dies if ``--exit-with-parent`` is given; what it shares with
``chaosagenkit serve`` (ready line, stdout after it, ``--exit-with-parent``,
open-file limit) is ``chaosagenkit.supervisor``'s. Must not import agenkit
(start-up time).

``--loop auto`` runs the event loop on uvloop when it is installed: the
proxy's cost per forwarded chunk is mostly event-loop work, and uvloop
does that work in C (see benchmarks/results/proxy.md for the difference).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from chaosagenkit.api import check_bind, parse_host_port, start_app
from chaosagenkit.cli_options import exit_with_parent_option, seed_option
from chaosagenkit.control_options import ControlOptions, control_plane_options
from chaosagenkit.credentials import token_from_options, token_options
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.limits import DEFAULT_TTL_S
from chaosagenkit.log_limit import RepeatLimiter
from chaosagenkit.network.api import application
from chaosagenkit.network.proxy import format_address
from chaosagenkit.network.server import ProxyServer, ProxyServerError
from chaosagenkit.supervisor import (
    EXIT_BAD_ARGUMENTS,
    EXIT_START_FAILED,
    ParentWatch,
    announce_ready,
    expected_parent,
    fail,
    raise_open_files_limit,
)
from chaosagenkit.validation import read_json_file

__all__ = ["proxy", "run_daemon"]

logger = logging.getLogger("chaosagenkit.proxy")


@click.command("proxy")
@click.option(
    "--listen",
    default="127.0.0.1:8474",
    show_default=True,
    help="HOST:PORT of the API (port 0: any free port).",
)
@token_options
@seed_option("Seed of every random fault decision (default: random, printed).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON file of proxies to create (Toxiproxy's populate format).",
)
@control_plane_options
@exit_with_parent_option
@click.option(
    "--loop",
    "loop_name",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "asyncio", "uvloop"]),
    help="Event loop: uvloop when installed (auto), or the standard asyncio loop.",
)
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def proxy(
    listen: str,
    token: str | None,
    token_file: Path | None,
    seed: int | None,
    config_path: Path | None,
    default_ttl_s: float,
    allowed_hosts: tuple[str, ...],
    allow_browsers: bool,
    exit_with_parent: bool,
    loop_name: str,
    log_level: str,
) -> None:
    """Run the fault proxy (Toxiproxy-compatible API, agenkit frame-aware toxics)."""
    parent = expected_parent()  # first: a parent may die while we start
    watch = ParentWatch(parent, "proxy").start() if exit_with_parent else None
    logging.basicConfig(
        level=log_level.upper(), stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RepeatLimiter())  # fd exhaustion makes asyncio log each failed accept()
    try:
        token = token_from_options(token, token_file)
        host, port = parse_host_port(listen, "--listen")
        check_bind(host, token, "--listen")
        config = _read_config(config_path) if config_path else None
        runner = _event_loop_runner(loop_name)
    except ConfigurationError as e:
        fail("proxy", EXIT_BAD_ARGUMENTS, str(e))
    open_files = raise_open_files_limit("proxy")
    try:
        runner(
            run_daemon(
                host,
                port,
                token=token,
                seed=seed,
                config=config,
                watch=watch,
                open_files=open_files,
                default_ttl_s=default_ttl_s,
                allowed_hosts=allowed_hosts,
                allow_browsers=allow_browsers,
            )
        )
    except (ConfigurationError, ProxyServerError) as e:
        fail("proxy", EXIT_START_FAILED, f"--config: {e}")
    except OSError as e:
        fail("proxy", EXIT_START_FAILED, f"cannot listen on {listen}: {e.strerror or e}")


async def run_daemon(
    host: str,
    port: int,
    *,
    token: str | None = None,
    seed: int | None = None,
    config: list[Any] | None = None,
    watch: ParentWatch | None = None,
    open_files: int | None = None,
    default_ttl_s: float = DEFAULT_TTL_S,
    allowed_hosts: tuple[str, ...] = (),
    allow_browsers: bool = False,
) -> None:
    """Serve the API until a signal (or, with ``watch``, the death of the parent) asks to stop."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if watch is not None:
        watch.stop_with(lambda: loop.call_soon_threadsafe(stop.set))
    server = ProxyServer(seed=seed, token=token, default_ttl_s=default_ttl_s)
    options = ControlOptions(token=token, allowed_hosts=allowed_hosts, allow_browsers=allow_browsers)
    runner = None
    try:
        if config:
            await server.populate(config)
        runner, bound = await start_app(application(server, options), host, port)
        announce_ready(
            {
                "event": "ready",
                "api": f"http://{format_address(host, bound)}",
                "pid": os.getpid(),
                "seed": server.seed,
                "loop": "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio",
                "proxies": {name: p.listen for name, p in server.proxies.items()},
                "open_files_limit": open_files,
            }
        )
        await stop.wait()
    finally:
        if runner is not None:
            await runner.cleanup()
        await server.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _event_loop_runner(name: str):
    """``asyncio.run``, or ``uvloop.run`` when asked for (or, with auto, when installed)."""
    if name == "asyncio":
        return asyncio.run
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise ConfigurationError(
                "--loop", "is uvloop, which is not installed (pip install uvloop)"
            ) from None
        return asyncio.run
    return uvloop.run


def _read_config(path: Path) -> list[Any]:
    data = read_json_file(path, "--config")
    if not isinstance(data, list):
        raise ConfigurationError("--config", "must hold a JSON array of proxies (populate format)")
    return data
