"""Chaos hosts as child processes: start, register, resolve, restart, stop, tear down.

And the Chaos Toolkit face over them: actions and probes called as chaoslib
calls them, and one experiment run through chaoslib with the control.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed
from chaoslib.experiment import run_experiment

from chaosagenkit.client import probes as client_probes
from chaosagenkit.exceptions import ConfigurationError, ProcessStartError
from chaosagenkit.sandbox import SANDBOX
from chaosagenkit.service import actions, hosts, probes
from chaosagenkit.service.chaos_agent import CRASH_EXIT_CODE
from tests.integration.test_control_client import http_peer, not_http_peer
from tests.integration.test_service_support import REPO, call

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_service]


@pytest.fixture
def run():
    """A clean registry with a run seed; everything started is stopped afterwards."""
    SANDBOX.reset()
    SANDBOX.seed = 1234
    yield SANDBOX
    hosts.stop_started_servers()
    SANDBOX.reset()


@pytest.fixture
def elsewhere():
    """A host started outside this run's registry, as one "running elsewhere" would be.

    Yields its control URL and the configuration carrying its token.
    """
    env = {**os.environ, "CHAOSAGENKIT_TOKEN": "elsewhere"}
    host = subprocess.Popen(
        [sys.executable, "-m", "chaosagenkit", "serve", "--exit-with-parent"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=REPO,
    )
    try:
        url = json.loads(host.stdout.readline())["control"]
        yield url, {"chaosagenkit_server_token": "elsewhere"}
        assert host.poll() is None, "nothing of this run may stop a host it did not start"
    finally:
        host.terminate()
        host.wait(timeout=15)
        host.stdout.close()


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


# -- start_or_register ---------------------------------------------------------


@pytest.mark.parametrize("transport", ["unix", "ws", "h2c", "grpc"])
def test_declared_transports_serve_and_unix_dirs_are_removed(run, transport):
    ref = hosts.start_or_register({"name": "t", "transport": transport})
    assert ref.endpoint.startswith(f"{transport}://")
    assert all(o.ok and o.matches for o in call(ref.endpoint, 3))
    socket_dir = Path(ref.endpoint.removeprefix("unix://")).parent if transport == "unix" else None
    assert hosts.stop_started_servers() == ["t"]
    assert "t" not in run.servers
    if socket_dir is not None:
        assert not socket_dir.exists()


def test_seed_is_derived_from_the_run_seed_and_recorded(run):
    ref = hosts.start_or_register({"name": "seeded"})
    expected = run.component_seed("server:seeded")
    assert hosts.client_for(ref).get("/health")["seed"] == expected
    assert ref.argv[ref.argv.index("--seed") + 1] == str(expected)
    (start,) = [e for e in run.timeline() if e["event"] == "start"]
    assert start["target"] == "seeded" and start["detail"]["seed"] == expected


def test_env_names_an_earlier_server_endpoint(run):
    down = hosts.start_or_register({"name": "down"})
    up = hosts.start_or_register({"name": "up", "env": {"DOWNSTREAM": "{server:down}", "N": 3}})
    child_env = environ(up.process.pid)
    assert child_env["DOWNSTREAM"] == down.endpoint and child_env["N"] == "3"


@pytest.mark.parametrize(
    "spec,field",
    [
        ({"name": "x", "colour": "red"}, "colour"),
        ({"agent": "chaosagenkit.targets:echo"}, "name"),
        ({"name": "x", "transport": "carrier-pigeon"}, "transport"),
        ({"name": "x", "env": {"A": "{server:nobody}"}}, "env.A"),
        ({"name": "x", "env": {"A": ["list"]}}, "env.A"),
        ({"name": "x", "seed": "abc"}, "seed"),
        ({"name": "x", "seed": 1.9}, "seed"),
        ({"name": "x", "seed": True}, "seed"),
        ({"name": "x", "http_default_middleware": "maybe"}, "http_default_middleware"),
        ({"name": "x", "endpoint": "tcp://nowhere"}, "endpoint"),
    ],
)
def test_bad_declarations_name_the_field_and_start_nothing(run, spec, field):
    with pytest.raises(ConfigurationError) as caught:
        hosts.start_or_register(spec)
    assert caught.value.field == field
    assert run.servers == {} and run.timeline() == []


def test_a_host_that_cannot_start_reports_its_stderr(run):
    with pytest.raises(ProcessStartError) as caught:
        hosts.start_server("broken", agent="no_such_module_xyz:make")
    assert "exited with status 2" in str(caught.value)
    assert "no_such_module_xyz" in str(caught.value)
    assert "broken" not in run.servers


def test_external_hosts_are_registered_from_their_health(run):
    real = hosts.start_server("real", token="tok")
    with pytest.raises(Exception, match="401"):
        hosts.start_or_register({"name": "ext", "control_url": real.control_url})
    ext = hosts.start_or_register({"name": "ext", "control_url": real.control_url, "token": "tok"})
    assert ext.process is None and ext.endpoint == real.endpoint
    assert hosts.resolve_server("ext") is ext
    assert hosts.resolve_server(real.control_url) is real  # a URL finds the known server


def test_resolving_an_unknown_server_lists_the_known_ones(run):
    hosts.start_server("alpha")
    with pytest.raises(ConfigurationError, match=r"known: alpha\) or a control URL"):
        hosts.resolve_server("beta")


def test_wrong_urls_are_not_chaosagenkit_control_apis(run):
    agent = hosts.start_server("agent", endpoint="http://127.0.0.1:0")
    with http_peer("text/html", b"<html>a web page</html>") as page, not_http_peer() as other:
        for url in (agent.endpoint, page, other):
            words = f"'server' {url} is not a chaosagenkit control API"
            with pytest.raises(ActivityFailed, match=f"^inject_failure_rate: {words}"):
                actions.inject_failure_rate(url, rate=0.5)
            with pytest.raises(ConfigurationError, match=f"'control_url' {url} is not a chaosagenkit"):
                hosts.start_or_register({"name": "ext", "control_url": url})
            with pytest.raises(ActivityFailed, match=f"^server_is_up: {words}"):
                probes.server_is_up(url)
    assert set(run.servers) == {"agent"} and run.fault_hosts == {}


# -- restart, stop, teardown ---------------------------------------------------


def test_restart_comes_back_on_the_same_addresses_without_faults(run):
    ref = hosts.start_server("r", seed=3)
    hosts.client_for(ref).post("/faults", {"kind": "failure_rate", "rate": 1.0})
    old_pid = ref.process.pid
    new = hosts.restart_server("r")
    assert (new.endpoint, new.control_url) == (ref.endpoint, ref.control_url)
    assert new.process.pid != old_pid and ref.process.returncode == 0
    assert hosts.client_for(new).get("/faults") == []
    assert all(o.ok for o in call(new.endpoint, 2))
    assert [e["event"] for e in run.timeline()] == ["start", "restart"]


def test_restart_after_a_crash_and_idempotent_stop(run):
    ref = hosts.start_server("c")
    hosts.client_for(ref).post("/crash", {"when": "now"})
    assert ref.process.wait(timeout=15) == CRASH_EXIT_CODE
    assert hosts.stop_server("c") == CRASH_EXIT_CODE  # already gone: nothing to do
    assert hosts.clear_all_faults() == {}  # dead hosts are skipped quietly
    new = hosts.restart_server("c")
    assert all(o.ok for o in call(new.endpoint, 1))
    assert hosts.stop_server("c") == 0
    assert hosts.stop_server("c") == 0
    restart = next(e for e in run.timeline() if e["event"] == "restart")
    assert restart["detail"]["was_alive"] is False


def test_teardown_clears_faults_and_stops_everything(run):
    a = hosts.start_server("a")
    b = hosts.start_server("b")
    hosts.client_for(a).post("/faults", [{"kind": "fail_every", "nth": 2}, {"kind": "delay", "delay_ms": 1}])
    assert hosts.clear_all_faults() == {"a": 2, "b": 0}
    assert hosts.client_for(a).get("/faults") == []
    assert sorted(hosts.stop_started_servers()) == ["a", "b"]
    assert a.process.returncode == 0 and b.process.returncode == 0
    assert hosts.stop_started_servers() == [] and run.servers == {}


def test_clearing_all_faults_goes_on_past_a_host_that_answers_nonsense(run):
    real = hosts.start_server("real")
    hosts.client_for(real).post("/faults", {"kind": "fail_every", "nth": 3})
    with http_peer("application/json", b'["not", "a", "clear", "answer"]') as page:
        # A fake registration: a host whose port another program took since it was registered.
        run.servers = {"moved": hosts.ServerRef("moved", "tcp://127.0.0.1:9", page), "real": real}
        assert hosts.clear_all_faults() == {"real": 1}
    assert hosts.client_for(real).get("/faults") == []


# -- activities ----------------------------------------------------------------


def test_actions_and_probes_drive_a_host_and_record_the_timeline(run):
    started = actions.start_server("svc", transport="http", seed=9)
    assert started["endpoint"].startswith("http://127.0.0.1:") and started["started_by_run"]
    assert probes.server_is_up("svc") is True
    fault = actions.inject_failure_rate("svc", rate=1.0, error="timeout", duration_s=30)
    assert fault["kind"] == "failure_rate" and fault["duration_s"] == 30
    assert not call(started["endpoint"], 1)[0].ok
    delay = actions.inject_delay("svc", delay_ms=5, jitter_ms=2, rate=0.5)
    assert delay["params"]["jitter_ms"] == 2 and delay["duration_s"] == actions.DEFAULT_TTL_S
    assert [f["id"] for f in probes.active_faults("svc")] == [fault["id"], delay["id"]]
    assert probes.server_stats("svc")["injected"] == {"failure_rate": 1}
    assert actions.clear_faults("svc")["removed"] == [fault["id"], delay["id"]]
    crash = actions.crash_server("svc")
    assert crash["exit_code"] == CRASH_EXIT_CODE
    assert probes.server_is_up("svc") is False
    assert actions.restart_server("svc")["endpoint"] == started["endpoint"]
    assert probes.server_is_up(started["control"]) is True  # by control URL too
    assert actions.stop_server("svc")["exit_code"] == 0
    events = [(e["event"], e.get("kind")) for e in run.timeline()]
    assert events == [
        ("start", None),
        ("inject", "failure_rate"),
        ("inject", "delay"),
        ("clear", None),
        ("crash", "crash"),
        ("restart", None),
        ("stop", None),
    ]
    inject = run.timeline()[1]
    assert inject["id"] == fault["id"] and inject["duration_s"] == 30
    assert inject["detail"] == {"rate": 1.0, "error": "timeout"}


BAD_ACTIVITY_CALLS = [
    (lambda: actions.inject_delay("svc", delay_ms=-5), "inject_delay: 'delay_ms' must be >= 0, got -5"),
    (
        lambda: actions.inject_failure_rate("svc", rate=1.5),
        "inject_failure_rate: 'rate' must be between 0 and 1, got 1.5",
    ),
    (
        lambda: actions.inject_failure_rate("svc", rate=0.5, error="oops"),
        "inject_failure_rate: 'error' must be one of exception, connection, timeout, got 'oops'",
    ),
    (lambda: actions.inject_fail_first("svc", count=0), "inject_fail_first: 'count' must be >= 1, got 0"),
    (
        lambda: actions.inject_fail_every("svc", nth=2.5),
        "inject_fail_every: 'nth' must be an integer, got 2.5",
    ),
    (
        lambda: actions.inject_delay("svc", delay_ms=10, max_delay_ms=5),
        "inject_delay: 'max_delay_ms' must be >= delay_ms (10), got 5",
    ),
    (
        lambda: actions.inject_large_responses("svc", size_bytes=0),
        "inject_large_responses: 'size_bytes' must be >= 1, got 0",
    ),
    (
        lambda: actions.inject_memory_pressure("svc", mib=-1),
        "inject_memory_pressure: 'mib' must be >= 1, got -1",
    ),
    (
        lambda: actions.inject_cpu_pressure("svc", threads=0),
        "inject_cpu_pressure: 'threads' must be >= 1, got 0",
    ),
    (
        lambda: actions.inject_failure_rate("svc", rate=0.5, duration_s=0),
        "inject_failure_rate: 'duration_s' must be > 0, got 0",
    ),
    (
        lambda: actions.inject_failure_rate("svc", rate=0.5, duration_s=None),
        "inject_failure_rate: 'duration_s' must be a number, got None",
    ),
    (
        lambda: actions.inject_memory_pressure("svc", mib=1, duration_s=None),
        "inject_memory_pressure: 'duration_s' must be a number, got None",
    ),
    (
        lambda: actions.inject_delay("svc", delay_ms=1, duration_s=-1),
        "inject_delay: 'duration_s' must be > 0, got -1",
    ),
    (
        lambda: probes.faults_injected("svc", kind="failure_rat"),
        "faults_injected: 'kind' must be one of failure_rate, fail_first",
    ),
    (
        lambda: actions.crash_server("svc", when="soon"),
        "crash_server: 'when' must be one of now, next_request, after_requests, got 'soon'",
    ),
    (
        lambda: actions.crash_server("svc", after_requests=-1),
        "crash_server: 'after_requests' must be >= 0, got -1",
    ),
    (
        lambda: actions.inject_failure_rate("nobody", rate=0.5),
        "inject_failure_rate: 'server' must be a server started in this run (known: svc)",
    ),
    (
        lambda: actions.stop_server("nobody"),
        "stop_server: 'name' must be a server this run started (started: svc), got 'nobody'",
    ),
    (lambda: actions.start_server("svc2", seed=-2), "start_server: 'seed' must be >= -1, got -2"),
    (
        lambda: actions.start_server("svc2", transport="smoke"),
        "start_server: 'transport' must be one of tcp, unix, ws, http, h2c, grpc, got 'smoke'",
    ),
]


def test_bad_activity_arguments_fail_in_one_line_and_change_nothing(run):
    # One host for the whole table: starting one per case would cost a second each.
    actions.start_server("svc")
    actions.inject_fail_every("svc", nth=1000)
    before = probes.active_faults("svc")
    events = len(run.timeline())
    for call_activity, message in BAD_ACTIVITY_CALLS:
        with pytest.raises(ActivityFailed) as caught:
            call_activity()
        assert str(caught.value).startswith(message), message
        assert "\n" not in str(caught.value)
        assert probes.active_faults("svc") == before, message
        assert set(run.servers) == {"svc"} and len(run.timeline()) == events, message
    assert probes.server_is_up("svc")


def test_an_unreachable_control_url_is_down_not_an_error(run):
    assert probes.server_is_up("http://127.0.0.1:9") is False
    with pytest.raises(ActivityFailed, match=r"server_stats: cannot reach http://127.0.0.1:9"):
        probes.server_stats("http://127.0.0.1:9")


# -- through chaoslib ------------------------------------------------------------


def activity(kind: str, name: str, func: str, arguments: dict, **extra) -> dict:
    module = f"chaosagenkit.service.{'probes' if kind == 'probe' else 'actions'}"
    return {
        "type": kind,
        "name": name,
        **extra,
        "provider": {"type": "python", "module": module, "func": func, "arguments": arguments},
    }


@pytest.mark.slow
def test_an_experiment_runs_the_service_activities_under_the_control(run):
    experiment = {
        "title": "service activities under the control",
        "description": "start a host from the control, inject, measure, crash, restart, roll back",
        "controls": [
            {
                "name": "chaosagenkit",
                "provider": {
                    "type": "python",
                    "module": "chaosagenkit.control",
                    "arguments": {"seed": 77, "servers": [{"name": "target"}]},
                },
            }
        ],
        "steady-state-hypothesis": {
            "title": "the host is up",
            "probes": [activity("probe", "up", "server_is_up", {"server": "target"}, tolerance=True)],
        },
        "method": [
            activity("action", "fail-two", "inject_fail_first", {"server": "target", "count": 2}),
            activity("probe", "faults", "active_faults", {"server": "target"}),
            activity("action", "crash", "crash_server", {"server": "target"}),
            activity("probe", "down", "server_is_up", {"server": "target"}, tolerance=False),
            activity("action", "back", "restart_server", {"name": "target"}),
        ],
        "rollbacks": [activity("action", "clear", "clear_faults", {"server": "target"})],
    }
    journal = run_experiment(experiment)
    assert journal["status"] == "completed" and journal["deviated"] is False
    outputs = {r["activity"]["name"]: r["output"] for r in journal["run"]}
    assert outputs["fail-two"]["params"] == {"count": 2, "error": "exception"}
    assert [f["kind"] for f in outputs["faults"]] == ["fail_first"]
    assert outputs["crash"]["exit_code"] == CRASH_EXIT_CODE
    assert outputs["down"] is False
    ext = next(e for e in journal["extensions"] if e["name"] == "chaosagenkit")
    assert [e["event"] for e in ext["timeline"]][:5] == ["start", "inject", "crash", "restart", "clear"]
    assert run.servers == {}  # the control stopped what it started


def test_activities_reach_a_host_elsewhere_by_control_url_with_the_configured_token(run, elsewhere):
    url, configuration = elsewhere
    with pytest.raises(ActivityFailed, match="401"):
        actions.inject_fail_every(url, nth=2)
    fault = actions.inject_fail_every(url, nth=2, configuration=configuration)
    assert probes.active_faults(url, configuration=configuration)[0]["id"] == fault["id"]
    assert probes.server_is_up(url, configuration=configuration) is True
    with pytest.raises(
        ActivityFailed, match=r"server_is_up: 'configuration.chaosagenkit_server_token' is missing or wrong"
    ):
        probes.server_is_up(url)  # a 401 is a configuration error, not a host that is down
    assert actions.clear_faults(url, configuration=configuration)["removed"] == [fault["id"]]
    # The client probes that read a served agent's middleware take the same token.
    assert client_probes.middleware_metrics(server=url, configuration=configuration) == []
    assert [(e["event"], e["target"]) for e in run.timeline()] == [("inject", url), ("clear", url)]
    assert run.servers == {}  # nothing registered, nothing to stop


@pytest.mark.slow
def test_teardown_clears_faults_on_a_host_faulted_by_control_url_and_leaves_it_running(run, elsewhere):
    url, configuration = elsewhere
    experiment = {
        "title": "fault a host by its control URL",
        "description": "the control did not start or register the host, yet clears its faults",
        "configuration": configuration,
        "controls": [
            {
                "name": "chaosagenkit",
                "provider": {"type": "python", "module": "chaosagenkit.control", "arguments": {"seed": 5}},
            }
        ],
        "method": [
            activity(
                "action",
                "crash-later",
                "crash_server",
                {"server": url, "when": "after_requests", "after_requests": 1000},
            ),
            activity("action", "fail-all", "inject_failure_rate", {"server": url, "rate": 1.0}),
        ],
    }
    journal = run_experiment(experiment)
    assert journal["status"] == "completed", journal["run"]
    remaining = hosts.client_for(hosts.resolve_server(url, "elsewhere")).get("/faults")
    assert remaining == []  # both the pending crash and the failure rate are gone
    assert run.fault_hosts == {} and run.servers == {}
