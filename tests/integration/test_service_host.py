"""A real ``chaosagenkit serve`` child called by a real agenkit RemoteAgent over every transport.

One host per transport (tcp, unix, ws, http, h2c, grpc) serves the whole
module (faults cleared and the RNG reseeded before each test); tests of the
control API itself, which no transport changes, use the tcp host only
(``CONTROL_ONLY``). Tests that end the process start their own
(tests/integration/test_transports.py crashes and restarts every transport).
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from agenkit.adapters.python.errors import (
    ConnectionClosedError,
    MalformedPayloadError,
    RemoteExecutionError,
)
from agenkit.adapters.python.errors import ConnectionError as AgenkitConnectionError

from chaosagenkit.faults.service import FaultPolicy, parse_fault
from chaosagenkit.service import hosts
from chaosagenkit.service.chaos_agent import CRASH_EXIT_CODE, PADDING_KEY
from chaosagenkit.service.endpoint import TRANSPORT_LIMITS, default_endpoint
from tests.integration.test_service_support import (
    REPO,
    call,
    call_async,
    cpu_seconds,
    proc_status,
    raw_request,
    wait_for,
)

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_service]

TRANSPORTS = ["tcp", "unix", "ws", "http", "h2c", "grpc"]
HTTP_SERVED = ("http", "h2c")  # HTTPAgentServer, with its default middleware
#: A test of the control API or of host resources, the same whatever the agent's transport.
CONTROL_ONLY = pytest.mark.parametrize("served", ["tcp"], indirect=True)


@pytest.fixture(scope="module", params=TRANSPORTS)
def served(request):
    name = f"svc-host-{request.param}"
    ref = hosts.start_or_register({"name": name, "transport": request.param, "seed": 5})
    yield ref
    hosts.forget_server(name)


@pytest.fixture
def host(served):
    """The module's host with no faults and its RNG restarted from seed 11."""
    client = hosts.client_for(served)
    client.delete("/faults")
    client.post("/seed", {"seed": 11})
    yield served
    client.delete("/faults")


def control(ref):
    return hosts.client_for(ref)


def transport_of(ref) -> str:
    return ref.endpoint.split("://")[0]


# -- basics ------------------------------------------------------------------


def test_health_reports_the_bound_ports_and_the_answers_match(host):
    health = control(host).get("/health")
    assert health["status"] == "ok" and health["agent"] == "echo"
    assert health["endpoint"] == host.endpoint and health["control"] == host.control_url
    assert health["pid"] == host.process.pid
    assert health["transport"] == transport_of(host) and health["ports"]["control"] > 0
    if transport_of(host) == "unix":
        assert health["ports"]["agent"] == 0 and Path(host.endpoint.removeprefix("unix://")).is_socket()
    else:
        assert health["ports"]["agent"] > 0 and host.endpoint.endswith(f":{health['ports']['agent']}")
    assert health["http_default_middleware"] is (transport_of(host) in HTTP_SERVED)
    assert health["transport_limits"] == TRANSPORT_LIMITS.get(transport_of(host))
    outcomes = call(host.endpoint, 5)
    assert all(o.ok and o.matches for o in outcomes)
    stats = control(host).get("/stats")
    assert stats["requests"] >= 5 and stats["latency_ms"]["count"] >= 5


# -- failures ------------------------------------------------------------------


def test_failure_rate_follows_the_seed_request_by_request(host):
    fault = {"kind": "failure_rate", "rate": 0.5}
    control(host).post("/faults", fault)
    outcomes = call(host.endpoint, 120)
    predicted = FaultPolicy(seed=11)
    predicted.add(parse_fault(fault), now=0)
    expected = [predicted.decide(0).error is not None for _ in range(120)]
    observed = [not o.ok for o in outcomes]
    assert observed == expected
    assert 0.35 <= sum(observed) / len(observed) <= 0.65
    assert control(host).get("/stats")["injected"]["failure_rate"] == sum(observed)
    assert all(o.matches for o in outcomes if o.ok)


