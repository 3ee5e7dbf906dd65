"""Agent endpoints of the chaos host, parsed without importing agenkit.

``tcp://HOST:PORT``, ``unix:///ABSOLUTE/PATH``, ``ws://HOST:PORT`` and
``http://HOST:PORT``: the schemes agenkit's ``LocalAgent`` and
``HTTPAgentServer`` serve. Port 0 asks for any free port.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from chaosagenkit.exceptions import ConfigurationError

__all__ = ["SCHEMES", "Endpoint", "default_endpoint", "parse_endpoint"]

SCHEMES = ("tcp", "unix", "ws", "http")


@dataclass(frozen=True)
class Endpoint:
    """Where the agent is served: ``tcp://HOST:PORT``, ``unix:///PATH``, ``ws://``, ``http://``."""

    scheme: str
    host: str = ""
    port: int = 0
    path: str = ""

    def url(self, port: int | None = None) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port if port is None else port}"


def parse_endpoint(value: str, option: str = "endpoint") -> Endpoint:
    """Parse an agent endpoint; a bad one raises ConfigurationError naming ``option``."""
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ConfigurationError(
            option, f"must start with one of {', '.join(s + '://' for s in SCHEMES)}, got {value!r}"
        )
    if scheme == "unix":
        if not rest.startswith("/"):
            raise ConfigurationError(option, f"must be unix:///ABSOLUTE/PATH, got {value!r}")
        return Endpoint("unix", path=rest)
    try:
        parts = urlsplit(f"//{rest}")
        host, port = parts.hostname, parts.port
    except ValueError as e:
        raise ConfigurationError(option, f"must be {scheme}://HOST:PORT, got {value!r}: {e}") from None
    if not host or port is None or parts.path not in ("", "/"):
        raise ConfigurationError(
            option, f"must be {scheme}://HOST:PORT (PORT 0 = any free port), got {value!r}"
        )
    return Endpoint(scheme, host=host, port=port)


def default_endpoint(transport: str, unix_dir: str = "") -> str:
    """The endpoint of ``transport`` on 127.0.0.1 with an ephemeral port (a socket in ``unix_dir``)."""
    if transport == "unix":
        return f"unix://{unix_dir.rstrip('/')}/agent.sock"
    return f"{transport}://127.0.0.1:0"
