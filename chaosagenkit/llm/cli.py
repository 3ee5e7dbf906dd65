"""``chaosagenkit llm-proxy``: run the LLM fault endpoint in the foreground.

Contract with whoever starts it (``chaosagenkit.llm.process``, a shell),
the same as ``chaosagenkit serve``'s:

- when both servers are bound it prints ONE JSON line on stdout:
  ``{"event": "ready", "base_url": ..., "openai_base_url": ...,
  "anthropic_base_url": ..., "control": ..., "mode": ..., "seed": ...}``;
- SIGINT/SIGTERM stop it cleanly, exit 0; bad arguments print one line on
  stderr and exit 2; a port that cannot be bound exits 1;
- ``--exit-with-parent``: it stops when the process that started it dies,
  so nothing outlives a killed chaos run.

What it shares with the other daemons (ready line, stdout after it, exit
with parent, token options, open-file limit) is ``chaosagenkit.supervisor``'s.

It never contacts anything but ``--upstream`` (when given), and only to
forward the requests it receives.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from chaosagenkit.cli_options import exit_with_parent_option, seed_option
from chaosagenkit.credentials import token_from_options, token_options
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.llm.responder import Responder
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
from chaosagenkit.validation import random_seed, read_json_file

__all__ = ["llm_proxy", "parse_upstream", "read_script"]


@click.command("llm-proxy")
@click.option("--listen", default="127.0.0.1:0", show_default=True, help="HOST:PORT of the model API.")
@click.option("--control", default="127.0.0.1:0", show_default=True, help="HOST:PORT of the control API.")
@token_options
@seed_option("Seed of the fault RNG (default: random, on the ready line).")
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
@exit_with_parent_option
def llm_proxy(
    listen: str,
    control: str,
    token: str | None,
    token_file: Path | None,
    seed: int | None,
    upstream: str,
    script_path: Path | None,
    exit_with_parent: bool,
) -> None:
    """Serve the OpenAI and Anthropic APIs with LLM-provider faults controlled at run time."""
    parent = expected_parent()  # first: a parent may die while we start
    watch = ParentWatch(parent, "llm-proxy").start() if exit_with_parent else None
    # Imported on use: it loads aiohttp; other paths here never need it.
    from chaosagenkit.api import check_bind, parse_host_port
    from chaosagenkit.llm.server import EndpointConfig

    try:
        token = token_from_options(token, token_file)
        listen_host, listen_port = parse_host_port(listen, "listen")
        control_host, control_port = parse_host_port(control, "control")
        check_bind(control_host, token, "control")
        config = EndpointConfig(
            listen_host=listen_host,
            listen_port=listen_port,
            control_host=control_host,
            control_port=control_port,
            token=token or None,
            seed=random_seed() if seed is None else seed,
            upstream=parse_upstream(upstream) or None,
            script=read_script(script_path) if script_path else [],
        )
    except ConfigurationError as e:
        fail("llm-proxy", EXIT_BAD_ARGUMENTS, str(e))
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    open_files = raise_open_files_limit("llm-proxy")
    sys.exit(asyncio.run(_run(config, watch, open_files)))


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
    script = read_json_file(path, "script")
    if not isinstance(script, list):
        raise ConfigurationError("script", "must hold a JSON list of rules")
    Responder(script)
    return script


async def _run(config: Any, watch: ParentWatch | None, open_files: int) -> int:
    # Imported on use: it loads aiohttp; other paths here never need it.
    from chaosagenkit.llm.server import LlmEndpoint

    endpoint = LlmEndpoint(config)
    try:
        ready = await endpoint.start()
    except OSError as e:
        fail("llm-proxy", EXIT_START_FAILED, f"cannot bind: {e.strerror or e}")
    stop = stop_requested(watch)
    announce_ready({**ready, "open_files_limit": open_files})
    await stop.wait()
    await endpoint.stop()
    return 0