@pytest.mark.parametrize("error", ["exception", "connection", "timeout"])
def test_fail_first_fails_exactly_n_and_each_error_kind_reaches_the_caller(host, error):
    created = control(host).post("/faults", {"kind": "fail_first", "count": 3, "error": error})
    assert created["id"].startswith("f") and created["params"] == {"count": 3, "error": error}
    outcomes = call(host.endpoint, 6)
    assert [o.ok for o in outcomes] == [False] * 3 + [True] * 3
    for o in outcomes[:3]:
        if transport_of(host) in HTTP_SERVED:
            # Observed: HTTPAgentServer answers 500 EXECUTION_ERROR with a sanitised message,
            # which agenkit's HTTP transport raises as its ConnectionError whatever the kind.
            assert isinstance(o.error, AgenkitConnectionError)
            assert "HTTP error 500" in str(o.error) and "EXECUTION_ERROR" in str(o.error)
        else:
            # Observed: LocalAgent sends an error envelope, GRPCServer an error Response;
            # RemoteAgent raises RemoteExecutionError (wrapped twice) with our message
            # (gRPC's keeps the code in front of it), the details dropped.
            assert isinstance(o.error, RemoteExecutionError)
            assert f"chaosagenkit injected {error} failure" in str(o.error)
    assert control(host).get("/faults")[0]["injected"] == 3


def test_fail_every_nth(host):
    control(host).post("/faults", {"kind": "fail_every", "nth": 3})
    outcomes = call(host.endpoint, 9)
    assert [i for i, o in enumerate(outcomes, start=1) if not o.ok] == [3, 6, 9]


# -- delay -------------------------------------------------------------------


def test_delay_is_felt_by_the_caller(host):
    control(host).post("/faults", {"kind": "delay", "delay_ms": 300})
    outcomes = call(host.endpoint, 2)
    assert all(o.ok and o.matches for o in outcomes)
    assert all(o.seconds >= 0.29 for o in outcomes)  # a delay is never shorter than asked
    assert control(host).get("/stats")["latency_ms"]["max"] >= 290


def test_clearing_a_delay_releases_the_request_waiting_on_it(host):
    control(host).post("/faults", {"kind": "delay", "delay_ms": 60_000})
    result = {}
    caller = threading.Thread(target=lambda: result.update(o=call(host.endpoint, 1, timeout_ms=90_000)[0]))
    caller.start()
    wait_for(lambda: control(host).get("/faults")[0]["requests_seen"] == 1, what="the request to arrive")
    control(host).delete("/faults")
    caller.join(timeout=30)
    assert not caller.is_alive(), "the request was still held after its delay fault was cleared"
    assert result["o"].ok and result["o"].seconds < 30


# -- large responses, memory, cpu ---------------------------------------------


def test_large_responses_carry_the_padding_and_keep_the_answer(host):
    control(host).post("/faults", {"kind": "large_response", "size_bytes": 300_000})
    (outcome,) = call(host.endpoint, 1)
    assert outcome.ok and outcome.matches
    assert len(outcome.reply.metadata[PADDING_KEY]) == 300_000


def test_answers_above_grpcs_4_mib_message_limit(host):
    control(host).post("/faults", {"kind": "large_response", "size_bytes": 5 * 1024 * 1024})
    first, second = call(host.endpoint, 2)
    if transport_of(host) != "grpc":
        assert first.ok and first.matches and len(first.reply.metadata[PADDING_KEY]) == 5 * 1024 * 1024
        assert second.ok and second.matches
        return
    # Observed: gRPC's default 4 MiB receive limit (agenkit sets none) refuses the answer
    # (RESOURCE_EXHAUSTED), which GRPCTransport turns into an error envelope; the
    # channel stays usable.
    for outcome in (first, second):
        assert isinstance(outcome.error, RemoteExecutionError)
        assert "larger than max" in str(outcome.error)
    control(host).delete("/faults")
    assert all(o.ok and o.matches for o in call(host.endpoint, 2))


def test_answers_above_agenkits_10_mib_frame_limit(host):
    control(host).post("/faults", {"kind": "large_response", "size_bytes": 11 * 1024 * 1024})
    first, second = call(host.endpoint, 2)
    if transport_of(host) in HTTP_SERVED:  # no frame limit on agenkit's HTTP transport
        assert first.ok and second.ok and len(first.reply.metadata[PADDING_KEY]) == 11 * 1024 * 1024
        return
    if transport_of(host) == "grpc":  # refused above 4 MiB already (test above)
        assert isinstance(first.error, RemoteExecutionError) and isinstance(
            second.error, RemoteExecutionError
        )
        return
    if transport_of(host) == "ws":
        # Observed: the websockets library closes the connection (1009, message too big);
        # WebSocketTransport reconnects for the next request, which is refused the same way.
        for outcome in (first, second):
            assert isinstance(outcome.error, ConnectionClosedError) and "1009" in str(outcome.error)
        return
    # Observed finding: RemoteAgent refuses the oversized frame but leaves its body
    # in the stream, so the NEXT request reads padding bytes as a length prefix.
    assert isinstance(first.error, MalformedPayloadError) and isinstance(second.error, MalformedPayloadError)
    first_size = int(str(first.error).split("Message size ")[1].split()[0])
    second_size = int(str(second.error).split("Message size ")[1].split()[0])
    assert first_size > 11 * 1024 * 1024 and second_size != first_size


