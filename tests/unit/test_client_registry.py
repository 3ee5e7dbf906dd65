"""Client declarations: endpoint resolution, checks before any change, registration, export.

No request is sent here (creating a client opens no connection); traffic is
tested in tests/integration/test_client_*.py.
"""

from __future__ import annotations

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosagenkit.client import actions, probes, registry
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.sandbox import SANDBOX, ProxyRef, ServerRef


@pytest.fixture(autouse=True)
def clean_sandbox():
    SANDBOX.reset()
    yield
    registry.close_all_clients()
    SANDBOX.reset()


def declare_topology() -> None:
    SANDBOX.servers["target"] = ServerRef("target", "http://127.0.0.1:4100", "http://127.0.0.1:4101")
    SANDBOX.servers["other"] = ServerRef("other", "tcp://127.0.0.1:4200", "http://127.0.0.1:4201")
    SANDBOX.proxies["target_proxy"] = ProxyRef("target_proxy", "proxy", "127.0.0.1:4300", "127.0.0.1:4100")
    SANDBOX.proxies["loose"] = ProxyRef("loose", "proxy", "0.0.0.0:4400", "127.0.0.1:4999")
    SANDBOX.servers["socket"] = ServerRef("socket", "unix:///tmp/x/agent.sock", "http://127.0.0.1:4501")
    SANDBOX.proxies["socket_proxy"] = ProxyRef(
        "socket_proxy", "proxy", "unix:/tmp/x/proxy-p.sock", "unix:/tmp/x/agent.sock"
    )


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({"endpoint": "tcp://127.0.0.1:1234", "server": "target"}, "tcp://127.0.0.1:1234"),
        ({"endpoint": "  ", "server": "other"}, "tcp://127.0.0.1:4200"),
        ({"server": "target"}, "http://127.0.0.1:4100"),
        ({"proxy": "target_proxy"}, "http://127.0.0.1:4300"),  # scheme of the upstream server
        ({"proxy": "target_proxy", "transport": "ws"}, "ws://127.0.0.1:4300"),
        ({"proxy": "target_proxy", "server": "other"}, "tcp://127.0.0.1:4300"),
        ({"proxy": "loose"}, "tcp://127.0.0.1:4400"),  # unknown upstream: tcp; wildcard -> loopback
        ({"server": "other", "transport": "tcp"}, "tcp://127.0.0.1:4200"),
        ({"proxy": "target_proxy", "transport": "h2c"}, "h2c://127.0.0.1:4300"),
        ({"proxy": "target_proxy", "transport": "grpc"}, "grpc://127.0.0.1:4300"),
        ({"server": "socket", "transport": "unix"}, "unix:///tmp/x/agent.sock"),
        ({"proxy": "socket_proxy"}, "unix:///tmp/x/proxy-p.sock"),
    ],
)
def test_endpoint_resolution(kwargs, expected):
    declare_topology()
    assert registry.resolve_endpoint(**kwargs) == expected


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({}, "'endpoint' is missing: give an endpoint, a server or a proxy"),
        ({"server": "nope"}, "'server' unknown server 'nope' (known: other, socket, target)"),
        ({"proxy": "nope"}, "'proxy' unknown proxy 'nope' (known: loose, socket_proxy, target_proxy)"),
        (
            {"proxy": "loose", "transport": "smtp"},
            "'transport' must be one of tcp, unix, ws, http, h2c, grpc",
        ),
        (
            {"proxy": "loose", "transport": "unix"},
            "'proxy' 'loose' listens on TCP (0.0.0.0:4400): give it a listen 'unix:/PATH' for unix://",
        ),
        (
            {"proxy": "target_proxy", "server": "socket"},
            "'proxy' 'target_proxy' listens on TCP (127.0.0.1:4300)",
        ),
        (
            {"proxy": "socket_proxy", "transport": "tcp"},
            "'proxy' 'socket_proxy' listens on unix:/tmp/x/proxy-p.sock: only unix:// reaches it",
        ),
        ({"server": "target", "transport": "tcp"}, "'transport' is 'tcp' but server 'target' serves http://"),
    ],
)
def test_endpoint_resolution_errors(kwargs, message):
    declare_topology()
    with pytest.raises(ConfigurationError) as raised:
        registry.resolve_endpoint(**kwargs)
    assert message in str(raised.value)


def test_spec_with_unknown_key_is_rejected_and_nothing_is_registered():
    with pytest.raises(ConfigurationError, match="'retries' is not a client setting"):
        registry.create_client_from_spec({"name": "c", "endpoint": "tcp://127.0.0.1:9", "retries": 3})
    assert SANDBOX.clients == {}


