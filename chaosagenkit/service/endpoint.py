"""Agent endpoints of the chaos host, parsed without importing agenkit.

``tcp://HOST:PORT``, ``unix:///ABSOLUTE/PATH``, ``ws://HOST:PORT``,
``http://HOST:PORT``, ``h2c://HOST:PORT`` and ``grpc://HOST:PORT``: the six
schemes agenkit both serves (``LocalAgent``, ``HTTPAgentServer``,
``GRPCServer``) and calls (``RemoteAgent``). Port 0 asks for any free port.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from chaosagenkit.exceptions import ConfigurationError

__all__ = ["SCHEMES", "TRANSPORT_LIMITS", "Endpoint", "default_endpoint", "parse_endpoint"]

SCHEMES = ("tcp", "unix", "ws", "http", "h2c", "grpc")
#: What agenkit itself cannot do on a transport, one line each (in the host's ready line
#: and health as ``transport_limits``; evidence in docs/FINDINGS-transports.md).
TRANSPORT_LIMITS = {
    "h2c": "h2c:// is HTTP/1.1 on the wire: agenkit's HTTPAgentServer(enable_http2=True) cannot "
    "speak HTTP/2 (aiohttp has none) and its h2c:// client (httpx without TLS) sends HTTP/1.1",
    "grpc": "grpc:// refuses answers above 4 MiB (gRPC's default receive limit, kept by agenkit) "
    "and turns metadata values into strings and JSON-looking content into JSON values",
}


@dataclass(frozen=True)
class Endpoint:
    """Where the agent is served: ``unix:///PATH`` or ``SCHEME://HOST:PORT`` (tcp, ws, http, h2c, grpc)."""

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