@CONTROL_ONLY
def test_memory_pressure_is_held_until_cleared(host):
    pid = host.process.pid
    before_kib = proc_status(pid, "VmRSS")
    fault = control(host).post("/faults", {"kind": "memory_pressure", "mib": 96})
    stats = control(host).get("/stats")
    assert stats["memory_held_mib"] == 96
    assert proc_status(pid, "VmRSS") - before_kib >= 90 * 1024  # resident, not just reserved
    control(host).delete(f"/faults/{fault['id']}")
    assert control(host).get("/stats")["memory_held_mib"] == 0
    wait_for(lambda: proc_status(pid, "VmRSS") - before_kib < 48 * 1024, what="RSS to fall back")


@CONTROL_ONLY
def test_cpu_pressure_burns_cpu_in_the_host_until_removed(host):
    pid = host.process.pid
    threads_before = proc_status(pid, "Threads")
    cpu_before = cpu_seconds(pid)
    control(host).post("/faults", {"kind": "cpu_pressure", "threads": 2, "duration_s": 60})
    assert control(host).get("/stats")["cpu_threads"] == 2
    assert proc_status(pid, "Threads") >= threads_before + 2
    wait_for(lambda: cpu_seconds(pid) - cpu_before >= 0.5, what="0.5 s of CPU burnt")
    assert all(o.ok for o in call(host.endpoint, 3))  # the agent still answers under pressure
    control(host).delete("/faults")
    assert control(host).get("/stats")["cpu_threads"] == 0
    wait_for(lambda: proc_status(pid, "Threads") <= threads_before, what="burner threads to end")


# -- expiry ------------------------------------------------------------------


@CONTROL_ONLY
def test_faults_expire_by_themselves(host):
    control(host).post(
        "/faults",
        [
            {"kind": "failure_rate", "rate": 1.0, "duration_s": 0.5},
            {"kind": "memory_pressure", "mib": 32, "duration_s": 0.5},
        ],
    )
    assert control(host).get("/stats")["memory_held_mib"] == 32
    # Nobody sends a request: the host's own timer must release the memory.
    wait_for(lambda: control(host).get("/stats")["memory_held_mib"] == 0, what="memory to be released")
    assert control(host).get("/faults") == []
    assert all(o.ok for o in call(host.endpoint, 3))


# -- control API: bad input, middleware ---------------------------------------

BAD_INPUT = [
    # (method, path, body, status, words in the error)
    (
        "POST",
        "/faults",
        b'{"kind": "failure_rate", "rate": 1.5}',
        400,
        "'rate' must be between 0 and 1, got 1.5",
    ),
    ("POST", "/faults", b'{"kind": "delay", "delay_ms": -5}', 400, "'delay_ms' must be >= 0, got -5"),
    ("POST", "/faults", b'{"kind": "teleport"}', 400, "'kind' must be one of"),
    ("POST", "/faults", b'{"kind": "failure_rate", "rate": ', 400, "not valid JSON"),
    ("POST", "/faults", b"", 400, "empty body"),
    ("POST", "/faults", b'{"kind": "fail_first"}', 400, "'count' is missing"),
    ("POST", "/faults", b'{"kind": "fail_first", "count": "3"}', 400, "'count' must be an integer"),
    ("POST", "/faults", b'{"kind": "delay", "delay_ms": 1, "bogus": 2}', 400, "'bogus' is not a field"),
    (
        "POST",
        "/faults",
        b'[{"kind": "fail_every", "nth": 2}, {"kind": "failure_rate", "rate": 2}]',
        400,
        "'[1].rate'",
    ),
    ("POST", "/faults", b"[]", 400, "'faults'"),
    ("POST", "/faults", b'"failure_rate"', 400, "'fault' must be a JSON object"),
    ("POST", "/faults", b'{"kind": "memory_pressure", "mib": 10000000}', 400, "'mib'"),
    ("POST", "/faults", b"\xff\xfe", 400, "not valid JSON"),
    ("POST", "/faults", b"[" * 100_000 + b"]" * 100_000, 400, "refuses to decode"),
    ("POST", "/faults", b'{"kind": "fail_first", "count": ' + b"9" * 5000 + b"}", 400, "refuses to decode"),
    ("POST", "/faults", b" " * 2_000_000, 413, "Too Large"),
    ("POST", "/crash", b'{"when": "later"}', 400, "'when' must be one of"),
    ("POST", "/crash", b"[1]", 400, "'body' must be a JSON object"),
    (
        "POST",
        "/crash",
        b'{"when": "after_requests", "after_requests": 0}',
        400,
        "'after_requests' must be >= 1",
    ),
    ("POST", "/seed", b'{"seed": -1}', 400, "'seed' must be >= 0, got -1"),
    ("POST", "/seed", b"{}", 400, "'seed' is missing"),
    ("DELETE", "/faults/f999", None, 404, "no active fault with id 'f999'"),
    ("GET", "/nowhere", None, 404, "Not Found"),
    ("PUT", "/faults", b"{}", 405, "Method Not Allowed"),
]


