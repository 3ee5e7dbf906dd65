"""ControlClient against peers that are not what it expects, and never through a proxy.

The peers are real sockets on 127.0.0.1 (ephemeral ports) served from
threads of this process: a JSON endpoint, a web page, a service that does
not speak HTTP, and a would-be proxy that must never be contacted.
"""

from __future__ import annotations

import http.server
import json
import os
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from chaosagenkit.control_client import ControlClient, NotAControlAPI, path
from chaosagenkit.exceptions import ConfigurationError, ControlAPIError, TargetError
from tests.integration.test_service_support import REPO


@contextmanager
def http_peer(content_type: str, body: bytes) -> Iterator[str]:
    """An HTTP server answering every GET with ``body``; yields its base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with _serving(Handler) as url:
        yield url


@contextmanager
def not_http_peer() -> Iterator[str]:
    """A TCP service that answers any request with bytes that are not HTTP."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)  # so the loop sees ``done`` (closing does not wake accept())
    done = threading.Event()

    def answer() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                conn.recv(4096)
                conn.sendall(b'\x00\x00\x00\x10{"not": "http"}\n')

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        thread.join(timeout=10)
        listener.close()


def test_a_json_peer_is_read():
    with http_peer("application/json", b'{"status": "ok"}') as url:
        assert ControlClient(url).get("/health") == {"status": "ok"}


@pytest.mark.parametrize(
    "body,words",
    [
        (b"<html>hello</html>", "answered a body that is not JSON"),
        (b"\xff\xfe\x00", "answered a body that is not JSON"),
    ],
)
def test_a_body_that_is_not_json_is_a_target_error(body, words):
    with http_peer("text/html", body) as url, pytest.raises(NotAControlAPI) as caught:
        ControlClient(url).get("/health")
    assert isinstance(caught.value, TargetError)
    assert words in str(caught.value) and f"GET {url}/health" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_peer_that_does_not_speak_http_is_a_target_error():
    with (
        not_http_peer() as url,
        pytest.raises(NotAControlAPI, match="did not get an HTTP answer: BadStatusLine"),
    ):
        ControlClient(url, timeout_s=5).get("/health")


def test_nobody_listening_is_unreachable_not_a_wrong_peer():
    with socket.create_server(("127.0.0.1", 0)) as spare:
        port = spare.getsockname()[1]
    with pytest.raises(TargetError, match="cannot reach") as caught:
        ControlClient(f"http://127.0.0.1:{port}", timeout_s=5).get("/health")
    assert not isinstance(caught.value, NotAControlAPI)


PROXIED_CALL = """
import json, sys
from chaosagenkit.control_client import ControlClient
print(json.dumps(ControlClient(sys.argv[1], token="s3cret", timeout_s=5).get("/health")))
"""


def test_control_traffic_ignores_http_proxy():
    # A fresh interpreter: urllib reads $http_proxy once per process, so this
    # process's earlier requests must not decide the outcome.
    proxy = socket.create_server(("127.0.0.1", 0))
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy", "all_proxy")}
    proxy_url = f"http://127.0.0.1:{proxy.getsockname()[1]}"
    env.update(http_proxy=proxy_url, HTTP_PROXY=proxy_url, all_proxy=proxy_url)
    try:
        with http_peer("application/json", b'{"status": "ok"}') as url:
            done = subprocess.run(
                [sys.executable, "-c", PROXIED_CALL, url],
                capture_output=True,
                text=True,
                env=env,
                cwd=REPO,
                timeout=60,
            )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"status": "ok"}
        readable, _, _ = select.select([proxy], [], [], 0)
        assert readable == [], "the control request (and its token) went to the proxy"
    finally:
        proxy.close()


# -- credentials stay with their host -------------------------------------------------


@contextmanager
def header_recorder() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """An HTTP server that answers every request with JSON and records its headers."""
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self) -> None:
            seen.append(dict(self.headers))
            body = b'{"status": "ok"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = answer

        def log_message(self, *args: object) -> None:
            pass

    with _serving(Handler) as url:
        yield url, seen


@contextmanager
def redirector(status: int, target: str) -> Iterator[str]:
    """An HTTP server that answers every request with ``status`` pointing at ``target``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.send_response(status)
            self.send_header("Location", f"{target}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_DELETE = answer

        def log_message(self, *args: object) -> None:
            pass

    with _serving(Handler) as url:
        yield url


@contextmanager
def _serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_a_redirect_to_another_port_never_receives_the_token(status, method):
    with header_recorder() as (elsewhere, seen), redirector(status, elsewhere) as control:
        client = ControlClient(control, token="t0ken-of-the-control-host", timeout_s=5)
        with pytest.raises(ControlAPIError) as caught:
            client.request(method, "/faults", {"kind": "delay"} if method == "POST" else None)
    assert seen == [], "the redirect was followed"
    assert caught.value.status == status
    assert f"a redirect to '{elsewhere}/faults', which control clients never follow" in str(caught.value)
    assert "t0ken" not in str(caught.value) and "\n" not in str(caught.value)


def test_the_recorder_does_see_a_direct_request_and_its_token():
    # The check above can fail: the same recorder, called directly, gets the header.
    with header_recorder() as (url, seen):
        assert ControlClient(url, token="t0ken-of-the-control-host").get("/health") == {"status": "ok"}
    assert seen[0]["Authorization"] == "Bearer t0ken-of-the-control-host"


# -- URLs and paths ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url,words",
    [
        ("http://[::1", "is not a valid URL (Invalid IPv6 URL)"),
        ("http://127.0.0.1:99999", "is not a valid URL (Port out of range"),
        ("http://127.0.0.1:port", "is not a valid URL (Port could not be cast"),
        ("ftp://127.0.0.1:21", "must be an http:// URL like http://127.0.0.1:8474"),
        ("http://", "must be an http:// URL"),
        ("", "must be an http:// URL"),
        (None, "must be an http:// URL"),
        ("http://héllo:80", "(ASCII, no spaces)"),
        ("http://127.0.0.1:80/?x=1", "without user, query or fragment"),
        ("http://user:pw@127.0.0.1:80", "without user, query or fragment"),
    ],
)
def test_a_malformed_control_url_is_a_one_line_configuration_error(url, words):
    with pytest.raises(ConfigurationError) as caught:
        ControlClient(url, field="toxiproxy_url")
    assert str(caught.value).startswith("'toxiproxy_url' ") and words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_path_escapes_every_segment():
    assert path("proxies", "x?y", "toxics", "a/b#c") == "/proxies/x%3Fy/toxics/a%2Fb%23c"
    assert path("proxies", "héllo") == "/proxies/h%C3%A9llo"
    assert path("proxies", "..") == "/proxies/.."  # names.py refuses such a name before it gets here


def test_a_raw_path_that_is_not_escaped_is_refused_before_sending():
    with header_recorder() as (url, seen):
        for raw in ("/proxies/héllo", "/proxies/x y", "proxies"):
            with pytest.raises(ConfigurationError, match="'path' must be an escaped URL path"):
                ControlClient(url).get(raw)
    assert seen == []


def test_an_unsendable_token_is_refused_without_showing_it():
    with pytest.raises(ConfigurationError) as caught:
        ControlClient("http://127.0.0.1:1", token="sécret token")
    assert "sécret" not in str(caught.value) and "12 characters" in str(caught.value)
