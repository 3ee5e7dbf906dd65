"""The proxy's API stays responsive under any toxic: a one-byte slicer cannot starve it.

A one-byte slicer turns each read of the socket (up to 256 KiB) into as many
writes of one byte. A real ``chaosagenkit proxy`` carries an echo transfer
through such slicers on both streams while the test asks ``GET /version``
again and again: the answers must come while the transfer is still running
(not after it), each within a bound generous enough that only starvation
misses it.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections.abc import Iterator

import pytest

from chaosagenkit.network import daemons as process
from tests.integration.proxy_support import threaded_echo_server

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_network]

TRANSFER = 512 * 1024
ANSWERS_DURING_TRANSFER = 5
GENEROUS_S = 5.0  # an API answer slower than this means the API was starved


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    with threaded_echo_server() as address:
        yield address


def call(api: str, method: str, path: str, body: dict | None = None) -> dict | None:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{api}{path}", data=data, method=method)
    with urllib.request.urlopen(request, timeout=GENEROUS_S) as response:
        text = response.read()
    return json.loads(text) if text else None


class Transfer:
    """Send TRANSFER bytes through the proxy and read the echo back, in threads."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=120)
        self.received = 0
        self.done = threading.Event()
        self._threads = [
            threading.Thread(target=self._send, daemon=True),
            threading.Thread(target=self._receive, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _send(self) -> None:
        try:
            self.sock.sendall(b"x" * TRANSFER)
        except OSError:
            pass

    def _receive(self) -> None:
        try:
            while self.received < TRANSFER:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.received += len(chunk)
        except OSError:
            pass
        self.done.set()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for thread in self._threads:
            thread.join(30)


def test_the_api_answers_while_a_one_byte_slicer_carries_a_transfer(echo_server):
    daemon, ready = process.start_daemon(seed=1)
    api = ready["api"]
    try:
        proxy = call(
            api,
            "POST",
            "/proxies",
            {"name": "p", "listen": "127.0.0.1:0", "upstream": "{}:{}".format(*echo_server)},
        )
        for stream in ("upstream", "downstream"):
            call(
                api,
                "POST",
                "/proxies/p/toxics",
                {
                    "type": "slicer",
                    "stream": stream,
                    "attributes": {"average_size": 1, "size_variation": 0, "delay": 0},
                },
            )
        host, port = proxy["listen"].rsplit(":", 1)
        transfer = Transfer((host, int(port)))
        try:
            answered = 0
            while answered < ANSWERS_DURING_TRANSFER and not transfer.done.is_set():
                assert call(api, "GET", "/version")["implementation"] == "chaosagenkit"
                answered += 1
            received = transfer.received
            assert answered == ANSWERS_DURING_TRANSFER and not transfer.done.is_set(), (
                f"only {answered} API answers while the transfer ran"
            )
            assert received > 0, "the transfer had not started: this proves nothing"
            stats = call(api, "GET", "/proxies/p/stats")
            assert stats["toxics"]["slicer_downstream"]["acted"] > 0
        finally:
            transfer.close()
    finally:
        process.stop_daemon(daemon)
