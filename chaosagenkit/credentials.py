"""Bearer tokens of the control planes: where they come from and what a usable one is.

Rules, stated once:

- A daemon (``chaosagenkit serve``, ``chaosagenkit proxy``) takes its token
  from ``--token-file FILE``, from ``$CHAOSAGENKIT_TOKEN`` or from
  ``--token``. The first two are the safe ways: a command line is visible
  to every user of the machine in ``ps``. A chaos run hands the token of a
  child it starts over in the environment (``chaosagenkit.supervisor``).
- Activities reach a control plane the run did not start with the token in
  the configuration (``chaosagenkit_server_token``, ``toxiproxy_token``),
  else with ``$CHAOSAGENKIT_TOKEN`` of the chaos process (``client_token``):
  Chaos Toolkit drops a ``--var`` the experiment does not declare, the
  environment always gets through.
- A token travels in an HTTP header, so it is printable ASCII without
  spaces; a blank one is refused rather than silently meaning "no token".
- A control plane bound beyond loopback needs a token of at least
  ``MIN_TOKEN_LENGTH`` characters (``chaosagenkit.api.check_bind``).
- A token goes to the origin it was given for and nowhere else: control
  clients never follow redirects (``chaosagenkit.control_client``).
- Error messages never show a token, only its length.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaosagenkit.exceptions import ConfigurationError

__all__ = [
    "MIN_TOKEN_LENGTH",
    "TOKEN_ENV",
    "bind_token_problem",
    "check_token",
    "client_token",
    "read_token_file",
    "token_from_options",
    "token_options",
]

#: The environment variable a daemon reads its token from (and the chaos run passes it in).
TOKEN_ENV = "CHAOSAGENKIT_TOKEN"
#: The shortest token a control plane reachable from other hosts accepts.
MIN_TOKEN_LENGTH = 16
_MAX_TOKEN_FILE_BYTES = 4096


def check_token(token: Any, field: str) -> str | None:
    """``token`` if usable, None when absent (None or ""); a blank or unsendable token is an error."""
    if token is None or token == "":
        return None
    if not isinstance(token, str):
        raise ConfigurationError(field, f"must be a string, got a {type(token).__name__}")
    if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        raise ConfigurationError(
            field,
            f"must be printable ASCII without spaces (it is sent in an HTTP header), "
            f"got a value of {len(token)} characters that is not",
        )
    return token


def client_token(configuration: dict[str, Any] | None, key: str) -> str | None:
    """The token for a control plane this run did not start: ``configuration[key]``, else the environment."""
    configured = (configuration or {}).get(key)
    if configured:
        return check_token(configured, key)
    return check_token(os.environ.get(TOKEN_ENV), f"${TOKEN_ENV}")


def bind_token_problem(token: str | None) -> str | None:
    """What a control plane bound beyond loopback lacks with ``token``, or None when it is enough."""
    if not token:
        return f"a token (--token-file, ${TOKEN_ENV} or --token)"
    if len(token) < MIN_TOKEN_LENGTH:
        return f"a token of at least {MIN_TOKEN_LENGTH} characters, got one of {len(token)}"
    return None


def read_token_file(path: Path, field: str = "--token-file") -> str:
    """The token in file ``path`` (surrounding whitespace and the final newline removed)."""
    try:
        with path.open("rb") as f:
            raw = f.read(_MAX_TOKEN_FILE_BYTES + 1)
    except OSError as e:
        raise ConfigurationError(field, f"cannot be read: {e.strerror or e}") from None
    if len(raw) > _MAX_TOKEN_FILE_BYTES:
        raise ConfigurationError(field, f"is larger than {_MAX_TOKEN_FILE_BYTES} bytes: not a token file")
    try:
        text = raw.decode().strip()
    except UnicodeDecodeError:
        raise ConfigurationError(field, "is not UTF-8 text") from None
    token = check_token(text, field)
    if token is None:
        raise ConfigurationError(field, f"is empty: {path}")
    return token


def token_options[F: Callable[..., Any]](command: F) -> F:
    """Add ``--token`` (also ``$CHAOSAGENKIT_TOKEN``) and ``--token-file`` to a click command."""
    import click  # only the two daemons' commands need click; activities use the rest of this module

    command = click.option(
        "--token-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="File holding the bearer token every control call must carry (safe: not shown by ps).",
    )(command)
    return click.option(
        "--token",
        envvar=TOKEN_ENV,
        default=None,
        help=f"Bearer token every control call must carry; ${TOKEN_ENV} or --token-file keep it out of "
        f"ps. Required, at least {MIN_TOKEN_LENGTH} characters, to listen beyond loopback.",
    )(command)


def token_from_options(token: str | None, token_file: Path | None) -> str | None:
    """The token of a daemon from its ``--token`` / ``$CHAOSAGENKIT_TOKEN`` / ``--token-file`` options.

    ``--token-file`` and ``--token`` together are an error; ``--token-file``
    wins over an inherited ``$CHAOSAGENKIT_TOKEN``.
    """
    import click  # see token_options
    from click.core import ParameterSource

    source = click.get_current_context().get_parameter_source("token")
    from_command_line = source == ParameterSource.COMMANDLINE
    if token_file is not None:
        if from_command_line:
            raise ConfigurationError("--token-file", "cannot be combined with --token: give one of them")
        return read_token_file(token_file)
    return check_token(token, "--token" if from_command_line else f"${TOKEN_ENV}")
