"""A small synchronous JSON client for chaosagenkit's control planes.

Chaos Toolkit activities are synchronous, so they talk to the chaos host and
the fault proxy (or a real Toxiproxy) through this client, built on the
standard library: one request per call, a bounded timeout, and errors that
say which URL failed and why.

Control-plane traffic never goes through a proxy: ``$http_proxy`` is for the
user's outbound traffic, not for our own loopback control planes, and a proxy
would see the bearer token. A peer that answers, but not as a JSON control
API (not HTTP, or a body that is not JSON), raises ``NotAControlAPI``.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any

from chaosagenkit.exceptions import ControlAPIError, TargetError

__all__ = ["ControlClient", "NotAControlAPI"]

#: An opener without proxies: ProxyHandler({}) ignores $http_proxy and friends.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class NotAControlAPI(TargetError):
    """A peer answered, but not as a JSON control API (wrong URL or port)."""


class ControlClient:
    """JSON over HTTP to one control plane at ``base_url`` (``http://127.0.0.1:8474``)."""

    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body)

    def patch(self, path: str, body: Any = None) -> Any:
        return self.request("PATCH", path, body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request; return the decoded JSON body (None when empty).

        Raises ``ControlAPIError`` on an error status (with the server's own
        ``error`` text), ``NotAControlAPI`` when the answer is not HTTP or its
        body not JSON, and ``TargetError`` when the server cannot be reached.
        """
        url = f"{self.base_url}{path}"
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with _OPENER.open(req, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                error = json.loads(raw).get("error") or raw.decode(errors="replace")
            except (ValueError, AttributeError, RecursionError):
                error = raw.decode(errors="replace").strip() or e.reason
            raise ControlAPIError(f"{method} {url}", e.code, str(error)) from None
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            raise TargetError(f"cannot reach {url}: {reason}") from e
        except http.client.HTTPException as e:  # BadStatusLine & co: something that is not HTTP
            raise NotAControlAPI(f"{method} {url} did not get an HTTP answer: {type(e).__name__}: {e}") from e
        return _decode(raw, f"{method} {url}")


def _decode(raw: bytes, request: str) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        start = raw[:60].decode(errors="replace")
        raise NotAControlAPI(f"{request} answered a body that is not JSON ({e}): {start!r}") from None
