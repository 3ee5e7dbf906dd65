"""The network activities as Chaos Toolkit calls them: checks first, timeline, expiry, probes."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosagenkit.control_client import ControlClient
from chaosagenkit.exceptions import TargetError
from chaosagenkit.network import actions, daemons, expiry, probes
from chaosagenkit.sandbox import SANDBOX
from tests.polling import wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_network]


@pytest.fixture
def run() -> Iterator[ControlClient]:
    """A run's sandbox with a started proxy daemon and one proxy 'edge' to a listening socket."""
    SANDBOX.reset()
    SANDBOX.seed = 99
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    daemon = daemons.start_or_register_daemon({}, {})
    actions.create_proxy("edge", f"127.0.0.1:{listener.getsockname()[1]}")
    yield ControlClient(daemon.url)
    daemons.teardown()
    SANDBOX.reset()
    listener.close()


def test_injecting_records_the_fault_and_returns_toxiproxys_json(run):
    toxic = actions.inject_latency("edge", 250, jitter_ms=10, stream="upstream")
    assert toxic["name"] == "latency_upstream" and toxic["attributes"] == {"latency": 250, "jitter": 10}
    assert probes.list_toxics("edge") == [toxic]
    inject = [e for e in SANDBOX.timeline() if e["event"] == "inject"][-1]
    assert (inject["target"], inject["kind"], inject["id"]) == ("edge", "latency", "latency_upstream")
    assert actions.remove_toxic("edge", "latency_upstream") is True
    assert actions.remove_toxic("edge", "latency_upstream") is False, "already gone is not an error"
    assert SANDBOX.timeline()[-1]["event"] == "clear"


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: actions.inject_latency("edge", -5), "inject_latency: 'latency_ms' must be >= 0, got -5"),
        (
            lambda: actions.inject_latency("edge", 10, stream="both"),
            "'stream' must be one of upstream, downstream",
        ),
        (
            lambda: actions.inject_latency("edge", 10, toxicity=2.0),
            "'toxicity' must be between 0 and 1, got 2.0",
        ),
        (lambda: actions.inject_latency("edge", 10, duration_s=-1), "'duration_s' must be"),
        (lambda: actions.inject_latency("edge", 10, duration_s=0), "'duration_s' must be > 0, got 0"),
        (lambda: actions.disable_proxy("edge", duration_s=0), "'duration_s' must be > 0, got 0"),
        (lambda: actions.inject_bandwidth_limit("edge", 1.5), "'rate_kbps' must be an integer"),
        (lambda: actions.drop_connections("edge", mode="explode"), "'mode' must be one of reset, cut"),
        (lambda: actions.inject_packet_loss("edge", 1.2), "'loss_rate' must be between 0 and 1"),
        (lambda: actions.inject_malformed_payload("edge", kind="bad"), "'kind' must be one of invalid_json"),
        (
            lambda: actions.add_toxic("edge", "slicer", {"average_size": 0}),
            "add_toxic: 'average_size' must be >= 1",
        ),
        (lambda: actions.add_toxic("edge", "latency", {"latancy": 1}), "'latancy' is not an attribute"),
        (lambda: actions.add_toxic("edge", "warp"), "'type' must be one of"),
        (lambda: actions.inject_latency("", 10), "'proxy' must be a name of 1 to 64"),
        (lambda: actions.inject_latency("nowhere", 10), "proxy not found: nowhere"),
        (lambda: actions.create_proxy("x", "server:none"), "unknown server 'none'"),
    ],
)
def test_bad_arguments_fail_with_one_line_before_anything_changes(run, call, message):
    before = len(SANDBOX.timeline())
    with pytest.raises(ActivityFailed) as info:
        call()
    assert message in str(info.value) and "\n" not in str(info.value)
    assert probes.list_toxics("edge") == []
    assert len(SANDBOX.timeline()) == before


def test_a_fault_with_a_duration_expires_by_itself(run):
    actions.inject_timeout("edge", duration_s=0.5, name="short")
    assert [t["name"] for t in probes.list_toxics("edge")] == ["short"]
    wait_for(lambda: probes.list_toxics("edge") == [])
    inject = [e for e in SANDBOX.timeline() if e["event"] == "inject"][-1]
    assert inject["duration_s"] == 0.5


