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

from chaosagenkit.control_client import ControlClient, NotAControlAPI
from chaosagenkit.exceptions import TargetError
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

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


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