@CONTROL_ONLY
@pytest.mark.parametrize("method,path,body,status,words", BAD_INPUT)
def test_bad_input_is_a_4xx_naming_the_field_and_changes_nothing(host, method, path, body, status, words):
    client = control(host)
    client.post("/faults", {"kind": "fail_every", "nth": 1000})
    before = client.get("/faults")
    seen_before = client.get("/stats")["requests"]
    got_status, answer = raw_request(method, host.control_url + path, body)
    assert (got_status, answer["status"]) == (status, status)
    assert words in answer["error"]
    assert client.get("/faults") == before
    assert client.get("/stats")["memory_held_mib"] == 0
    assert host.process.poll() is None  # a bad /crash did not crash it
    assert client.get("/stats")["requests"] == seen_before


@CONTROL_ONLY
def test_a_list_of_faults_is_added_all_at_once(host):
    created = control(host).post(
        "/faults", [{"kind": "fail_every", "nth": 2}, {"kind": "delay", "delay_ms": 1}]
    )
    assert [f["kind"] for f in created] == ["fail_every", "delay"]
    assert [f["id"] for f in control(host).get("/faults")] == [f["id"] for f in created]
    removed = control(host).delete("/faults")["removed"]
    assert sorted(f["id"] for f in removed) == sorted(f["id"] for f in created)


def test_middleware_shows_agenkits_server_decorators(host):
    chain = control(host).get("/middleware")["middleware"]
    if transport_of(host) in HTTP_SERVED:  # HTTPAgentServer's defaults, outermost first
        assert [d["kind"] for d in chain] == ["rate_limiter", "timeout"]
        assert chain[0]["metrics"]["total_requests"] >= 0
    else:
        assert chain == []


# -- crash ---------------------------------------------------------------------


@pytest.fixture
def lone_host(request):
    """A host of its own (this test ends it), on the transport given by the test's param."""
    transport = request.param
    name = f"svc-lone-{transport}"
    ref = hosts.start_server(name, endpoint=default_endpoint(transport), seed=1)
    yield ref
    hosts.forget_server(name)


@pytest.mark.slow
@pytest.mark.parametrize("lone_host", ["tcp", "http"], indirect=True)
def test_crash_now_exits_the_process_after_answering(lone_host):
    status, answer = raw_request("POST", lone_host.control_url + "/crash", b'{"when": "now"}')
    assert status == 202 and answer["crash"] == "now"
    assert lone_host.process.wait(timeout=15) == CRASH_EXIT_CODE
    (outcome,) = call(lone_host.endpoint, 1, timeout_ms=5000)
    assert isinstance(outcome.error, AgenkitConnectionError)  # nothing listens any more


@pytest.mark.slow
@pytest.mark.parametrize("lone_host", ["tcp", "http"], indirect=True)
def test_crash_on_next_request_drops_the_request_in_flight(lone_host):
    control(lone_host).post("/crash", {"when": "next_request"})
    outcomes = call(lone_host.endpoint, 2, timeout_ms=10_000)
    assert lone_host.process.wait(timeout=15) == CRASH_EXIT_CODE
    assert not outcomes[0].ok and not outcomes[1].ok
    if transport_of(lone_host) == "http":
        assert isinstance(outcomes[0].error, AgenkitConnectionError)
        assert "disconnected without sending a response" in str(outcomes[0].error)
    else:
        # The connection dropped mid-request; the same RemoteAgent never reconnects.
        assert isinstance(outcomes[0].error, ConnectionClosedError)
        assert isinstance(outcomes[1].error, ConnectionClosedError)