def test_a_disabled_proxy_comes_back_after_its_duration_by_the_daemons_own_timer(run):
    assert actions.disable_proxy("edge", duration_s=0.5)["enabled"] is False
    assert expiry.pending() == [], "our daemon keeps the TTL: nothing here has to survive"
    wait_for(lambda: run.get("/proxies/edge")["enabled"])
    disable = SANDBOX.timeline()[-1]
    assert (disable["event"], disable["target"], disable["duration_s"]) == ("disable", "edge", 0.5)


def test_traffic_impacted_is_true_only_when_the_toxic_met_traffic(run):
    actions.add_toxic("edge", "latency", {"latency": 1}, stream="upstream", name="tiny")
    assert probes.traffic_impacted("edge", "tiny") is False, "no client went through the proxy yet"
    host, port = run.get("/proxies/edge")["listen"].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as client:
        client.sendall(b"ping")
        wait_for(lambda: probes.proxy_stats("edge")["upstream"]["sent"] == 4)
    assert probes.traffic_impacted("edge", "tiny") is True
    actions.remove_toxic("edge", "tiny")
    assert probes.traffic_impacted("edge", "tiny") is True, "counters outlive the toxic"
    assert probes.traffic_impacted("edge", "never_added") is False


def test_drop_connections_and_extension_toxics_map_to_the_right_toxics(run):
    assert actions.drop_connections("edge", mode="reset", timeout_ms=5)["type"] == "reset_peer"
    assert actions.drop_connections("edge", mode="cut", after_bytes=10, stream="upstream")["attributes"] == {
        "bytes": 10
    }
    loss = actions.inject_packet_loss("edge", 0.2, correlation=0.5, name="lossy")
    assert loss["attributes"]["loss_rate"] == 0.2 and loss["attributes"]["rto"] == 200
    bad = actions.inject_malformed_payload("edge", kind="truncated", rate=0.25)
    assert bad["type"] == "malformed_frame" and bad["toxicity"] == 0.25
    assert actions.reset_proxies() is True
    assert probes.list_toxics("edge") == []


def test_reset_proxies_closes_every_fault_window_of_the_proxies_it_reset(run):
    from chaosagenkit.report.windows import fault_windows

    actions.create_proxy("second", "127.0.0.1:9")
    actions.inject_latency("edge", 10, name="slow")
    actions.disable_proxy("second", duration_s=300)
    assert actions.reset_proxies() is True
    events = [(e["event"], e["target"]) for e in SANDBOX.timeline() if e["event"] in ("clear", "enable")]
    assert sorted(events) == [("clear", "edge"), ("clear", "second"), ("enable", "second")]
    windows = fault_windows(SANDBOX.timeline(), run_end=time.time() + 3600)
    assert sorted((w.target, w.ended_by) for w in windows) == [("edge", "cleared"), ("second", "enabled")]


def test_proxies_created_by_actions_are_deleted_at_teardown(run):
    created = actions.create_proxy("extra", "127.0.0.1:9")
    assert SANDBOX.proxies["extra"].listen == created["listen"]
    daemon_url = run.base_url
    daemons.teardown()
    assert SANDBOX.proxies == {}
    with pytest.raises(TargetError):
        ControlClient(daemon_url, timeout_s=2).get("/version")  # the daemon was stopped too


