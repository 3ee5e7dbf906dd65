"""The one client of chaosagenkit's control planes: the chaos host, the fault proxy (or a real Toxiproxy).

Chaos Toolkit activities are synchronous, so they talk to control planes
through this small JSON client on the standard library: one request per
call, a bounded timeout, and errors that say which URL failed and why.

Rules kept here:

- A control URL is checked once, when a client is made (``check_control_url``):
  a malformed one is a one-line ``ConfigurationError``, never a raw ValueError.
- Names go into paths only through ``path``, which percent-escapes each
  segment: a name can never add a query, a fragment or another segment.
- The bearer token stays with its origin: redirects are never followed (a
  3xx answer is an error naming where it pointed), so no other host or port
  ever receives ``Authorization``.
- Control-plane traffic never goes through a proxy: ``$http_proxy`` is for
  the user's outbound traffic, not for our own control planes, and a proxy
  would see the token.
- A peer that answers, but not as a JSON control API (not HTTP, or a body
  that is not JSON), raises ``NotAControlAPI``.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit

from chaosagenkit.credentials import check_token
from chaosagenkit.exceptions import ConfigurationError, ControlAPIError, TargetError

__all__ = ["ControlClient", "NotAControlAPI", "check_control_url", "path"]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: it would carry the bearer token to wherever it points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


#: No proxies (ProxyHandler({}) ignores $http_proxy and friends), no redirects.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
_URL_EXAMPLE = "an http:// URL like http://127.0.0.1:8474"


class NotAControlAPI(TargetError):
    """A peer answered, but not as a JSON control API (wrong URL or port)."""


def check_control_url(value: Any, field: str) -> str:
    """``value`` as a control API's base URL (no trailing slash); a malformed one is a one-line error."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(field, f"must be {_URL_EXAMPLE}, got {value!r}")
    url = value.strip().rstrip("/")
    if not url.isascii() or not url.isprintable() or " " in url:
        raise ConfigurationError(field, f"must be {_URL_EXAMPLE} (ASCII, no spaces), got {value!r:.100}")
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises for a port that is not one
    except ValueError as e:
        raise ConfigurationError(field, f"is not a valid URL ({e}), got {value!r:.100}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError(field, f"must be {_URL_EXAMPLE}, got {value!r:.100}")
    if parts.query or parts.fragment or parts.username is not None:
        raise ConfigurationError(
            field, f"must be a base URL without user, query or fragment, got {value!r:.100}"
        )
    return url


def path(*segments: Any) -> str:
    """A URL path from segments, each percent-escaped: ``path("proxies", "x?y")`` is ``/proxies/x%3Fy``."""
    return "".join("/" + quote(str(segment), safe="") for segment in segments)


class ControlClient:
    """JSON over HTTP to one control plane at ``base_url`` (``http://127.0.0.1:8474``).

    ``field`` names where the URL came from, for the error a malformed one gets.
    """

    def __init__(
        self, base_url: str, token: str | None = None, timeout_s: float = 10.0, *, field: str = "url"
    ) -> None:
        self.base_url = check_control_url(base_url, field)
        self.token = check_token(token, "token")
        self.timeout_s = timeout_s

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request to ``path`` (build it with ``path()``); return the decoded JSON body.

        Returns None for an empty body. Raises ``ControlAPIError`` on an error
        status (with the server's own ``error`` text) or a redirect,
        ``NotAControlAPI`` when the answer is not HTTP or its body not JSON,
        and ``TargetError`` when the server cannot be reached.
        """
        if not path.startswith("/") or not path.isascii() or not path.isprintable() or " " in path:
            raise ConfigurationError("path", f"must be an escaped URL path (see path()), got {path!r:.100}")
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
            with e:
                raw = e.read()
            if 300 <= e.code < 400:
                where = e.headers.get("Location", "nowhere")
                raise ControlAPIError(
                    f"{method} {url}",
                    e.code,
                    f"a redirect to {where!r:.200}, which control clients never follow "
                    "(it would carry the token elsewhere): use the control API's own URL",
                ) from None
            try:
                error = json.loads(raw).get("error") or raw.decode(errors="replace")
            except (ValueError, AttributeError, RecursionError):
                error = raw.decode(errors="replace").strip() or e.reason
            raise ControlAPIError(f"{method} {url}", e.code, " ".join(str(error).split())[:300]) from None
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