def test_spec_creates_and_registers_a_client_over_agenkits_remote_agent():
    from agenkit.adapters.python.remote_agent import RemoteAgent

    declare_topology()
    client = registry.create_client_from_spec(
        {"name": "caller", "server": "other", "timeout_ms": 750, "connections": 3,
         "middleware": [{"type": "timeout", "timeout_ms": 100}]}
    )  # fmt: skip
    assert SANDBOX.clients["caller"] is client
    assert client.endpoint == "tcp://127.0.0.1:4200"
    assert len(client.remotes) == 3 and all(isinstance(r, RemoteAgent) for r in client.remotes)
    assert all(r._timeout_ms == 750 for r in client.remotes)
    assert client.describe()["middleware"] == [{"type": "timeout", "timeout_ms": 100}]


def test_a_name_cannot_be_reused_while_open_but_can_after_close():
    registry.create_client("c", endpoint="tcp://127.0.0.1:9")
    with pytest.raises(ConfigurationError, match="already exists"):
        registry.create_client("c", endpoint="tcp://127.0.0.1:9")
    registry.close_client("c")
    assert registry.create_client("c", endpoint="tcp://127.0.0.1:10").endpoint == "tcp://127.0.0.1:10"


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"name": ""}, "create_client: 'name' must be a non-empty string"),
        ({"timeout_ms": 0}, "create_client: 'timeout_ms' must be >= 1, got 0"),
        ({"connections": 0}, "create_client: 'connections' must be >= 1, got 0"),
        ({"connections": 300}, "create_client: 'connections' must be between 1 and 256, got 300"),
        ({"connections": 1.5}, "create_client: 'connections' must be an integer"),
        ({"endpoint": "carrier-pigeon://x"}, "create_client: 'endpoint' is not usable by agenkit"),
        (
            {"answer_check": "exact"},
            "create_client: 'answer_check' must be 'echo', 'any' or 'module:function', got 'exact'",
        ),
        (
            {"answer_check": "no_such_module:f"},
            "create_client: 'answer_check' module 'no_such_module' cannot be imported",
        ),
        ({"answer_check": ":f"}, "create_client: 'answer_check' must be 'echo', 'any' or 'module:function'"),
        (
            {"answer_check": ".relative:f"},
            "create_client: 'answer_check' module '.relative' cannot be imported",
        ),
        (
            {"answer_check": "operator:no_such_f"},
            "create_client: 'answer_check' 'operator:no_such_f': module",
        ),
        (
            {"answer_check": "operator:__doc__"},
            "create_client: 'answer_check' 'operator:__doc__' is not callable",
        ),
        ({"request_content": "status"}, "create_client: 'request_content' must be a string with {n}"),
        ({"request_content": 7}, "create_client: 'request_content' must be a string with {n}"),
        ({"request_content": "{n} of {order}"}, "create_client: 'request_content' must use only {n}"),
        ({"request_content": "{n} {"}, "create_client: 'request_content' must use only {n}"),
    ],
)
def test_create_client_checks_arguments_before_registering(kwargs, message):
    arguments = {"name": "c", "endpoint": "tcp://127.0.0.1:9"} | kwargs
    with pytest.raises(ActivityFailed) as raised:
        actions.create_client(**arguments)
    assert str(raised.value).startswith(message)
    assert SANDBOX.clients == {}


def test_custom_answer_check_is_imported():
    client = registry.create_client("c", endpoint="tcp://127.0.0.1:9", answer_check="operator:eq")
    assert client.describe()["answer_check"] == "operator:eq"


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: probes.send_requests("ghost"), "send_requests: 'client' unknown client 'ghost' (known: c)"),
        (lambda: probes.send_requests("c", count=0), "send_requests: 'count' must be >= 1, got 0"),
        (
            lambda: probes.send_requests("c", concurrency=0),
            "send_requests: 'concurrency' must be >= 1, got 0",
        ),
        (lambda: actions.start_traffic("c", rate_per_s=-1), "start_traffic: 'rate_per_s' must be >= 0"),
        (lambda: actions.start_traffic("c", duration_s=0), "start_traffic: 'duration_s' must be > 0"),
        (lambda: actions.stop_traffic("c"), "stop_traffic: 'client' client 'c' has no traffic to stop"),
        (lambda: probes.latency("c", percentile=101), "latency: 'percentile' must be between 0 and 100"),
        (lambda: probes.latency("c", outcome="good"), "latency: 'outcome' must be one of all, ok, error"),
        (lambda: probes.success_rate("c", window_s=-1), "success_rate: 'window_s' must be >= 0"),
        (lambda: probes.error_count("c", ""), "error_count: 'error' must be an error class name"),
        (lambda: probes.circuit_state(), "circuit_state: 'client' give exactly one of 'client' or 'server'"),
        (
            lambda: probes.circuit_state("c", server="s"),
            "circuit_state: 'client' give exactly one of 'client' or 'server'",
        ),
        (lambda: probes.circuit_state("c"), "circuit_state: 'client' client 'c' has no circuit_breaker"),
        (lambda: probes.retry_count("c", which=-1), "retry_count: 'which' must be >= 0"),
        (lambda: probes.time_to_recover("c"), "time_to_recover: 'after_event' no 'clear' event"),
        (lambda: probes.rejected_fast("c", min_rejections=0), "rejected_fast: 'min_rejections' must be >= 1"),
    ],
)
def test_activity_arguments_fail_with_one_line(call, message):
    registry.create_client("c", endpoint="tcp://127.0.0.1:9", middleware=[{"type": "timeout"}])
    with pytest.raises(ActivityFailed) as raised:
        call()
    assert str(raised.value).startswith(message), str(raised.value)
    assert "\n" not in str(raised.value)


