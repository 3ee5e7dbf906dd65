"""A small synchronous JSON client for chaosagenkit's control planes.

Chaos Toolkit activities are synchronous, so they talk to the chaos host and
the fault proxy (or a real Toxiproxy) through this client, built on the
standard library: one request per call, a bounded timeout, and errors that
say which URL failed and why.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from chaosagenkit.exceptions import ControlAPIError, TargetError

__all__ = ["ControlClient"]


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
        ``error`` text) and ``TargetError`` when the server cannot be reached.
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
            with urllib.request.urlopen(req, timeout=self.timeout_s) as response:  # noqa: S310
                return _decode(response.read())
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                error = json.loads(raw).get("error") or raw.decode(errors="replace")
            except (ValueError, AttributeError):
                error = raw.decode(errors="replace").strip() or e.reason
            raise ControlAPIError(f"{method} {url}", e.code, str(error)) from None
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            raise TargetError(f"cannot reach {url}: {reason}") from e


def _decode(raw: bytes) -> Any:
    if not raw.strip():
        return None
    return json.loads(raw)
