"""The published chaostoolkit-toxiproxy extension, unchanged, against chaosagenkit's proxy.

It reads the API from configuration (``toxiproxy_url``, or ``toxiproxy_host``
and ``toxiproxy_port``), creates proxies with Toxiproxy's JSON, and expects
Toxiproxy's answers; nothing here adapts it.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from chaoslib.experiment import run_experiment
from chaostoxi.proxy import actions as proxy_actions
from chaostoxi.proxy import probes as proxy_probes
from chaostoxi.toxic import actions as toxic_actions

from chaosagenkit.control_client import ControlClient
from chaosagenkit.network import daemons

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_network]


@pytest.fixture(scope="module")
def daemon() -> Iterator[dict]:
    proc, ready = daemons.start_daemon()
    yield ready
    daemons.stop_daemon(proc)


@pytest.fixture
def upstream() -> Iterator[socket.socket]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    yield listener
    listener.close()


def round_trip_time(port: int, upstream: socket.socket) -> float:
    """Send one byte through the proxy; time until the upstream answers it back."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(b"?")
        accepted, _ = upstream.accept()
        with accepted:
            assert accepted.recv(1) == b"?"
            accepted.sendall(b"!")
            assert client.recv(1) == b"!"
    return time.perf_counter() - started


def test_the_extensions_actions_and_probes_work_unchanged(daemon, upstream):
    host, port = daemon["api"].removeprefix("http://").rsplit(":", 1)
    configuration = {"toxiproxy_host": host, "toxiproxy_port": int(port)}
    upstream_port = upstream.getsockname()[1]
    try:
        assert (
            proxy_actions.create_proxy(
                "ctk", "127.0.0.1", upstream_port, listen_host="127.0.0.1", configuration=configuration
            )
            is True
        )
        listen_port = int(configuration["ctk_PORT"])
        assert listen_port > 0
        assert proxy_probes.proxy_exist("ctk", configuration=configuration) is True
        assert proxy_probes.get_proxy_attribute("ctk", "upstream", configuration=configuration) == (
            f"127.0.0.1:{upstream_port}"
        )

        assert toxic_actions.create_latency_toxic("ctk", "slow", 300, configuration=configuration) is True
        assert round_trip_time(listen_port, upstream) >= 0.29
        assert toxic_actions.delete_toxic("ctk", "slow", configuration=configuration) is True
        assert round_trip_time(listen_port, upstream) < 0.29

        for create, args in [
            (toxic_actions.create_bandwith_degradation_toxic, (64,)),
            (toxic_actions.create_slow_connection_close_toxic, (100,)),
            (toxic_actions.create_timeout_toxic, (1000,)),
            (toxic_actions.create_slicer_toxic, (10, 5, 100)),
            (toxic_actions.create_limiter_toxic, (1000,)),
        ]:
            assert create("ctk", create.__name__, *args, configuration=configuration) is True
        assert toxic_actions.create_toxic("ctk", "generic", "noop", configuration=configuration) is True
        api = ControlClient(daemon["api"])
        assert len(api.get("/proxies/ctk/toxics")) == 6

        assert proxy_actions.disable_proxy("ctk", configuration=configuration) is True
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", listen_port), timeout=5).close()
        assert proxy_actions.enable_proxy("ctk", configuration=configuration) is True
        assert int(configuration["ctk_PORT"]) == listen_port

        assert proxy_actions.reset(configuration=configuration) is True
        assert api.get("/proxies/ctk/toxics") == []
        assert (
            proxy_actions.modify_proxy(
                "ctk", upstream_address=f"127.0.0.1:{upstream_port}", configuration=configuration
            )
            is True
        )
    finally:
        proxy_actions.delete_proxy("ctk", configuration=configuration)
    assert proxy_probes.proxy_exist("ctk", configuration=configuration) is False


def test_an_experiment_using_the_extension_runs_against_our_proxy(daemon, upstream, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # chaoslib may write next to the experiment
    upstream_port = upstream.getsockname()[1]
    experiment = {
        "title": "chaostoolkit-toxiproxy against chaosagenkit's proxy",
        "description": "Toxiproxy's own extension drives our API",
        "configuration": {"toxiproxy_url": daemon["api"]},
        "steady-state-hypothesis": {
            "title": "the proxy exists",
            "probes": [
                {
                    "type": "probe",
                    "name": "proxy-exists",
                    "tolerance": True,
                    "provider": {
                        "type": "python",
                        "module": "chaostoxi.proxy.probes",
                        "func": "proxy_exist",
                        "arguments": {"proxy_name": "exp"},
                    },
                }
            ],
        },
        "method": [
            {
                "type": "action",
                "name": "add-latency",
                "provider": {
                    "type": "python",
                    "module": "chaostoxi.toxic.actions",
                    "func": "create_latency_toxic",
                    "arguments": {"for_proxy": "exp", "toxic_name": "lag", "latency": 50},
                },
            }
        ],
        "rollbacks": [
            {
                "type": "action",
                "name": "remove-latency",
                "provider": {
                    "type": "python",
                    "module": "chaostoxi.toxic.actions",
                    "func": "delete_toxic",
                    "arguments": {"for_proxy": "exp", "toxic_name": "lag"},
                },
            }
        ],
    }
    api = ControlClient(daemon["api"])
    api.post("/proxies", {"name": "exp", "upstream": f"127.0.0.1:{upstream_port}"})
    try:
        journal = run_experiment(experiment, settings={"runtime": {"rollbacks": {"strategy": "always"}}})
        assert journal["status"] == "completed", journal["run"]
        assert not journal["deviated"]
        assert [r["status"] for r in journal["run"]] == ["succeeded"]
        assert [r["status"] for r in journal["rollbacks"]] == ["succeeded"]
        assert api.get("/proxies/exp/stats")["toxics"]["lag"]["present"] is False
    finally:
        api.delete("/proxies/exp")