def test_probes_on_an_idle_client_return_null_or_zero():
    registry.create_client("c", endpoint="tcp://127.0.0.1:9")
    assert probes.latency("c") is None
    assert probes.success_rate("c") is None
    assert probes.wrong_answers("c") == 0
    assert probes.error_count("c", "TimeoutError") == 0
    assert probes.rejected_fast("c") is False
    assert probes.middleware_metrics("c") == []


def test_export_shape_and_close_all_forgets_clients():
    registry.create_client(
        "a", endpoint="tcp://127.0.0.1:9", middleware=[{"type": "timeout", "timeout_ms": 5}]
    )
    exported = registry.export_outcomes()
    assert set(exported) == {"a"}
    entry = exported["a"]
    assert entry["endpoint"] == "tcp://127.0.0.1:9"
    assert entry["middleware"] == [{"type": "timeout", "timeout_ms": 5}]
    assert isinstance(entry["t0"], float)
    assert entry["outcomes"] == {"t": [], "latency_ms": [], "ok": [], "error": [], "wrong": []}
    registry.close_all_clients()
    registry.close_all_clients()  # idempotent
    assert SANDBOX.clients == {}


def test_requests_follow_the_request_content_template():
    client = registry.create_client("c", endpoint="tcp://127.0.0.1:9", request_content="status of order {n}")
    first, second = client.next_request(), client.next_request()
    assert (first.content, first.metadata) == ("status of order 0", {"request_id": "c:0"})
    assert (second.content, second.metadata) == ("status of order 1", {"request_id": "c:1"})
    assert client.describe()["request_content"] == "status of order {n}"


def test_distinct_keys_come_from_the_template_too():
    client = registry.create_client("c", endpoint="tcp://127.0.0.1:9", request_content="order {n}?")
    keys = [client.next_request(distinct=2) for _ in range(4)]
    assert [m.content for m in keys] == ["order 0?", "order 1?", "order 0?", "order 1?"]
    assert [m.metadata["request_id"] for m in keys] == ["key-0", "key-1", "key-0", "key-1"]


def test_default_requests_are_unchanged():
    client = registry.create_client("c", endpoint="tcp://127.0.0.1:9")
    assert client.next_request().content == "req-0"
    assert client.next_request(distinct=5).content == "req-1"


@pytest.mark.parametrize("check", ["any", "none"])
def test_any_answer_check_judges_nothing(check):
    assert registry.create_client("c", endpoint="tcp://127.0.0.1:9", answer_check=check)._check is None


def test_answer_check_is_imported_from_the_current_directory(tmp_path, monkeypatch):
    """Like the served agent (python -m puts the current directory first on the path)."""
    (tmp_path / "team_checks_for_cwd_test.py").write_text(
        "def order_ok(request, answer):\n    return answer.content == 'yes'\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", str(tmp_path))])
    client = registry.create_client(
        "c", endpoint="tcp://127.0.0.1:9", answer_check="team_checks_for_cwd_test:order_ok"
    )
    assert client._check.__module__ == "team_checks_for_cwd_test"


def test_the_attempt_log_sits_under_retry_only():
    plain = registry.create_client("plain", endpoint="tcp://127.0.0.1:9")
    retried = registry.create_client(
        "retried", endpoint="tcp://127.0.0.1:9", middleware=[{"type": "retry", "max_retries": 2}]
    )
    assert plain.attempt_log is None and plain.agent is plain.remotes[0]
    assert retried.attempt_log is not None and retried.attempt_log._agent is retried.remotes[0]
    assert retried.agent._agent is retried.attempt_log
