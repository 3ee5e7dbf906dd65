"""The proxy daemon as a process: what the control starts, registers and tears down."""

from __future__ import annotations

import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosagenkit.control_client import ControlClient
from chaosagenkit.exceptions import ConfigurationError, ControlAPIError, TargetError
from chaosagenkit.network import daemons
from chaosagenkit.sandbox import SANDBOX, ServerRef
from tests.integration.proxy_support import threaded_echo_server

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_network]


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    """A plain TCP echo server (threads: the test itself is synchronous)."""
    with threaded_echo_server() as address:
        yield address


@pytest.fixture
def sandbox() -> Iterator[None]:
    SANDBOX.reset()
    SANDBOX.seed = 1234
    yield
    daemons.teardown()
    SANDBOX.reset()


def _round_trip(listen: str, payload: bytes) -> bytes:
    if listen.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(10)
        sock.connect(listen.removeprefix("unix:"))
    else:
        host, port = listen.rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=10)
    with sock:
        sock.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def test_control_starts_a_daemon_declares_a_proxy_and_tears_everything_down(sandbox, echo_server):
    host, port = echo_server
    SANDBOX.servers["target"] = ServerRef("target", f"tcp://{host}:{port}", "http://127.0.0.1:1")
    daemon = daemons.start_or_register_daemon({}, {})
    assert daemon.process is not None and daemon.process.poll() is None
    ref = daemons.declare_proxy_from_spec({"name": "target_proxy", "upstream": "server:target"})
    assert ref.upstream == f"{host}:{port}"
    assert not ref.listen.endswith(":0"), "the bound address is recorded, not port 0"
    assert _round_trip(ref.listen, b"through the proxy") == b"through the proxy"

    client, name = daemons.resolve_proxy("target_proxy", {})
    assert client.get(f"/proxies/{name}")["upstream"] == f"{host}:{port}"
    assert client.get("/seed")["seed"] == SANDBOX.component_seed("proxy:proxy")

    daemons.teardown()
    assert daemon.process.returncode is not None
    assert not SANDBOX.proxies and not SANDBOX.proxy_daemons
    events = [(e["event"], e["target"]) for e in SANDBOX.timeline()]
    assert events == [("start", "proxy"), ("clear", "target_proxy"), ("stop", "proxy")]
    daemons.teardown()  # idempotent


def test_an_external_api_is_registered_not_started_and_its_proxies_are_deleted(sandbox, echo_server):
    proc, ready = daemons.start_daemon(seed=3)
    try:
        daemon = daemons.start_or_register_daemon({"name": "shared"}, {"toxiproxy_url": ready["api"]})
        assert daemon.process is None and daemon.url == ready["api"]
        api = ControlClient(ready["api"])
        run_seed = SANDBOX.component_seed("proxy:shared")
        assert api.get("/seed")["seed"] == run_seed != 3, (
            "the run's seed drives an external daemon of ours too"
        )
        (seed_event,) = [e for e in SANDBOX.timeline() if e["event"] == "seed"]
        assert (seed_event["target"], seed_event["detail"]["seed"]) == ("shared", run_seed)
        api.post("/proxies", {"name": "leftover", "upstream": "127.0.0.1:9", "listen": "127.0.0.1:0"})
        ref = daemons.declare_proxy_from_spec(
            {"name": "leftover", "upstream": f"{echo_server[0]}:{echo_server[1]}"}
        )
        assert api.get("/proxies/leftover")["upstream"] == ref.upstream, "an old proxy is replaced"
        daemons.teardown()
        assert proc.poll() is None, "an external daemon is left running"
        with pytest.raises(ControlAPIError) as info:
            api.get("/proxies/leftover")
        assert info.value.status == 404
    finally:
        daemons.stop_daemon(proc)


def test_an_unreachable_external_api_fails_before_the_run(sandbox):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free_port = sock.getsockname()[1]
    with pytest.raises(TargetError, match="cannot reach"):
        daemons.start_or_register_daemon({"url": f"http://127.0.0.1:{free_port}"}, {})
    assert not SANDBOX.proxy_daemons


@pytest.mark.parametrize(
    "spec,message",
    [
        ({"upstream": "127.0.0.1:1"}, "every proxy needs a name"),
        ({"name": "p"}, "'upstream' is missing"),
        ({"name": "p", "upstream": "server:nope"}, "unknown server 'nope'"),
        ({"name": "p", "upstream": "127.0.0.1:0"}, "needs a port"),
        ({"name": "p", "upstream": "127.0.0.1:80", "daemon": "nope"}, "unknown proxy daemon"),
    ],
)
def test_bad_proxy_specs_are_refused_with_one_clear_line(sandbox, spec, message):
    with pytest.raises(ConfigurationError, match=message):
        daemons.declare_proxy_from_spec(spec)


class _UnixEcho(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


def test_a_unix_server_is_proxied_on_tcp_and_on_a_unix_listener(sandbox, tmp_path):
    upstream_path = str(tmp_path / "agent.sock")
    server = socketserver.ThreadingUnixStreamServer(upstream_path, _UnixEcho)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        SANDBOX.servers["u"] = ServerRef("u", f"unix://{upstream_path}", "http://127.0.0.1:1")
        daemons.start_or_register_daemon({}, {})
        ref = daemons.declare_proxy_from_spec({"name": "p", "upstream": "server:u"})
        assert ref.upstream == f"unix:{upstream_path}"
        assert _round_trip(ref.listen, b"tcp in front of unix") == b"tcp in front of unix"
        listen_path = str(tmp_path / "proxy.sock")
        ref = daemons.declare_proxy_from_spec(
            {"name": "q", "upstream": "server:u", "listen": f"unix:{listen_path}"}
        )
        assert ref.listen == f"unix:{listen_path}"
        assert _round_trip(ref.listen, b"unix in front of unix") == b"unix in front of unix"
        daemons.teardown()
        assert not os.path.exists(listen_path), "the proxy removes its socket file"
    finally:
        server.shutdown()
        server.server_close()


def test_the_cli_refuses_a_public_api_without_a_token():
    result = subprocess.run(
        [sys.executable, "-m", "chaosagenkit", "proxy", "--listen", "0.0.0.0:0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "not a loopback address" in result.stderr and "--token" in result.stderr


def test_the_cli_populates_proxies_from_a_config_file_and_stops_on_sigterm(tmp_path: Path, echo_server):
    config = tmp_path / "proxies.json"
    upstream = f"{echo_server[0]}:{echo_server[1]}"
    config.write_text(json.dumps([{"name": "from_file", "upstream": upstream, "listen": "127.0.0.1:0"}]))
    proc, ready = daemons.start_daemon(config_path=str(config), seed=9, loop="asyncio")
    try:
        assert ready["seed"] == 9 and ready["pid"] == proc.pid and ready["loop"] == "asyncio"
        assert _round_trip(ready["proxies"]["from_file"], b"x" * 1000) == b"x" * 1000
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        daemons.stop_daemon(proc)


def test_a_bad_config_file_is_a_one_line_error(tmp_path: Path):
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "x"}]))
    result = subprocess.run(
        [sys.executable, "-m", "chaosagenkit", "proxy", "--listen", "127.0.0.1:0", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "missing required field: upstream" in result.stderr


# Exit-with-parent (also while starting, also with a blocked event loop): tests/integration/
# test_supervisor.py, for the proxy and the chaos host alike.
