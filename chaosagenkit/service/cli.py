"""``chaosagenkit serve``: run the chaos host in the foreground.

Contract with whoever starts it (``chaosagenkit.service.hosts``, a shell);
the parts it shares with ``chaosagenkit proxy`` (ready line, stdout after
it, ``--exit-with-parent``, open-file limit) are ``chaosagenkit.supervisor``'s:

- when both servers are bound it prints ONE JSON line on stdout:
  ``{"event": "ready", "endpoint": ..., "control": ..., "pid": ...,
  "seed": ..., "ports": {...}, "open_files_limit": ...}``;
- SIGINT/SIGTERM stop it cleanly, exit 0; a crash fault exits 70;
- bad arguments print one line on stderr and exit 2; a port that cannot be
  bound exits 1;
- ``--own-socket-dir``: the unix socket's directory was made for this host
  alone; if the parent dies, the host removes the socket and the directory
  (when then empty) before it exits, so none outlives a killed chaos run.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from chaosagenkit.cli_options import exit_with_parent_option, seed_option
from chaosagenkit.control_options import control_plane_options
from chaosagenkit.credentials import token_from_options, token_options
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.log_limit import RepeatLimiter
from chaosagenkit.service.endpoint import parse_endpoint
from chaosagenkit.service.resources import limit_data_memory
from chaosagenkit.supervisor import (
    EXIT_BAD_ARGUMENTS,
    EXIT_START_FAILED,
    ParentWatch,
    announce_ready,
    expected_parent,
    fail,
    raise_open_files_limit,
    stop_requested,
)
from chaosagenkit.validation import random_seed

if TYPE_CHECKING:
    from chaosagenkit.service.host import ChaosHost

__all__ = ["MEMORY_HEADROOM_ENV", "serve"]

MEMORY_HEADROOM_ENV = "CHAOSAGENKIT_MEMORY_HEADROOM_MIB"


@click.command("serve")
@click.option(
    "--agent",
    default="chaosagenkit.targets:echo",
    show_default=True,
    help="MODULE:FACTORY, a zero-argument callable returning an agenkit Agent.",
)
@click.option(
    "--endpoint",
    default="tcp://127.0.0.1:0",
    show_default=True,
    help="tcp://HOST:PORT, unix:///PATH, ws://, http://, h2c:// or grpc://HOST:PORT (port 0 = any free port).",
)
@click.option(
    "--control",
    default="127.0.0.1:0",
    show_default=True,
    help="HOST:PORT of the control API (port 0 = any free port; see the ready line).",
)
@token_options
@seed_option("Seed of the fault RNG (default: a random one, reported on the ready line).")
@click.option(
    "--http-default-middleware/--no-http-default-middleware",
    default=True,
    show_default=True,
    help="http:// and h2c:// only: keep agenkit HTTPAgentServer's default rate limiter and timeout.",
)
@control_plane_options
@click.option(
    "--memory-headroom-mib",
    envvar=MEMORY_HEADROOM_ENV,
    type=click.IntRange(min=1),
    default=None,
    help="Cap the host's data memory (RLIMIT_DATA) at its size once serving plus this many MiB: "
    f"allocations beyond fail with MemoryError (or ${MEMORY_HEADROOM_ENV}).",
)
@exit_with_parent_option
@click.option("--own-socket-dir", is_flag=True, default=False, hidden=True)
def serve(
    agent: str,
    endpoint: str,
    control: str,
    token: str | None,
    token_file: Path | None,
    seed: int | None,
    http_default_middleware: bool,
    default_ttl_s: float,
    allowed_hosts: tuple[str, ...],
    allow_browsers: bool,
    memory_headroom_mib: int | None,
    exit_with_parent: bool,
    own_socket_dir: bool,
) -> None:
    """Serve an agenkit agent with service faults controlled at run time."""
    parent = expected_parent()  # first: importing agenkit takes a second, a parent may die meanwhile
    watch = ParentWatch(parent, "serve") if exit_with_parent else None
    if watch is not None:
        if own_socket_dir and endpoint.startswith("unix:///"):
            watch.cleanups.append(
                functools.partial(_remove_socket_dir, Path(endpoint.removeprefix("unix://")))
            )
        watch.start()
    # Imported here, after the parent is known to live: the host's modules (aiohttp, and agenkit
    # inside load_agent) take a while, and `chaosagenkit --help` never needs them.
    from chaosagenkit.api import check_bind, parse_host_port
    from chaosagenkit.service.host import ChaosHost, HostConfig, load_agent

    try:
        token = token_from_options(token, token_file)
        control_host, control_port = parse_host_port(control, "control")
        check_bind(control_host, token, "control")
        config = HostConfig(
            endpoint=parse_endpoint(endpoint),
            control_host=control_host,
            control_port=control_port,
            token=token,
            seed=random_seed() if seed is None else seed,
            http_default_middleware=http_default_middleware,
            default_ttl_s=default_ttl_s,
            allowed_hosts=allowed_hosts,
            allow_browsers=allow_browsers,
        )
    except ConfigurationError as e:
        fail("serve", EXIT_BAD_ARGUMENTS, str(e))
    _configure_logging()
    open_files = raise_open_files_limit("serve")
    try:
        served = load_agent(agent)
    except ConfigurationError as e:
        fail("serve", EXIT_BAD_ARGUMENTS, str(e))
    sys.exit(asyncio.run(_run(ChaosHost(served, config), watch, open_files, memory_headroom_mib)))


async def _run(
    host: ChaosHost, watch: ParentWatch | None, open_files: int, memory_headroom_mib: int | None
) -> int:

    try:
        ready = await host.start()
    except OSError as e:
        fail("serve", EXIT_START_FAILED, f"cannot bind: {e}")
    if memory_headroom_mib is not None:  # once serving: the limit is on what the agent does from now on
        try:  # from the default executor's thread, so that thread's stack counts as "serving"
            ready["memory_limit_mib"] = await asyncio.to_thread(limit_data_memory, memory_headroom_mib)
        except ConfigurationError as e:
            await host.stop()
            fail("serve", EXIT_BAD_ARGUMENTS, str(e))
    stop = stop_requested(watch)
    announce_ready({**ready, "open_files_limit": open_files})
    await stop.wait()
    await host.stop()
    return 0


def _remove_socket_dir(socket_path: Path) -> None:
    """Remove the socket and its directory; anything else in it stays (then so does the directory)."""
    try:
        socket_path.unlink(missing_ok=True)
        os.rmdir(socket_path.parent)
    except OSError:
        pass


class _InjectedFaultNoise(logging.Filter):
    """Drop agenkit's per-request error logs about failures we injected on purpose.

    LocalAgent logs every agent exception with its traceback; at a 50 %
    failure rate that is a traceback per request, costing CPU and disk for
    nothing. Real errors still get through; /stats counts the injected ones.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if getattr(exc, "chaosagenkit_injected", False):
            return False
        return "chaosagenkit injected" not in record.getMessage()


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_InjectedFaultNoise())
    handler.addFilter(RepeatLimiter())  # fd exhaustion makes asyncio log each failed accept()
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