class _ToxiproxyStandIn(BaseHTTPRequestHandler):
    """A stand-in for a real Toxiproxy (not installable here): its /version and toxic routes only.

    A fake, because the test must show what our activities send to a server that is NOT
    chaosagenkit's proxy, and no real Toxiproxy binary can be installed on this machine.
    """

    calls: list[tuple[str, str]] = []
    bodies: list[tuple[str, dict]] = []

    def do_GET(self):
        self.calls.append(("GET", self.path))
        self._reply(200, {"version": "2.9.0"} if self.path == "/version" else [])

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        self.calls.append(("POST", self.path))
        self.bodies.append((self.path, body))
        self._reply(200, body)

    def do_DELETE(self):
        self.calls.append(("DELETE", self.path))
        self.send_response(204)
        self.end_headers()

    def _reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_against_another_toxiproxy_server_only_its_own_toxics_are_sent():
    SANDBOX.reset()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ToxiproxyStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _ToxiproxyStandIn.calls = []
    configuration = {"toxiproxy_host": "127.0.0.1", "toxiproxy_port": server.server_address[1]}
    try:
        toxic = actions.inject_latency("db", 100, configuration=configuration)
        assert toxic["type"] == "latency"
        assert ("POST", "/proxies/db/toxics") in _ToxiproxyStandIn.calls
        calls_before = list(_ToxiproxyStandIn.calls)
        for call in (
            lambda: actions.inject_packet_loss("db", 0.1, configuration=configuration),
            lambda: actions.inject_malformed_payload("db", configuration=configuration),
            lambda: probes.proxy_stats("db", configuration=configuration),
        ):
            with pytest.raises(ActivityFailed, match=r"needs? chaosagenkit.s proxy"):
                call()
        # no counters there: the evidence comes from the run's clients, and this run has none
        assert probes.traffic_impacted("db", "latency_downstream", configuration=configuration) is False
        assert [c for c in _ToxiproxyStandIn.calls if c[0] == "POST"] == [
            c for c in calls_before if c[0] == "POST"
        ], "nothing was sent that the server does not understand"
    finally:
        expiry.cancel_all()  # the latency's TTL timer (a run's teardown does this)
        server.shutdown()
        server.server_close()
        SANDBOX.reset()


def test_against_another_server_one_client_timer_per_fault_replaced_and_cancelled():
    SANDBOX.reset()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ToxiproxyStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _ToxiproxyStandIn.calls, _ToxiproxyStandIn.bodies = [], []
    configuration = {"toxiproxy_url": f"http://127.0.0.1:{server.server_address[1]}"}
    url = configuration["toxiproxy_url"]
    try:
        SANDBOX.seed = 5
        daemons.start_or_register_daemon({"url": url}, {})
        assert ("POST", "/seed") not in _ToxiproxyStandIn.calls, "a real Toxiproxy has no seed route"
        SANDBOX.proxy_daemons.clear()
        actions.disable_proxy("db", duration_s=60, configuration=configuration)
        actions.disable_proxy("db", duration_s=120, configuration=configuration)
        assert expiry.pending() == [(url, "db", "")], "the second disable replaced the first timer"
        assert ("/proxies/db", {"enabled": False}) in _ToxiproxyStandIn.bodies, (
            "Toxiproxy gets its own JSON only"
        )
        actions.enable_proxy("db", configuration=configuration)
        assert expiry.pending() == [], "enabling cancels the re-enable timer"
        actions.inject_latency("db", 10, duration_s=60, name="slow", configuration=configuration)
        actions.inject_latency("db", 10, duration_s=60, name="slow", configuration=configuration)
        assert expiry.pending() == [(url, "db", "slow")]
        actions.remove_toxic("db", "slow", configuration=configuration)
        assert expiry.pending() == []
        actions.disable_proxy("db", duration_s=0.2, configuration=configuration)
        wait_for(lambda: _ToxiproxyStandIn.bodies[-1] == ("/proxies/db", {"enabled": True}))
        assert expiry.pending() == []
    finally:
        expiry.cancel_all()
        server.shutdown()
        server.server_close()
        SANDBOX.reset()


def test_faults_expire_by_default_after_the_safety_ttl(run):
    from chaosagenkit.network.actions import DEFAULT_TTL_S

    toxic = actions.inject_latency("edge", 10, name="ttl")
    assert toxic["duration_s"] == DEFAULT_TTL_S == 300.0
    assert SANDBOX.timeline()[-1]["duration_s"] == DEFAULT_TTL_S
    actions.remove_toxic("edge", "ttl")


def test_a_disabled_proxy_is_enabled_again_by_the_enable_action(run):
    assert actions.disable_proxy("edge")["enabled"] is False
    assert actions.enable_proxy("edge")["enabled"] is True
    assert [e["event"] for e in SANDBOX.timeline()[-2:]] == ["disable", "enable"]
    assert SANDBOX.timeline()[-2]["duration_s"] == 300.0
