"""``chaosagenkit llm-proxy``: run the LLM fault endpoint in the foreground.

Contract with whoever starts it (``chaosagenkit.llm.process``, a shell),
the same as ``chaosagenkit serve``'s:

- when both servers are bound it prints ONE JSON line on stdout:
  ``{"event": "ready", "base_url": ..., "openai_base_url": ...,
  "anthropic_base_url": ..., "control": ..., "mode": ..., "seed": ...}``;
- SIGINT/SIGTERM stop it cleanly, exit 0; bad arguments print one line on
  stderr and exit 2; a port that cannot be bound exits 1;
- ``--exit-with-parent``: it stops when the process that started it dies
  (``chaosagenkit.lifeline``), so nothing outlives a killed chaos run.

It never contacts anything but ``--upstream`` (when given), and only to
forward the requests it receives.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import click

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.lifeline import expected_parent, parent_is_gone

__all__ = ["TOKEN_ENV", "llm_proxy", "parse_upstream", "read_script"]

TOKEN_ENV = "CHAOSAGENKIT_LLM_TOKEN"
EXIT_BAD_ARGUMENTS = 2
EXIT_START_FAILED = 1
_PARENT_POLL_S = 0.25


@click.command("llm-proxy")
@click.option("--listen", default="127.0.0.1:0", show_default=True, help="HOST:PORT of the model API.")
@click.option("--control", default="127.0.0.1:0", show_default=True, help="HOST:PORT of the control API.")
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    default=None,
    help=f"Bearer token every control call must carry (or ${TOKEN_ENV}); needed beyond loopback.",
)
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed of the fault RNG.")
@click.option(
    "--upstream",
    default="",
    help="Forward requests to this base URL (pass-through: http(s)://HOST[:PORT][/PREFIX]); "
    "default: answer from the built-in deterministic model.",
)
@click.option(
    "--script",
    "script_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help='JSON list of built-in model rules: {"match": REGEX, "reply": TEXT} or '
    '{"match": REGEX, "tool": NAME, "arguments": {...}}.',
)
@click.option("--exit-with-parent", is_flag=True, default=False, help="Exit when the parent process dies.")
def llm_proxy(
    listen: str,
    control: str,
    token: str | None,
    seed: int | None,
    upstream: str,
    script_path: Path | None,
    exit_with_parent: bool,
) -> None:
    """Serve the OpenAI and Anthropic APIs with LLM-provider faults controlled at run time."""
    parent = expected_parent()
    if exit_with_parent and parent_is_gone(parent):
        click.echo(f"chaosagenkit llm-proxy: parent process {parent} is already gone: not starting", err=True)
        sys.exit(0)
    from chaosagenkit.api import check_bind, parse_host_port
    from chaosagenkit.llm.server import EndpointConfig

    try:
        listen_host, listen_port = parse_host_port(listen, "listen")
        control_host, control_port = parse_host_port(control, "control")
        check_bind(control_host, token, "control")
        config = EndpointConfig(
            listen_host=listen_host,
            listen_port=listen_port,
            control_host=control_host,
            control_port=control_port,
            token=token or None,
            seed=secrets.randbelow(2**31) if seed is None else seed,
            upstream=parse_upstream(upstream) or None,
            script=read_script(script_path) if script_path else [],
        )
    except ConfigurationError as e:
        _fail(EXIT_BAD_ARGUMENTS, str(e))
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    sys.exit(asyncio.run(_run(config, parent if exit_with_parent else None)))


def parse_upstream(value: str) -> str:
    """An upstream base URL (``http(s)://HOST[:PORT][/PREFIX]``) without its trailing slash; "" = none."""
    text = value.strip()
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigurationError("upstream", f"must be http(s)://HOST[:PORT][/PREFIX], got {value!r}")
    try:
        parts.port  # noqa: B018 -- raises ValueError for a port out of range
    except ValueError as e:
        raise ConfigurationError("upstream", f"has a bad port: {e}") from None
    return text.rstrip("/")


def read_script(path: Path) -> list[dict[str, Any]]:
    """The built-in model's rules from a JSON file, checked (``Responder`` names a bad rule)."""
    from chaosagenkit.llm.responder import Responder

    try:
        script = json.loads(path.read_text())
    except OSError as e:
        raise ConfigurationError("script", f"cannot be read: {e.strerror or e}") from None
    except ValueError as e:
        raise ConfigurationError("script", f"is not valid JSON: {e}") from None
    if not isinstance(script, list):
        raise ConfigurationError("script", "must hold a JSON list of rules")
    Responder(script)
    return script


async def _run(config: Any, parent: int | None) -> int:
    from chaosagenkit.llm.server import LlmEndpoint

    endpoint = LlmEndpoint(config)
    try:
        ready = await endpoint.start()
    except OSError as e:
        _fail(EXIT_START_FAILED, f"cannot bind: {e}")
    print(json.dumps(ready), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watchdog = loop.create_task(_watch_parent(parent, stop)) if parent is not None else None
    await stop.wait()
    if watchdog is not None:
        watchdog.cancel()
    await endpoint.stop()
    return 0


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    while not parent_is_gone(parent):
        await asyncio.sleep(_PARENT_POLL_S)
    logging.getLogger("chaosagenkit.llm").warning("parent process %d is gone: stopping", parent)
    stop.set()


def _fail(code: int, message: str) -> NoReturn:
    click.echo(f"chaosagenkit llm-proxy: error: {message}", err=True)
    sys.exit(code)
