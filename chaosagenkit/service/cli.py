"""``chaosagenkit serve``: run the chaos host in the foreground.

Contract with whoever starts it (``chaosagenkit.service.process``, a shell):

- when both servers are bound it prints ONE JSON line on stdout and flushes
  it: ``{"event": "ready", "endpoint": ..., "control": ..., "pid": ...,
  "seed": ..., "ports": {...}}``; after that stdout carries nothing more
  (it is pointed at stderr, so a parent that stops reading never blocks us);
- SIGINT/SIGTERM stop it cleanly, exit 0; a crash fault exits 70;
- bad arguments print one line on stderr and exit 2; a port that cannot be
  bound exits 1;
- ``--exit-with-parent``: a watchdog stops it when its parent process dies,
  so nothing outlives a killed chaos run. The parent to watch is fixed
  before anything slow happens: the starter puts its pid in
  ``$CHAOSAGENKIT_PARENT_PID`` (else it is our parent at start-up), and a
  host whose parent is already gone exits at once (status 0, no ready
  line). The variable is removed from our environment, so an agent's own
  children never inherit it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, NoReturn

import click

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.lifeline import expected_parent, parent_is_gone

if TYPE_CHECKING:
    from chaosagenkit.service.host import HostConfig

__all__ = ["EXIT_BAD_ARGUMENTS", "EXIT_START_FAILED", "MEMORY_HEADROOM_ENV", "TOKEN_ENV", "serve"]

EXIT_BAD_ARGUMENTS = 2
EXIT_START_FAILED = 1
TOKEN_ENV = "CHAOSAGENKIT_SERVE_TOKEN"
MEMORY_HEADROOM_ENV = "CHAOSAGENKIT_MEMORY_HEADROOM_MIB"
_PARENT_POLL_S = 0.25
_SHUTDOWN_GRACE_S = 5.0


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
    help="tcp://HOST:PORT, unix:///PATH, ws://HOST:PORT or http://HOST:PORT (port 0 = any free port).",
)
@click.option(
    "--control",
    default="127.0.0.1:0",
    show_default=True,
    help="HOST:PORT of the control API (port 0 = any free port; see the ready line).",
)
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    default=None,
    help=f"Bearer token every control call must carry (or ${TOKEN_ENV}). "
    "Required when --control is not a loopback address.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=None,
    help="Seed of the fault RNG (default: a random one, reported on the ready line).",
)
@click.option(
    "--http-default-middleware/--no-http-default-middleware",
    default=True,
    show_default=True,
    help="http:// only: keep agenkit HTTPAgentServer's default rate limiter and timeout.",
)
@click.option(
    "--memory-headroom-mib",
    envvar=MEMORY_HEADROOM_ENV,
    type=click.IntRange(min=1),
    default=None,
    help="Cap the host's data memory (RLIMIT_DATA) at its size once serving plus this many MiB: "
    f"allocations beyond fail with MemoryError (or ${MEMORY_HEADROOM_ENV}).",
)
@click.option("--exit-with-parent", is_flag=True, default=False, help="Exit when the parent process dies.")
def serve(
    agent: str,
    endpoint: str,
    control: str,
    token: str | None,
    seed: int | None,
    http_default_middleware: bool,
    memory_headroom_mib: int | None,
    exit_with_parent: bool,
) -> None:
    """Serve an agenkit agent with service faults controlled at run time."""
    parent = expected_parent()  # first: importing agenkit takes a second, a parent may die meanwhile
    if exit_with_parent and parent_is_gone(parent):
        click.echo(f"chaosagenkit serve: parent process {parent} is already gone: not starting", err=True)
        sys.exit(0)
    from chaosagenkit.api import check_bind, parse_host_port
    from chaosagenkit.service.endpoint import parse_endpoint
    from chaosagenkit.service.host import HostConfig

    try:
        control_host, control_port = parse_host_port(control, "control")
        check_bind(control_host, token, "control")
        config = HostConfig(
            endpoint=parse_endpoint(endpoint),
            control_host=control_host,
            control_port=control_port,
            token=token or None,
            seed=secrets.randbelow(2**31) if seed is None else seed,
            http_default_middleware=http_default_middleware,
        )
    except ConfigurationError as e:
        _fail(EXIT_BAD_ARGUMENTS, str(e))
    _configure_logging()
    from chaosagenkit.service.host import load_agent

    try:
        served = load_agent(agent)
    except ConfigurationError as e:
        _fail(EXIT_BAD_ARGUMENTS, str(e))
    sys.exit(asyncio.run(_run(served, config, parent if exit_with_parent else None, memory_headroom_mib)))


async def _run(agent: Any, config: HostConfig, parent: int | None, memory_headroom_mib: int | None) -> int:
    from chaosagenkit.service.host import ChaosHost
    from chaosagenkit.service.resources import limit_data_memory

    host = ChaosHost(agent, config)
    try:
        ready = await host.start()
    except OSError as e:
        _fail(EXIT_START_FAILED, f"cannot bind: {e}")
    if memory_headroom_mib is not None:  # once serving: the limit is on what the agent does from now on
        try:  # from the default executor's thread, so that thread's stack counts as "serving"
            ready["memory_limit_mib"] = await asyncio.to_thread(limit_data_memory, memory_headroom_mib)
        except ConfigurationError as e:
            await host.stop()
            _fail(EXIT_BAD_ARGUMENTS, str(e))
    print(json.dumps(ready), flush=True)
    os.dup2(2, 1)  # later prints (an agent's, a library's) go to stderr, not to a pipe nobody reads

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if parent is not None:
        _watch_parent(loop, stop, parent)
    await stop.wait()
    await host.stop()
    return 0


def _watch_parent(loop: asyncio.AbstractEventLoop, stop: asyncio.Event, parent: int) -> None:
    def watch() -> None:
        while not parent_is_gone(parent):
            time.sleep(_PARENT_POLL_S)
        logging.getLogger("chaosagenkit.serve").warning("parent process %d is gone: stopping", parent)
        loop.call_soon_threadsafe(stop.set)
        time.sleep(_SHUTDOWN_GRACE_S)
        os._exit(0)  # the clean stop did not finish in time; nobody is waiting for us anyway

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


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
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)


def _fail(code: int, message: str) -> NoReturn:
    click.echo(f"chaosagenkit serve: error: {message}", err=True)
    sys.exit(code)