@pytest.mark.slow
@pytest.mark.parametrize("lone_host", ["tcp"], indirect=True)
def test_crash_after_requests_serves_n_then_crashes(lone_host):
    answer = control(lone_host).post("/crash", {"when": "after_requests", "after_requests": 3})
    assert answer["fault"]["params"] == {"when": "after_requests", "after_requests": 3}
    outcomes = call(lone_host.endpoint, 4, timeout_ms=10_000)
    assert [o.ok for o in outcomes] == [True, True, True, False]
    assert lone_host.process.wait(timeout=15) == CRASH_EXIT_CODE


# -- auth, signals, command line -------------------------------------------------


def test_token_is_required_on_every_route():
    ref = hosts.start_server("svc-auth", token="s3cret", seed=1)
    try:
        for method, path in [
            ("GET", "/health"),
            ("GET", "/faults"),
            ("DELETE", "/faults"),
            ("POST", "/crash"),
            ("GET", "/stats"),
        ]:
            for token in (None, "wrong", "s3cre", "s3cretx"):
                status, answer = raw_request(method, ref.control_url + path, b"{}", token=token)
                assert (status, answer["status"]) == (401, 401), (method, path, token)
                assert "bearer token" in answer["error"]
        port = int(ref.control_url.rsplit(":", 1)[1])
        for header in (b"Bearer \xff\xfe", "Bearer s3cr\u00e9t".encode(), b"Bearer s3cret\x80"):
            status_line, body = raw_http(
                port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + header
            )
            assert status_line.startswith(b"HTTP/1.1 401 "), (header, status_line, body)
            assert json.loads(body)["status"] == 401
        status, answer = raw_request("GET", ref.control_url + "/health", token="s3cret")
        assert status == 200 and answer["status"] == "ok"
        assert ref.process.poll() is None
        assert "s3cret" not in " ".join(ref.argv)  # the token travels in the environment
    finally:
        hosts.forget_server("svc-auth")


def raw_http(port: int, head: bytes) -> tuple[bytes, bytes]:
    """Send ``head`` (request line and headers, any bytes) to 127.0.0.1:port; return status line, body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head + b"\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return status_line, rest.partition(b"\r\n\r\n")[2]


def serve(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaosagenkit", "serve", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


BAD_ARGUMENTS = [
    (["--control", "0.0.0.0:0"], "'control' is 0.0.0.0, which is not a loopback address"),
    (["--agent", "no_such_module_xyz:make"], "'agent' module 'no_such_module_xyz' cannot be imported"),
    (
        ["--agent", "chaosagenkit.targets:nope"],
        "'agent' 'chaosagenkit.targets:nope': module chaosagenkit.targets has no 'nope'",
    ),
    (
        ["--agent", "tests.integration.test_service_support:not_an_agent"],
        "must return an agenkit.interfaces.Agent, got str",
    ),
    (["--agent", "chaosagenkit.targets"], "'agent' must be MODULE:FACTORY"),
    (["--endpoint", "ftp://127.0.0.1:0"], "'endpoint' must start with one of tcp://"),
    (["--endpoint", "tcp://127.0.0.1"], "'endpoint' must be tcp://HOST:PORT"),
    (["--endpoint", "unix://relative.sock"], "'endpoint' must be unix:///ABSOLUTE/PATH"),
    (["--control", "127.0.0.1:99999"], "'control' port must be between 0 and 65535"),
]


@pytest.mark.parametrize("args,words", BAD_ARGUMENTS)
def test_bad_arguments_exit_2_with_one_line(args, words):
    done = serve(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chaosagenkit serve: error: ")
    assert words in lines[0]


@CONTROL_ONLY
def test_a_port_in_use_exits_1(host):
    port = control(host).get("/health")["ports"]["control"]
    done = serve("--control", f"127.0.0.1:{port}")
    assert done.returncode == 1 and "cannot bind" in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_the_host_cleanly(signum):
    ref = hosts.start_server("svc-signal", endpoint=default_endpoint("tcp"), seed=1)
    try:
        control(ref).post("/faults", {"kind": "memory_pressure", "mib": 16})
        ref.process.send_signal(signum)
        assert ref.process.wait(timeout=15) == 0
        assert call(ref.endpoint, 1, timeout_ms=3000)[0].error is not None
    finally:
        hosts.forget_server("svc-signal")


# Exit-with-parent (also while starting, also with a blocked event loop): tests/integration/
# test_supervisor.py, for this host and the proxy alike.


def test_concurrent_callers_each_get_their_own_answers(host):
    async def many() -> list:
        return await asyncio.gather(*(call_async(host.endpoint, 10, tag=f"c{i}-") for i in range(8)))

    results = asyncio.run(many())
    assert all(o.ok and o.matches for outcomes in results for o in outcomes)
    assert sum(len(outcomes) for outcomes in results) == 80
