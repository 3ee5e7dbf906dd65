"""Where a proxy listens and where it forwards: ``HOST:PORT``, or ``unix:/path`` (ours).

Toxiproxy's proxy JSON knows only ``HOST:PORT``. chaosagenkit also takes a
unix socket on either side, written ``unix:`` followed by an absolute path
(``"listen": "unix:/run/agent.sock"``, ``"upstream": "unix:/tmp/a.sock"``),
so a proxy can sit in front of an agent served on ``unix://`` and a unix
listener can front anything. A value without the ``unix:`` prefix is
parsed exactly as before, so Toxiproxy clients see no change.

A unix listener never takes a path that is in use: a path that exists and
is not a socket, or a socket something answers on, is refused; a socket
file nothing answers on (left by a killed process) is replaced. The proxy
removes its socket file when it stops listening.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from dataclasses import dataclass

from chaosagenkit.api import parse_host_port
from chaosagenkit.exceptions import ConfigurationError

__all__ = [
    "UNIX_PREFIX",
    "Address",
    "TcpAddress",
    "UnixAddress",
    "check_unix_listen_path",
    "format_address",
    "parse_address",
]

UNIX_PREFIX = "unix:"
#: sun_path holds 108 bytes on Linux, including the terminating NUL.
MAX_UNIX_PATH = 107


def format_address(host: str, port: int) -> str:
    """``host:port``, with brackets around an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class TcpAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return format_address(self.host, self.port)


@dataclass(frozen=True, slots=True)
class UnixAddress:
    path: str

    def __str__(self) -> str:
        return UNIX_PREFIX + self.path


Address = TcpAddress | UnixAddress


def parse_address(value: str, field: str) -> Address:
    """``unix:/absolute/path`` or ``HOST:PORT`` (port 0 allowed: the caller decides)."""
    text = value.strip()
    if not text.startswith(UNIX_PREFIX):
        host, port = parse_host_port(text, field)
        return TcpAddress(host, port)
    path = text.removeprefix(UNIX_PREFIX)
    if path.startswith("//"):  # agenkit writes unix:///path
        path = path[2:]
    if not path.startswith("/"):
        raise ConfigurationError(field, f"must be unix:/ABSOLUTE/PATH, got {value!r}")
    if "\x00" in path or len(os.fsencode(path)) > MAX_UNIX_PATH:
        raise ConfigurationError(
            field, f"must be a path of at most {MAX_UNIX_PATH} bytes without NUL, got {value!r}"
        )
    return UnixAddress(os.path.normpath(path))


def check_unix_listen_path(path: str) -> None:
    """Raise ``OSError(EADDRINUSE)`` unless a unix listener may take ``path``.

    asyncio removes any socket file at the path before binding, even one a
    live server listens on: this check keeps the proxy from stealing it.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(errno.EADDRINUSE, "the path exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return  # a socket file nobody listens on: stale, asyncio replaces it
    except OSError:
        pass  # no permission, timeout...: treat as in use
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, "another process listens on this socket")
